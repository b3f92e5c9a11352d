"""The one metric grammar used by the CLI, case files, constraints and DVH results.

Spellings (case-insensitive on the letters, no spaces):

========================  =====================================================  ==========
metric                    meaning                                                result in
========================  =====================================================  ==========
``Dmean``                 mean dose                                              Gy
``Dmax`` / ``Dmin``       maximum / minimum dose (of the DVH, i.e. D0% / D100%)  Gy
``D95%``                  minimum dose to the hottest 95 % of the volume         Gy
``D0.035cc``              minimum dose to the hottest 0.035 cm^3 (ICRU 91)       Gy
``V20Gy``                 volume receiving >= 20 Gy, in % of the structure       %
``V20Gy[cc]``             the same in cm^3                                       cc
``V95%``                  volume receiving >= 95 % of the reference dose, in %   %
``V95%[cc]``              the same in cm^3                                       cc
========================  =====================================================  ==========

``mean``, ``max`` and ``min`` are accepted as aliases of ``Dmean``, ``Dmax`` and ``Dmin``.
ICRU Report 83 (2010) defines D98%, D50% and D2% as near-minimum, median and near-maximum
doses; ICRU Report 91 (2017) recommends D0.035cc as the near-maximum for small volumes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from reirrad.errors import InputError

__all__ = ["Metric", "parse_metric"]

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DOSE_AT = re.compile(rf"^D{_NUMBER}(%|cc)$", re.IGNORECASE)
_VOLUME_AT = re.compile(rf"^V{_NUMBER}(Gy|%)(?:\[(%|cc)\])?$", re.IGNORECASE)
_ALIASES = {
    "mean": "mean",
    "dmean": "mean",
    "max": "max",
    "dmax": "max",
    "min": "min",
    "dmin": "min",
}


@dataclass(frozen=True)
class Metric:
    """A parsed DVH metric.

    Attributes
    ----------
    kind
        ``"mean"``, ``"max"``, ``"min"``, ``"dose_at_volume"`` or ``"volume_at_dose"``.
    value
        The number in the name (volume for D metrics, dose for V metrics), else ``None``.
    unit
        Unit of ``value``: ``"%"`` or ``"cc"`` for D metrics; ``"Gy"`` or ``"%"`` (of the
        reference dose) for V metrics.
    result_unit
        ``"Gy"`` for dose metrics, ``"%"`` or ``"cc"`` for volume metrics.
    """

    kind: str
    value: float | None = None
    unit: str | None = None
    result_unit: str = "Gy"

    @property
    def name(self) -> str:
        """Canonical spelling, e.g. ``Dmean``, ``D95%``, ``D0.035cc``, ``V20Gy[cc]``."""
        if self.kind in ("mean", "max", "min"):
            return "D" + self.kind
        number = f"{self.value:g}"
        if self.kind == "dose_at_volume":
            return f"D{number}{self.unit}"
        suffix = "[cc]" if self.result_unit == "cc" else ""
        return f"V{number}{self.unit}{suffix}"

    @property
    def is_dose(self) -> bool:
        """True for metrics whose value is a dose (D metrics, mean, min, max)."""
        return self.kind != "volume_at_dose"

    @property
    def is_quantile(self) -> bool:
        """True for dose-at-volume metrics (incl. min and max).

        EQD2 is monotonic in dose, so converting such a statistic with its own dose per
        fraction gives exactly the same statistic of the EQD2 distribution; for Dmean it
        does not (the EQD2 of a mean is not the mean EQD2).
        """
        return self.kind in ("max", "min", "dose_at_volume")

    def __str__(self) -> str:
        return self.name


@lru_cache(maxsize=1024)
def parse_metric(text: str) -> Metric:
    """Parse a metric name; raises :class:`~reirrad.errors.InputError` when it is not one."""
    raw = str(text).strip()
    alias = _ALIASES.get(raw.lower())
    if alias:
        return Metric(kind=alias)
    match = _DOSE_AT.match(raw)
    if match:
        value, unit = float(match.group(1)), match.group(2).lower()
        if unit == "%" and not 0 <= value <= 100:
            raise InputError(f"metric {raw!r}: the volume must be between 0 and 100 %")
        return Metric(kind="dose_at_volume", value=value, unit=unit, result_unit="Gy")
    match = _VOLUME_AT.match(raw)
    if match:
        value = float(match.group(1))
        unit = "Gy" if match.group(2).lower() == "gy" else "%"
        result = (match.group(3) or "%").lower()
        return Metric(kind="volume_at_dose", value=value, unit=unit, result_unit=result)
    raise InputError(
        f"{raw!r} is not a metric; use e.g. Dmean, Dmax, Dmin, D95%, D0.035cc, V20Gy, "
        "V20Gy[cc] or V95%"
    )
