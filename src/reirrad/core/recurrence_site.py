"""Where a recurrence lies in an earlier course's dose: in-field, marginal or outside.

Two published methods, both reported because they disagree often (the source found the
three methods it compared to agree on in-field/marginal in only 6 of 28 recurrences):

* **volume method** ("method TV"): the share of the recurrence volume inside the treated
  volume: in-field above 95 %, marginal from 20 % to 95 %, outside below 20 % [1].  The
  treated volume is the volume inside a chosen isodose (ICRU Report 50, 1993); the
  abstract of [1] does not state the level, so it is a parameter, 95 % of the
  prescription by default, and is printed with the result;
* **centre-of-mass method** ("method COM"): whether the recurrence's centre of mass lies
  inside the 95 % isodose [1].  The source's further split of COM recurrences into
  marginal cases needs distances the abstract does not give, so only inside / outside is
  stated here.

References
----------
.. [1] Ferreira BC, Marques RV, Khouri L, Santos T, Sa-Couto P, Lopes MC. Assessment and
   topographic characterization of locoregional recurrences in head and neck tumours.
   Radiat Oncol 2015;10 (doi:10.1186/s13014-015-0345-4), abstract only.  Evidence:
   retrospective cohort, 28 recurrences in 22 patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from reirrad.core.geometry import Grid

__all__ = ["RecurrenceSite", "SiteClass", "classify_recurrence_site"]

#: Default isodose of the treated volume, as a fraction of the prescription (a parameter:
#: the level is not in the abstract of [1]).
TREATED_ISODOSE = 0.95
#: Volume-method bounds on the share inside the treated volume [1].
IN_FIELD_ABOVE = 0.95
MARGINAL_FROM = 0.20
CITATION = (
    "Ferreira BC et al. Radiat Oncol 2015;10, doi:10.1186/s13014-015-0345-4 (abstract): "
    "in-field > 95 % of the recurrence volume inside the treated volume, marginal 20-95 %, "
    "outside < 20 %; centre-of-mass method"
)


class SiteClass(StrEnum):
    IN_FIELD = "in-field"
    MARGINAL = "marginal"
    OUTSIDE = "outside"


@dataclass(frozen=True)
class RecurrenceSite:
    """A recurrence volume against an earlier course's physical dose.

    Attributes
    ----------
    prescription_gy, isodose_gy
        The course's prescription and the treated-volume isodose (95 % of it).
    share_treated
        Fraction of the recurrence volume receiving at least ``isodose_gy``.
    volume_class
        Class by the volume method [1].
    centroid_mm, centroid_dose_gy, centroid_inside
        Centre of mass of the recurrence, the dose there (trilinear), and whether it
        reaches ``isodose_gy`` (the centre-of-mass method [1]).
    dose_mean_gy, dose_min_gy, dose_max_gy, d95_gy
        Earlier dose over the recurrence volume (voxel-weighted by occupancy).
    volume_cc
        Recurrence volume on the dose grid.
    citation
        Source of the definitions.
    """

    prescription_gy: float
    isodose_gy: float
    share_treated: float
    volume_class: SiteClass
    centroid_mm: tuple[float, float, float]
    centroid_dose_gy: float
    centroid_inside: bool
    dose_mean_gy: float
    dose_min_gy: float
    dose_max_gy: float
    d95_gy: float
    volume_cc: float
    citation: str = CITATION


def classify_recurrence_site(
    dose_gy: NDArray,
    grid: Grid,
    occupancy: NDArray,
    prescription_gy: float,
    *,
    isodose_fraction: float = TREATED_ISODOSE,
) -> RecurrenceSite:
    """Classify a recurrence (occupancy 0-1 on the dose grid) against a course's dose.

    Raises
    ------
    ValueError
        Shapes differ, the prescription is not positive, or the recurrence does not reach
        the dose grid.
    """
    dose = np.asarray(dose_gy, dtype=np.float64)
    weight = np.asarray(occupancy, dtype=np.float64)
    if dose.shape != grid.shape or weight.shape != grid.shape:
        raise ValueError(f"dose {dose.shape} and occupancy {weight.shape} must be {grid.shape}")
    if not prescription_gy > 0:
        raise ValueError(f"prescription must be > 0 Gy, not {prescription_gy!r}")
    if not 0 < isodose_fraction <= 1.2:
        raise ValueError(f"isodose fraction must be in (0, 1.2], not {isodose_fraction!r}")
    total = float(weight.sum())
    if total <= 0:
        raise ValueError("the recurrence volume does not reach the dose grid")
    isodose = isodose_fraction * prescription_gy
    inside = weight > 0
    values, weights = dose[inside], weight[inside]
    share = float(weights[values >= isodose].sum() / total)
    kji = np.array(np.nonzero(inside), dtype=float)
    centre_kji = (kji * weights).sum(axis=1) / weights.sum()
    centre_dose = float(ndimage.map_coordinates(dose, centre_kji[:, None], order=1)[0])
    centre_mm = grid.index_to_patient(centre_kji[::-1])
    return RecurrenceSite(
        prescription_gy=float(prescription_gy),
        isodose_gy=isodose,
        share_treated=share,
        volume_class=_volume_class(share),
        centroid_mm=tuple(float(v) for v in centre_mm),
        centroid_dose_gy=centre_dose,
        centroid_inside=centre_dose >= isodose,
        dose_mean_gy=float((values * weights).sum() / weights.sum()),
        dose_min_gy=float(values.min()),
        dose_max_gy=float(values.max()),
        d95_gy=_weighted_dose_at_volume(values, weights, 0.95),
        volume_cc=total * grid.voxel_volume_cc,
    )


def _volume_class(share: float) -> SiteClass:
    if share > IN_FIELD_ABOVE:
        return SiteClass.IN_FIELD
    if share >= MARGINAL_FROM:
        return SiteClass.MARGINAL
    return SiteClass.OUTSIDE


def _weighted_dose_at_volume(values: NDArray, weights: NDArray, fraction: float) -> float:
    """Minimum dose to the hottest ``fraction`` of the weighted volume (D95 for 0.95)."""
    order = np.argsort(values)[::-1]
    cumulative = np.cumsum(weights[order]) / weights.sum()
    at = int(np.searchsorted(cumulative, fraction - 1e-12))
    return float(values[order][min(at, len(order) - 1)])
