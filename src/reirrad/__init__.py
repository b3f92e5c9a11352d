"""reirrad: re-irradiation dose assessment.

The public API is re-exported here; the CLI and reports are thin layers on it.
"""

from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.metrics import Metric, parse_metric
from reirrad.core.radiobiology import (
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
from reirrad.errors import InputError, ReirradError

__version__ = "0.1.0"

__all__ = [
    "LQL",
    "PEDICINI_2015_HEAD_NECK",
    "Dose",
    "DoseKind",
    "Grid",
    "InputError",
    "Metric",
    "ReirradError",
    "Repopulation",
    "bed",
    "bed_to_eqdx",
    "dose_for_bed",
    "dose_for_eqd2",
    "eqd2",
    "eqdx",
    "eqdx_to_bed",
    "parse_metric",
]
