"""Linear-quadratic conversions: BED, EQD2, EQDx and their inverses.

All functions accept scalars or numpy arrays (broadcast together) and return
``numpy.float64`` scalars or arrays.  Doses are in Gy, times in days.

Formulas
--------
Linear-quadratic (LQ) model, Fowler JF, Br J Radiol 1989;62:679-694 ("The linear-quadratic
formula and progress in fractionated radiotherapy"), and the EQD2 notation of
Bentzen SM et al., Radiother Oncol 2012;105:266-268 ("Bioeffect modeling and equieffective
dose concepts in radiation oncology - terminology, quantities and units"):

    BED  = D * (1 + d / (alpha/beta)),          d = D / n
    EQDx = BED / (1 + x / (alpha/beta))         (EQD2: x = 2 Gy)

Repopulation time factor (optional): with overall treatment time T (days, first to last
fraction), kick-off time Tk and Dprolif the EQD2 per day needed to offset repopulation,

    EQD2_T = EQD2 - Dprolif * max(0, T - Tk)
    BED_T  = BED  - Dprolif * (1 + 2/(alpha/beta)) * max(0, T - Tk)

Head-and-neck defaults from Pedicini P, Caivano R, Fiorentino A, Strigari L, "Clinical
radiobiology of head and neck cancer: the hypothesis of stem cell activation", Clin Transl
Oncol 2015;17(6):469-476: alpha/beta 10.6 Gy (95 % CI 8.4-12.6), Tk 19.2 d (15.1-23.3),
Dprolif 0.69 Gy/d (0.52-0.86).  Dprolif there is ln2/(alpha*Td) expressed in 2-Gy
equivalents (0.24 Gy^-1, Td 3.5 d, alpha/beta 10.6 Gy give 0.69), hence the EQD2 form above.

LQ-L model for high doses per fraction, Astrahan M, "Some implications of
linear-quadratic-linear radiation dose-response with regard to hypofractionation",
Med Phys 2008;35(9):4161-4172: above a transition dose per fraction dT the effect per
fraction grows linearly with the slope the LQ curve has at dT,

    BED/n = d (1 + d/(a/b))                               d <= dT
    BED/n = dT (1 + dT/(a/b)) + (d - dT) (1 + 2 dT/(a/b))  d >  dT

The transition dose is tissue-specific and uncertain (evidence: model-based); it has no
default here and must be given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.errors import InputError

__all__ = [
    "LQL",
    "PEDICINI_2015_HEAD_NECK",
    "Repopulation",
    "bed",
    "bed_to_eqdx",
    "dose_for_bed",
    "dose_for_eqd2",
    "eqd2",
    "eqdx",
    "eqdx_to_bed",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Repopulation:
    """Accelerated repopulation of a tumour: kick-off time and daily dose loss.

    Attributes
    ----------
    kickoff_days
        Tk, time after the start of treatment at which repopulation starts.
    dprolif_gy_per_day
        EQD2 per day lost to repopulation after Tk.
    alpha_beta_gy
        The alpha/beta the parameters were fitted with (use it for the tumour).
    citation
        Source of the parameters.
    """

    kickoff_days: float
    dprolif_gy_per_day: float
    alpha_beta_gy: float | None = None
    citation: str = ""

    def __post_init__(self) -> None:
        if self.kickoff_days < 0:
            raise InputError("must be >= 0 days", field="repopulation.kickoff_days")
        if self.dprolif_gy_per_day < 0:
            raise InputError("must be >= 0 Gy/day", field="repopulation.dprolif_gy_per_day")

    def eqd2_loss(self, overall_time_days: ArrayLike) -> FloatArray:
        """EQD2 (Gy) lost to repopulation for an overall treatment time (days)."""
        t = np.asarray(overall_time_days, dtype=float)
        if np.any(t < 0):
            raise InputError("overall treatment time must be >= 0 days", field="overall_time_days")
        return self.dprolif_gy_per_day * np.maximum(0.0, t - self.kickoff_days)


PEDICINI_2015_HEAD_NECK = Repopulation(
    kickoff_days=19.2,
    dprolif_gy_per_day=0.69,
    alpha_beta_gy=10.6,
    citation=(
        "Pedicini P et al., Clin Transl Oncol 2015;17(6):469-476 (head and neck SCC; "
        "alpha/beta 10.6 Gy, Tk 19.2 d, Dprolif 0.69 Gy/d; fitted to published trials)"
    ),
)


@dataclass(frozen=True)
class LQL:
    """Linear-quadratic-linear model (Astrahan 2008) with transition dose per fraction."""

    transition_dose_gy: float
    citation: str = "Astrahan M, Med Phys 2008;35(9):4161-4172"

    def __post_init__(self) -> None:
        if not self.transition_dose_gy > 0:
            raise InputError("must be > 0 Gy", field="lql.transition_dose_gy")


def _check(total_dose: ArrayLike, fractions: ArrayLike, alpha_beta: ArrayLike):
    dose = np.asarray(total_dose, dtype=float)
    n = np.asarray(fractions, dtype=float)
    ab = np.asarray(alpha_beta, dtype=float)
    if np.any(~np.isfinite(dose)) or np.any(dose < 0):
        raise InputError("dose must be finite and >= 0 Gy", field="dose")
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise InputError("number of fractions must be > 0", field="fractions")
    if np.any(~np.isfinite(ab)) or np.any(ab <= 0):
        raise InputError("alpha/beta must be > 0 Gy", field="alpha_beta")
    return dose, n, ab


def lq_effective(
    physical: NDArray, fractions: float, alpha_beta: NDArray | float, quantity: str = "EQD2"
) -> NDArray:
    """BED or EQD2 of a total physical dose given in ``fractions`` equal fractions, array kernel.

    ``BED = D (1 + D / (n a/b))`` and ``EQD2 = BED / (1 + 2 / (a/b)) = D (D/n + a/b) / (2 + a/b)``
    (Fowler JF, Br J Radiol 1989;62:679-694; Bentzen SM et al., Radiother Oncol
    2012;105:266-268), element by element, in the dtype of ``physical`` (float32 maps stay
    float32). No validation: the callers (:func:`bed`, the voxel-wise engine in
    :mod:`reirrad.core.accumulate`) check their inputs once. This is the one place the
    linear-quadratic conversion is written.
    """
    if quantity == "EQD2":
        return physical * (physical / fractions + alpha_beta) / (2.0 + alpha_beta)
    if quantity == "BED":
        return physical * (1.0 + physical / (fractions * alpha_beta))
    raise InputError(f"quantity must be EQD2 or BED, not {quantity!r}", field="quantity")


def _bed_per_fraction(d: FloatArray, ab: FloatArray, lql: LQL | None) -> FloatArray:
    lq = lq_effective(d, 1.0, ab, "BED")
    if lql is None:
        return lq
    dt = lql.transition_dose_gy
    linear = dt * (1.0 + dt / ab) + (d - dt) * (1.0 + 2.0 * dt / ab)
    return np.where(d > dt, linear, lq)


def _repopulation_bed_loss(
    repopulation: Repopulation | None, overall_time_days: ArrayLike | None, ab: FloatArray
) -> FloatArray | float:
    """BED lost to repopulation (0 without a model); the model needs the overall time."""
    if repopulation is None:
        return 0.0
    if overall_time_days is None:
        raise InputError(
            "a repopulation correction needs the overall treatment time",
            field="overall_time_days",
        )
    return repopulation.eqd2_loss(overall_time_days) * (1.0 + 2.0 / ab)


def bed(
    total_dose: ArrayLike,
    fractions: ArrayLike,
    alpha_beta: ArrayLike,
    *,
    lql: LQL | None = None,
    repopulation: Repopulation | None = None,
    overall_time_days: ArrayLike | None = None,
) -> FloatArray:
    """Biologically effective dose (Gy) of ``total_dose`` given in ``fractions`` equal fractions.

    Parameters
    ----------
    total_dose
        Physical dose in Gy (>= 0).
    fractions
        Number of fractions (> 0; need not be an integer for a voxel's share of a plan).
    alpha_beta
        alpha/beta in Gy (> 0).
    lql
        Use the LQ-L model above its transition dose per fraction.
    repopulation, overall_time_days
        Subtract the repopulation loss for this overall treatment time.
    """
    dose, n, ab = _check(total_dose, fractions, alpha_beta)
    result = n * _bed_per_fraction(dose / n, ab, lql)
    result = result - _repopulation_bed_loss(repopulation, overall_time_days, ab)
    return np.asarray(result, dtype=float)[()]


def bed_to_eqdx(bed_gy: ArrayLike, alpha_beta: ArrayLike, reference_dose: float = 2.0):
    """EQDx (Gy) of a BED: the total dose in ``reference_dose`` fractions with that BED."""
    ab = np.asarray(alpha_beta, dtype=float)
    if np.any(ab <= 0):
        raise InputError("alpha/beta must be > 0 Gy", field="alpha_beta")
    return np.asarray(bed_gy, dtype=float) / (1.0 + reference_dose / ab)


def eqdx_to_bed(eqdx_gy: ArrayLike, alpha_beta: ArrayLike, reference_dose: float = 2.0):
    """BED (Gy) of an EQDx; inverse of :func:`bed_to_eqdx`."""
    ab = np.asarray(alpha_beta, dtype=float)
    if np.any(ab <= 0):
        raise InputError("alpha/beta must be > 0 Gy", field="alpha_beta")
    return np.asarray(eqdx_gy, dtype=float) * (1.0 + reference_dose / ab)


def eqdx(
    total_dose: ArrayLike,
    fractions: ArrayLike,
    alpha_beta: ArrayLike,
    reference_dose: float,
    **options,
) -> FloatArray:
    """Equieffective dose in ``reference_dose``-Gy fractions (Gy); options as :func:`bed`."""
    if not reference_dose > 0:
        raise InputError("reference dose per fraction must be > 0 Gy", field="reference_dose")
    return bed_to_eqdx(
        bed(total_dose, fractions, alpha_beta, **options), alpha_beta, reference_dose
    )


def eqd2(total_dose: ArrayLike, fractions: ArrayLike, alpha_beta: ArrayLike, **options):
    """Equieffective dose in 2-Gy fractions (Gy); options as :func:`bed`."""
    return eqdx(total_dose, fractions, alpha_beta, 2.0, **options)


def dose_for_bed(
    bed_gy: ArrayLike,
    fractions: ArrayLike,
    alpha_beta: ArrayLike,
    *,
    lql: LQL | None = None,
    repopulation: Repopulation | None = None,
    overall_time_days: ArrayLike | None = None,
) -> FloatArray:
    """Total physical dose (Gy) in ``fractions`` fractions that gives ``bed_gy``.

    The dose per fraction is the positive root of ``d^2/(a/b) + d - BED/n = 0``, written
    as ``2b / (1 + sqrt(1 + 4b/(a/b)))`` (b = BED/n) to stay accurate when b << a/b.
    """
    target = np.asarray(bed_gy, dtype=float)
    if np.any(~np.isfinite(target)) or np.any(target < 0):
        raise InputError("BED budget must be finite and >= 0 Gy", field="bed")
    _, n, ab = _check(0.0, fractions, alpha_beta)
    target = target + _repopulation_bed_loss(repopulation, overall_time_days, ab)
    per_fraction = target / n
    d = 2.0 * per_fraction / (1.0 + np.sqrt(1.0 + 4.0 * per_fraction / ab))
    if lql is not None:
        dt = lql.transition_dose_gy
        b_t = dt * (1.0 + dt / ab)
        d = np.where(per_fraction > b_t, dt + (per_fraction - b_t) / (1.0 + 2.0 * dt / ab), d)
    return np.asarray(d * n, dtype=float)[()]


def dose_for_eqd2(eqd2_gy: ArrayLike, fractions: ArrayLike, alpha_beta: ArrayLike, **options):
    """Total physical dose (Gy) in ``fractions`` fractions that gives ``eqd2_gy``."""
    eq = np.asarray(eqd2_gy, dtype=float)
    if np.any(eq < 0):
        raise InputError("EQD2 budget must be >= 0 Gy", field="eqd2")
    return dose_for_bed(eqdx_to_bed(eq, alpha_beta), fractions, alpha_beta, **options)
