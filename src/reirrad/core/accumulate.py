"""Voxel-wise multi-course accumulation of effective dose (EQD2 or BED).

The right answer to "how much has this tissue received over all courses" is computed
voxel by voxel:

1. each course's physical dose is converted to EQD2 (or BED) with each voxel's *own* dose
   per fraction and its tissue's alpha/beta (:func:`to_effective`; a course made of several
   phases is converted phase by phase, because each phase has its own dose per fraction:
   :func:`course_effective`);
2. every course is mapped onto one reference grid (``reirrad.core.registration``);
3. each tissue's recovered fraction ``f`` discounts the *earlier* courses: an earlier course
   counts as ``(1 - f) * EQD2`` (the residual-dose convention of
   ``reirrad.core.recovery``); the newest course counts in full;
4. the sum is the cumulative map, reported with and without recovery (:func:`accumulate`).

Formulas: ``BED = D (1 + d / (alpha/beta))``, ``EQD2 = BED / (1 + 2 / (alpha/beta))`` with
``d = D / n`` the voxel's dose per fraction (Fowler, Br J Radiol 1989;62:679-694; Bentzen et
al., Radiother Oncol 2012;105:266-268), implemented in :mod:`reirrad.core.radiobiology`.

Tissue maps (:func:`tissue_maps`) assign every voxel an alpha/beta and a recovered fraction
from the structures that cover it, with an explicit rule for overlaps (see there).

Re-irradiation type (:func:`reirradiation_type`) follows the ESTRO-EORTC consensus
(Andratschke N, Willmann J, Appelt AL, et al., "European Society for Radiotherapy and
Oncology and European Organisation for Research and Treatment of Cancer consensus on
re-irradiation: definition, reporting, and clinical decision making", Lancet Oncol 2022).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.radiobiology import LQL, bed, eqd2, lq_effective
from reirrad.errors import InputError

__all__ = [
    "ANDRATSCHKE_2022",
    "CoursePhysical",
    "ReirradiationType",
    "course_effective",
    "EDGE_DOSE_FRACTION",
    "cumulative_maps",
    "edge_dose_fraction",
    "effective_sum",
    "phase_total_dose",
    "reirradiation_type",
    "to_effective",
]

ANDRATSCHKE_2022 = (
    "Andratschke N, Willmann J, Appelt AL, et al. European Society for Radiotherapy and "
    "Oncology and European Organisation for Research and Treatment of Cancer consensus on "
    "re-irradiation: definition, reporting, and clinical decision making. Lancet Oncol 2022"
)

_QUANTITIES = ("EQD2", "BED")


# --------------------------------------------------------------------------------------
# Phases and conversion to effective dose
# --------------------------------------------------------------------------------------


def phase_total_dose(
    dose: Dose,
    summation_type: str,
    *,
    fractions: int | None = None,
    beams_summed: bool = False,
) -> Dose:
    """The total physical dose of one phase (plan), from a dose of any DoseSummationType.

    Parameters
    ----------
    dose
        Physical dose as stored in the RTDOSE (after DoseGridScaling).
    summation_type
        DICOM DoseSummationType (3004,000A): ``PLAN``, ``MULTI_PLAN``, ``FRACTION``,
        ``BEAM``, ``BRACHY``, ``FRACTION_SESSION``, ``BEAM_SESSION``, ``BRACHY_SESSION``,
        ``CONTROL_POINT``, ``RECORD``.
    fractions
        Number of fractions of the phase. Required for ``FRACTION`` (dose of one fraction,
        multiplied by it) and always recorded on the result.
    beams_summed
        For ``BEAM``: the caller states that ``dose`` is already the sum of *all* beams of
        one fraction (e.g. added up from one BEAM RTDOSE per beam). Without it a BEAM dose
        is refused, because one beam is not the plan.

    Raises
    ------
    InputError
        When the summation type needs information that was not given: reirrad refuses to
        guess the number of fractions or whether all beams are present.
    """
    kind = str(summation_type).strip().upper()
    if dose.kind is not DoseKind.PHYSICAL:
        raise InputError(
            "a phase total is built from a PHYSICAL dose; this one is already EFFECTIVE",
            field="dose.kind",
        )
    if fractions is not None and not (float(fractions) > 0):
        raise InputError("number of fractions must be > 0", field="fractions")
    provenance = {**dose.provenance, "summation_type": kind}
    if kind in ("PLAN", "MULTI_PLAN", "RECORD"):
        values = dose.values
        provenance["phase_total"] = f"{kind} dose taken as the total of the phase"
    elif kind == "FRACTION":
        if fractions is None:
            raise InputError(
                "the dose is of one fraction (DoseSummationType FRACTION): state the number "
                "of fractions of this phase; reirrad does not guess it",
                field="fractions",
            )
        values = dose.values * float(fractions)
        provenance["phase_total"] = f"FRACTION dose x {fractions} fractions"
    elif kind == "BEAM":
        if fractions is None or not beams_summed:
            raise InputError(
                "the dose is of one beam (DoseSummationType BEAM): give the sum of all beams "
                "of one fraction (beams_summed=True) and the number of fractions; reirrad "
                "does not guess which beams make up the plan",
                field="beams",
            )
        values = dose.values * float(fractions)
        provenance["phase_total"] = f"sum of all beams of one fraction x {fractions} fractions"
    else:
        raise InputError(
            f"DoseSummationType {kind!r} is not supported for accumulation; export the plan "
            "dose (PLAN) from the planning system",
            field="DoseSummationType",
        )
    return Dose(
        grid=dose.grid,
        values=np.asarray(values, dtype=float),
        kind=DoseKind.PHYSICAL,
        fractions=fractions if fractions is not None else dose.fractions,
        quantity="physical",
        provenance=provenance,
    )


def _alpha_beta_array(alpha_beta_map: ArrayLike, grid: Grid) -> NDArray[np.float64]:
    ab = np.asarray(alpha_beta_map, dtype=float)
    if ab.ndim != 0 and ab.shape != tuple(grid.shape):
        raise InputError(
            f"alpha/beta map of shape {ab.shape} does not match the dose grid {grid.shape}",
            field="alpha_beta_map",
        )
    if np.any(~np.isfinite(ab)) or np.any(ab <= 0):
        raise InputError("alpha/beta must be finite and > 0 Gy everywhere", field="alpha_beta")
    return ab


def _describe_ab(ab: NDArray[np.float64], rule: str | None) -> dict:
    values = np.unique(ab)
    info = {"alpha_beta_values_gy": [float(v) for v in values[:20]]}
    if rule:
        info["alpha_beta_rule"] = rule
    return info


def to_effective(
    dose: Dose,
    fractions: float | None,
    alpha_beta_map: ArrayLike,
    quantity: str = "EQD2",
    *,
    alpha_beta_rule: str | None = None,
    lql: LQL | None = None,
) -> Dose:
    """Convert a physical dose to EQD2 or BED voxel by voxel.

    Each voxel's dose per fraction is its own dose divided by ``fractions`` (the plan's
    fractions are equal for every voxel, so a voxel receiving half the prescription gets half
    the dose per fraction), and its alpha/beta is taken from ``alpha_beta_map``.

    Parameters
    ----------
    dose
        Total physical dose of one phase (all its fractions), kind PHYSICAL.
    fractions
        Number of fractions; ``None`` takes ``dose.fractions`` (refused if unknown).
    alpha_beta_map
        alpha/beta in Gy: a scalar or an array of the dose grid's shape
        (see :func:`reirrad.core.tissue.build_tissue_model`).
    quantity
        ``"EQD2"`` or ``"BED"``.
    alpha_beta_rule
        Text recorded in the provenance (how the map was built).
    lql
        Optional linear-quadratic-linear model above a transition dose per fraction.

    Returns
    -------
    Dose
        kind EFFECTIVE, quantity ``quantity``, same grid; provenance records the source,
        the fractions, the alpha/beta values and rule.

    Raises
    ------
    InputError
        If the dose is already EFFECTIVE (converting twice is refused), the fractions are
        unknown, or a parameter is out of range.
    """
    if dose.kind is DoseKind.EFFECTIVE:
        raise InputError(
            f"the dose is already EFFECTIVE ({dose.quantity}); converting it again would "
            "apply the fractionation correction twice",
            field="dose.kind",
        )
    q = str(quantity).upper()
    if q not in _QUANTITIES:
        raise InputError(f"quantity must be EQD2 or BED, not {quantity!r}", field="quantity")
    summation = str(dose.provenance.get("summation_type", "")).upper()
    if summation in ("FRACTION", "BEAM") and "phase_total" not in dose.provenance:
        raise InputError(
            f"the dose is a {summation} dose; build the phase total first "
            "(reirrad.core.accumulate.phase_total_dose) with the fractions stated",
            field="DoseSummationType",
        )
    n = fractions if fractions is not None else dose.fractions
    if n is None:
        raise InputError(
            "the number of fractions of this dose is not known; state it", field="fractions"
        )
    ab = _alpha_beta_array(alpha_beta_map, dose.grid)
    physical = np.asarray(dose.values, dtype=float)
    if np.any(physical < 0):
        raise InputError("dose must be >= 0 Gy", field="dose")
    function = eqd2 if q == "EQD2" else bed
    values = np.asarray(function(physical, float(n), ab, lql=lql), dtype=float)
    values = np.broadcast_to(values, dose.grid.shape).copy()
    provenance = {
        **dose.provenance,
        "converted_from": "physical dose",
        "conversion": f"{q} (linear-quadratic{'-linear' if lql else ''}, voxel dose per fraction)",
        "fractions": float(n),
        **_describe_ab(np.asarray(ab), alpha_beta_rule),
    }
    if lql is not None:
        provenance["lql_transition_dose_gy"] = lql.transition_dose_gy
    return Dose(
        grid=dose.grid,
        values=values,
        kind=DoseKind.EFFECTIVE,
        fractions=float(n),
        quantity=q,
        provenance=provenance,
    )


@dataclass(frozen=True)
class CoursePhysical:
    """One course's physical dose on the reference grid (or on a box of it), phase by phase.

    Attributes
    ----------
    course
        Course id.
    phases
        ``(fractions, total physical dose of the phase in Gy)`` per phase, arrays indexed
        ``[k, j, i]``. Each phase keeps its own number of fractions because each has its own
        dose per fraction.
    """

    course: str
    phases: tuple[tuple[float, NDArray[np.floating]], ...] = field(repr=False)

    def box(self, box: tuple[slice, slice, slice]) -> CoursePhysical:
        """The same course restricted to a box (views)."""
        return CoursePhysical(self.course, tuple((n, values[box]) for n, values in self.phases))


def course_effective(
    course: CoursePhysical, alpha_beta: ArrayLike, quantity: str = "EQD2"
) -> NDArray[np.floating]:
    """EQD2, BED or physical dose of one course: each phase converted with each voxel's own
    dose per fraction and alpha/beta, the phases added (the LQ effects of sequential phases
    add). ``quantity="physical"`` adds the physical doses."""
    q = quantity if quantity == "physical" else str(quantity).upper()
    out = None
    for fractions, values in course.phases:
        if q == "physical":
            part = np.array(values, copy=True)
        else:
            part = lq_effective(values, fractions, alpha_beta, q)
        if out is None:
            out = part
        else:
            out += part
    if out is None:
        raise InputError(f"course {course.course} has no phase", field="phases")
    return out


def effective_sum(
    courses: Sequence[CoursePhysical],
    alpha_beta: ArrayLike,
    recovered: Mapping[str, ArrayLike] | None = None,
    *,
    quantity: str = "EQD2",
    recovery_scale: float = 1.0,
    only: str | None = None,
) -> NDArray[np.floating]:
    """Cumulative effective dose: ``sum_c (1 - s f_c) sum_p LQ(D_cp, n_p, a/b)``.

    Parameters
    ----------
    courses
        The courses on one grid (or box), oldest first.
    alpha_beta
        alpha/beta per voxel (or a scalar), Gy.
    recovered
        Per earlier course id, its recovered fraction per voxel (or scalar); courses not in
        it (the newest) count in full. ``None``: no recovery credited.
    quantity
        ``"EQD2"``, ``"BED"`` or ``"physical"`` (no conversion, no recovery).
    recovery_scale
        ``s``: multiplies every recovered fraction (sensitivity analysis; 1 = as modelled).
    only
        Restrict the sum to one course id (its contribution).
    """
    _check_shapes(courses, alpha_beta)
    if quantity != "physical":
        _check_maps(np.asarray(alpha_beta), recovered or {})
    total = None
    for course in courses:
        if only is not None and course.course != only:
            continue
        part = course_effective(course, alpha_beta, quantity)
        f = None if recovered is None or quantity == "physical" else recovered.get(course.course)
        if f is not None and recovery_scale:
            part *= 1.0 - recovery_scale * np.asarray(f, dtype=part.dtype)
        total = part if total is None else total + part
    if total is None:
        raise InputError(
            f"no course {only!r} to add" if only else "no course to add", field="courses"
        )
    return total


def cumulative_maps(
    courses: Sequence[CoursePhysical],
    alpha_beta: NDArray[np.floating],
    recovered: Mapping[str, NDArray[np.floating]],
    *,
    quantity: str = "EQD2",
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """The cumulative map with and without recovery, each course converted once.

    Same sum as :func:`effective_sum` (tested equal), in place for full-size grids.
    """
    _check_shapes(courses, alpha_beta)
    _check_maps(alpha_beta, recovered)
    total = np.zeros(alpha_beta.shape, dtype=alpha_beta.dtype)
    total_nr = np.zeros(alpha_beta.shape, dtype=alpha_beta.dtype)
    for course in courses:
        part = course_effective(course, alpha_beta, quantity)
        total_nr += part
        f = recovered.get(course.course)
        if f is not None:
            part *= 1.0 - f
        total += part
    return total, total_nr


#: A dose grid whose outer faces reach this fraction of its maximum is flagged: the high-dose
#: region touches the edge, so the grid is probably truncated or misplaced. Photon exit doses at
#: the skin stay well below it; the number is a plausibility threshold, not a published value.
EDGE_DOSE_FRACTION = 0.8


def edge_dose_fraction(values: NDArray) -> float:
    """Highest dose on the six outer faces of a dose grid, as a fraction of its maximum."""
    values = np.asarray(values)
    top = float(values.max()) if values.size else 0.0
    if top <= 0.0:
        return 0.0
    faces = (
        values[0], values[-1], values[:, 0], values[:, -1], values[:, :, 0], values[:, :, -1]
    )  # fmt: skip
    return max(float(face.max()) for face in faces) / top


def _same_grid(a: Grid, b: Grid) -> bool:
    return tuple(a.shape) == tuple(b.shape) and np.allclose(a.affine, b.affine, atol=1e-4)


def _check_shapes(courses: Sequence[CoursePhysical], alpha_beta: ArrayLike) -> None:
    """Every phase of every course on one grid (no silent broadcasting of a course)."""
    shapes = {np.shape(values) for course in courses for _, values in course.phases}
    ab_shape = np.shape(alpha_beta)
    if ab_shape:
        shapes.add(ab_shape)
    if len(shapes) > 1:
        raise InputError(
            f"the courses' doses and the tissue maps must share one grid; shapes {sorted(shapes)}",
            field="courses",
        )


def _check_maps(alpha_beta: NDArray, recovered: Mapping[str, ArrayLike]) -> None:
    if not np.all(np.isfinite(alpha_beta)) or np.any(alpha_beta <= 0):
        raise InputError("alpha/beta must be finite and > 0 Gy everywhere", field="alpha_beta")
    for course, f in recovered.items():
        f = np.asarray(f)
        if not np.all(np.isfinite(f)) or np.any(f < 0) or np.any(f > 1):
            raise InputError(
                f"recovered fraction of course {course} must be in [0, 1]", field="recovery"
            )


# --------------------------------------------------------------------------------------
# Re-irradiation type (ESTRO-EORTC consensus)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReirradiationType:
    """Classification of a new course after the ESTRO-EORTC consensus (Andratschke 2022).

    Attributes
    ----------
    type
        ``"Type 1"``, ``"Type 2"``, ``"no overlap, no cumulative-dose concern"`` or
        ``"no overlap, cumulative-dose concern not assessed"``.
    overlap_cc
        Volume (cm^3) irradiated to >= the threshold by an earlier course *and* the new one.
    threshold_gy
        The isodose that defines "irradiated volume" here (the consensus leaves it to the
        user; it is a parameter, not a published number).
    statement
        One sentence for reports.
    citation
        The consensus reference.
    """

    type: str
    overlap_cc: float
    threshold_gy: float
    statement: str
    citation: str = ANDRATSCHKE_2022


def reirradiation_type(
    earlier_doses: Sequence[Dose],
    new_dose: Dose,
    threshold_gy: float,
    *,
    cumulative_dose_concern: bool | None = None,
) -> ReirradiationType:
    """Type of re-irradiation after the ESTRO-EORTC consensus (Andratschke et al. 2022).

    The consensus distinguishes Type 1 re-irradiation, a new course whose irradiated volume
    geometrically overlaps that of earlier courses, from Type 2, where the irradiated volumes
    do not overlap but there is concern of toxicity from the cumulative dose (e.g. to an
    organ at risk lying between them); without overlap and without such concern the
    consensus speaks of repeat (organ) irradiation rather than re-irradiation. (Definitions
    as summarised by Hoskin et al., Ann Palliat Med 2024, "Re-irradiation practice and
    ESTRO/EORTC consensus recommendations: 2023 ASTRO education panel".)

    "Irradiated volume" is operationalised here as the volume inside the ``threshold_gy``
    isodose of each course's *physical* dose, all on one reference grid; the threshold is a
    user choice and is reported with the result.

    Parameters
    ----------
    earlier_doses
        Physical doses of the earlier courses, on the new course's reference grid.
    new_dose
        Physical dose of the new course, same grid.
    threshold_gy
        Isodose level (Gy, > 0) defining each course's irradiated volume.
    cumulative_dose_concern
        Whether the cumulative dose to some organ is of concern (a clinical judgement, e.g.
        from the cumulative constraint evaluation); ``None`` when not assessed.
    """
    if not threshold_gy > 0:
        raise InputError("the isodose threshold must be > 0 Gy", field="threshold_gy")
    if not earlier_doses:
        raise InputError("no earlier course given", field="earlier_doses")
    grid = new_dose.grid
    new_irradiated = np.asarray(new_dose.values) >= threshold_gy
    earlier_irradiated = np.zeros(grid.shape, dtype=bool)
    for index, dose in enumerate(earlier_doses):
        if not _same_grid(dose.grid, grid):
            raise InputError(
                "earlier course dose is not on the new course's grid; resample it first",
                field=f"earlier_doses[{index}]",
            )
        if dose.kind is not DoseKind.PHYSICAL:
            raise InputError(
                "the irradiated volume is defined on physical dose; pass physical doses",
                field=f"earlier_doses[{index}]",
            )
        earlier_irradiated |= np.asarray(dose.values) >= threshold_gy
    overlap = earlier_irradiated & new_irradiated
    overlap_cc = float(overlap.sum() * grid.voxel_volume_cc)
    if overlap.any():
        kind = "Type 1"
        statement = (
            f"Type 1 re-irradiation: the {threshold_gy:g} Gy isodose volumes of the new and "
            f"earlier courses overlap ({overlap_cc:.2f} cm3)."
        )
    elif cumulative_dose_concern:
        kind = "Type 2"
        statement = (
            f"Type 2 re-irradiation: the {threshold_gy:g} Gy isodose volumes do not overlap, "
            "but the cumulative dose to an organ at risk is of concern."
        )
    elif cumulative_dose_concern is None:
        kind = "no overlap, cumulative-dose concern not assessed"
        statement = (
            f"The {threshold_gy:g} Gy isodose volumes do not overlap: Type 2 re-irradiation "
            "if the cumulative organ dose is of concern, otherwise repeat irradiation."
        )
    else:
        kind = "no overlap, no cumulative-dose concern"
        statement = (
            f"The {threshold_gy:g} Gy isodose volumes do not overlap and no cumulative organ "
            "dose is of concern: repeat irradiation, not re-irradiation in the consensus sense."
        )
    return ReirradiationType(kind, overlap_cc, float(threshold_gy), statement)
