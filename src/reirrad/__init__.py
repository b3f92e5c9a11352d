"""reirrad: re-irradiation dose assessment.

The public API is re-exported here; the CLI and reports are thin layers on it.

>>> import reirrad
>>> round(float(reirrad.eqd2(24, 4, alpha_beta=15)), 2)
29.65
>>> assessment = reirrad.assess_case("examples/npc-reirradiation-2026.yaml")  # doctest: +SKIP
"""

__version__ = "0.1.0"

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
from reirrad.core.prognosis import (  # noqa: E402
    Li2018Result,
    case_prognosis,
    li2018_index,
    stage_group_ajcc9_npc,
)
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
from reirrad.io.casefile import load_case  # noqa: E402
from reirrad.io.constraint_sets import (  # noqa: E402
    available_constraint_sets,
    load_constraint_set,
    load_constraints,  # noqa: E402
)

# Heavier parts (DICOM, SimpleITK registration, DVH engine, accumulation, NTCP, explorer) are
# imported on first use, so that `import reirrad` and every CLI command start quickly.
_LAZY = {
    "reirrad.core.dvh": ("DVH", "compute_dvh", "structure_occupancy", "homogeneity_index",
                         "paddick_ci", "gradient_index"),
    "reirrad.core.structures": ("Structure", "StructureSet"),
    "reirrad.io.dicom": ("read_rtdose", "read_rtstruct", "read_rtplan", "read_ct_geometry",
                         "read_ct_series", "check_references", "PlanInfo"),
    "reirrad.core.accumulate": ("to_effective", "course_effective", "phase_total_dose",
                                "CoursePhysical", "effective_sum", "cumulative_maps",
                                "reirradiation_type", "ReirradiationType"),
    "reirrad.core.tissue": ("Tissue", "TissueModel", "TissueRegion", "build_tissue_model",
                            "structure_tissue"),
    "reirrad.core.voxel": ("VoxelAssessment", "VoxelStructure", "VoxelConstraint"),
    "reirrad.pipelines.assess": ("assess_case",),
    "reirrad.pipelines.accumulate": ("accumulate_case", "structure_dvh", "course_dvhs"),
    "reirrad.pipelines.run": ("run_case", "CaseRun"),
    "reirrad.core.registration": ("Transform", "resample_dose", "register_rigid",
                                  "register_deformable", "rigid_matrix"),
    "reirrad.core.sensitivity": ("sensitivity", "scenarios", "SensitivityOutcome"),
    "reirrad.io.registration_io": ("read_spatial_registration", "write_spatial_registration"),
    "reirrad.io.export": ("write_rtdose", "write_nrrd", "write_nifti"),
    "reirrad.core.ntcp": ("geud", "lkb_ntcp", "logit_ntcp", "relative_seriality_ntcp",
                          "poisson_tcp", "ntcp_from_parameter_set", "NTCPResult", "TCPResult",
                          "structure_ntcp", "StructureNTCP"),
    "reirrad.io.ntcp_data": ("load_ntcp_parameter_sets",),
    "reirrad.core.explore": ("explore", "OrganAtRisk", "CumulativeConstraint", "Target",
                             "ExplorerResult", "SchemeRow"),
    "reirrad.pipelines.explore": ("explore_case", "CaseExploration"),
    "reirrad.present.report": ("write_report", "build_report", "render_html"),
}  # fmt: skip
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'reirrad' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


__all__ = [
    *_LAZY_NAMES,
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
