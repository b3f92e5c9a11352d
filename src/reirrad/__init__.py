"""reirrad: re-irradiation dose assessment.

The public API is re-exported here; the CLI and reports are thin layers on it.

>>> import reirrad
>>> round(float(reirrad.eqd2(24, 4, alpha_beta=15)), 2)
29.65
>>> assessment = reirrad.assess_case("examples/npc-reirradiation-2026.yaml")  # doctest: +SKIP
"""

__version__ = "0.1.0"

from reirrad.api import assess_case, case_prognosis, load_case, load_constraints  # noqa: E402
from reirrad.core.assessment import Assessment, StructureResult, assess, convert_statistic  # noqa: E402
from reirrad.core.case import Case  # noqa: E402
from reirrad.core.constraints import (  # noqa: E402
    KNOWN_ORGANS,
    Constraint,
    ConstraintResult,
    ConstraintSet,
)
from reirrad.core.constraints import evaluate as evaluate_constraint  # noqa: E402
from reirrad.core.geometry import Dose, DoseKind, Grid  # noqa: E402
from reirrad.core.metrics import Metric, parse_metric  # noqa: E402
from reirrad.core.prognosis import Li2018Result, li2018_index, stage_group_ajcc9_npc  # noqa: E402
from reirrad.core.radiobiology import (  # noqa: E402
    LQL,
    PEDICINI_2015_HEAD_NECK,
    Repopulation,
    bed,
    bed_to_eqdx,
    dose_for_bed,
    dose_for_eqd2,
    eqd2,
    eqdx,
    eqdx_to_bed,
)
from reirrad.core.recovery import (  # noqa: E402
    ExponentialRecovery,
    FixedRecovery,
    NoRecovery,
    RecoveryModel,
    TableRecovery,
    builtin_recovery_models,
    recovery_model_from_spec,
)
from reirrad.errors import InputError, ReirradError  # noqa: E402
from reirrad.io.constraint_sets import available_constraint_sets, load_constraint_set  # noqa: E402

__all__ = [
    "KNOWN_ORGANS",
    "LQL",
    "PEDICINI_2015_HEAD_NECK",
    "Assessment",
    "Case",
    "Constraint",
    "ConstraintResult",
    "ConstraintSet",
    "Dose",
    "DoseKind",
    "ExponentialRecovery",
    "FixedRecovery",
    "Grid",
    "InputError",
    "Li2018Result",
    "Metric",
    "NoRecovery",
    "RecoveryModel",
    "ReirradError",
    "Repopulation",
    "StructureResult",
    "TableRecovery",
    "assess",
    "assess_case",
    "available_constraint_sets",
    "bed",
    "bed_to_eqdx",
    "builtin_recovery_models",
    "case_prognosis",
    "convert_statistic",
    "dose_for_bed",
    "dose_for_eqd2",
    "eqd2",
    "eqdx",
    "eqdx_to_bed",
    "evaluate_constraint",
    "li2018_index",
    "load_case",
    "load_constraint_set",
    "load_constraints",
    "parse_metric",
    "recovery_model_from_spec",
    "stage_group_ajcc9_npc",
]
