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
from reirrad.core.radiobiology import LQL, bed, eqd2
from reirrad.errors import InputError

__all__ = [
    "ANDRATSCHKE_2022",
    "CourseDose",
    "CumulativeResult",
    "ReirradiationType",
    "TissueMaps",
    "accumulate",
    "course_effective",
    "phase_total_dose",
    "reirradiation_type",
    "structure_contributions",
    "tissue_maps",
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
        (see :func:`tissue_maps`).
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


def course_effective(
    phases: Sequence[tuple[Dose, float]],
    alpha_beta_map: ArrayLike,
    quantity: str = "EQD2",
    *,
    alpha_beta_rule: str | None = None,
    lql: LQL | None = None,
) -> Dose:
    """EQD2/BED of a course made of one or more phases on one grid.

    Each phase ``(physical total dose, fractions)`` is converted with its own dose per
    fraction and the effective doses are added (LQ effects of sequential phases add).
    All phases must share one grid (resample them first otherwise).
    """
    if not phases:
        raise InputError("a course needs at least one phase", field="phases")
    grid = phases[0][0].grid
    total = None
    parts = []
    for index, (dose, n) in enumerate(phases):
        if not _same_grid(dose.grid, grid):
            raise InputError(
                "all phases of a course must be on one grid; resample them first",
                field=f"phases[{index}]",
            )
        eff = to_effective(
            dose, n, alpha_beta_map, quantity, alpha_beta_rule=alpha_beta_rule, lql=lql
        )
        total = eff.values if total is None else total + eff.values
        parts.append({"fractions": float(n), "source": dose.provenance.get("source")})
    provenance = {
        **phases[0][0].provenance,
        "phases": parts,
        "conversion": eff.provenance["conversion"],
    }
    provenance.update(_describe_ab(np.asarray(alpha_beta_map, dtype=float), alpha_beta_rule))
    return Dose(
        grid=grid,
        values=total,
        kind=DoseKind.EFFECTIVE,
        fractions=float(sum(float(n) for _, n in phases)),
        quantity=eff.quantity,
        provenance=provenance,
    )


# --------------------------------------------------------------------------------------
# Tissue maps
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TissueMaps:
    """Per-voxel alpha/beta (Gy) and recovered fraction, with the rule that built them.

    Unpacks as ``alpha_beta, recovered_fraction = tissue_maps(...)``.
    """

    alpha_beta: NDArray[np.float64] = field(repr=False)
    recovered_fraction: NDArray[np.float64] = field(repr=False)
    rule: str
    description: str

    def __iter__(self):
        return iter((self.alpha_beta, self.recovered_fraction))


def tissue_maps(
    grid: Grid,
    masks: Mapping[str, ArrayLike],
    params: Mapping[str, tuple[float, float]],
    default: tuple[float, float],
    rule: str = "most_conservative",
    *,
    coverage_threshold: float = 0.0,
) -> TissueMaps:
    """Build alpha/beta and recovered-fraction maps from structures.

    Parameters
    ----------
    grid
        The grid of the maps (the masks must have its shape, indexed ``[k, j, i]``).
    masks
        Ordered mapping structure name -> fractional (0..1) or boolean occupancy mask.
    params
        Structure name -> ``(alpha_beta_gy, recovered_fraction)``; every mask needs one.
    default
        ``(alpha_beta_gy, recovered_fraction)`` for voxels covered by no listed structure.
    rule
        How a voxel covered by several structures is resolved:

        ``"most_conservative"`` (default)
            the lowest alpha/beta **and**, independently, the lowest recovered fraction of
            all structures covering the voxel. Lowest alpha/beta gives the highest EQD2
            where the dose per fraction exceeds 2 Gy (for d < 2 Gy it gives the lowest; the
            alpha/beta sensitivity analysis covers that case); least recovery counts most
            of the earlier dose.
        ``"priority"``
            the first structure of ``masks`` (in its order) that covers the voxel wins.
    coverage_threshold
        A voxel is covered by a structure when its mask value is ``> coverage_threshold``.
        The default 0 counts *any* partial occupancy, so boundary voxels shared by an organ
        at risk and its neighbour take the more conservative parameters; use 0.5 for a
        majority-volume rule.
    """
    if rule not in ("most_conservative", "priority"):
        raise InputError(
            f"overlap rule must be 'most_conservative' or 'priority', not {rule!r}", field="rule"
        )
    if not 0.0 <= coverage_threshold < 1.0:
        raise InputError("coverage threshold must be in [0, 1)", field="coverage_threshold")
    missing = [name for name in masks if name not in params]
    if missing:
        raise InputError(
            f"no alpha/beta and recovery given for structure(s) {missing}", field="params"
        )
    for name, (ab, f) in {**params, "<default>": default}.items():
        if not (np.isfinite(ab) and ab > 0):
            raise InputError(f"alpha/beta of {name} must be > 0 Gy", field=f"params.{name}")
        if not (0.0 <= f <= 1.0):
            raise InputError(
                f"recovered fraction of {name} must be in [0, 1]", field=f"params.{name}"
            )
    shape = tuple(grid.shape)
    ab_map = np.full(shape, np.nan)
    f_map = np.full(shape, np.nan)
    for name, mask in masks.items():
        m = np.asarray(mask)
        if m.shape != shape:
            raise InputError(
                f"mask of {name} has shape {m.shape}, the grid {shape}", field=f"masks.{name}"
            )
        covered = m.astype(float) > coverage_threshold
        ab, f = (float(v) for v in params[name])
        if rule == "priority":
            free = covered & np.isnan(ab_map)
            ab_map[free] = ab
            f_map[free] = f
        else:
            ab_map[covered] = np.fmin(ab_map[covered], ab)
            f_map[covered] = np.fmin(f_map[covered], f)
    unassigned = np.isnan(ab_map)
    ab_map[unassigned] = float(default[0])
    f_map[unassigned] = float(default[1])
    order = ", ".join(f"{n} ({params[n][0]:g} Gy, f={params[n][1]:g})" for n in masks)
    if rule == "priority":
        text = f"priority order: {order}; others {default[0]:g} Gy, f={default[1]:g}"
    else:
        text = (
            f"most conservative (lowest alpha/beta, lowest recovery) of: {order}; "
            f"others {default[0]:g} Gy, f={default[1]:g}"
        )
    text += f"; voxel covered when mask > {coverage_threshold:g}"
    return TissueMaps(alpha_beta=ab_map, recovered_fraction=f_map, rule=rule, description=text)


# --------------------------------------------------------------------------------------
# Accumulation
# --------------------------------------------------------------------------------------


def _same_grid(a: Grid, b: Grid) -> bool:
    return tuple(a.shape) == tuple(b.shape) and np.allclose(a.affine, b.affine, atol=1e-4)


@dataclass(frozen=True)
class CourseDose:
    """One course's effective dose on the reference grid, ready to be added.

    Attributes
    ----------
    label
        Name of the course (e.g. ``"2019 primary"``).
    dose
        EFFECTIVE dose (EQD2 or BED) already on the reference grid.
    recovered_fraction
        Per-voxel (or scalar) recovered fraction applied to this course, or ``None`` for no
        recovery (always ``None`` for the newest course).
    coverage
        Boolean mask: where this course's original dose grid covered the reference voxel
        (from resampling); ``None`` = everywhere.
    mapping
        How the course was mapped (``identity``, ``reg``, ``rigid``, ``deformable``).
    uncertain
        True when the mapping is uncertain (deformable registration).
    """

    label: str
    dose: Dose
    recovered_fraction: ArrayLike | None = None
    coverage: NDArray[np.bool_] | None = field(default=None, repr=False)
    mapping: str = "identity"
    uncertain: bool = False


@dataclass(frozen=True)
class CumulativeResult:
    """Cumulative effective dose on the reference grid.

    Attributes
    ----------
    total
        Sum over courses with each earlier course discounted by its recovered fraction.
    total_no_recovery
        Plain sum (no recovery credited): always reported alongside.
    contributions
        Per course (in input order), its contribution to ``total`` (after recovery).
    contributions_no_recovery
        Per course, its full effective dose.
    labels
        Course labels.
    coverage
        Reference voxels covered by every course's original grid.
    uncertain
        True if any course was mapped with an uncertain (deformable) registration.
    assumptions
        Human-readable list of the assumptions behind the result.
    """

    total: Dose
    total_no_recovery: Dose
    contributions: tuple[Dose, ...]
    contributions_no_recovery: tuple[Dose, ...]
    labels: tuple[str, ...]
    coverage: NDArray[np.bool_] = field(repr=False)
    uncertain: bool
    assumptions: tuple[str, ...]

    @property
    def grid(self) -> Grid:
        return self.total.grid


def accumulate(
    courses: Sequence[CourseDose | tuple], *, reference_label: str | None = None
) -> CumulativeResult:
    """Add the effective doses of several courses on one reference grid.

    Parameters
    ----------
    courses
        :class:`CourseDose` items (or ``(dose, recovered_fraction_or_None)`` tuples), oldest
        first. All must be EFFECTIVE, of the same quantity (EQD2 or BED), on the same grid.
        Recovery is applied to the courses that carry a recovered fraction: the earlier
        course contributes ``(1 - f) * dose``.
    reference_label
        Name of the reference course, recorded in the assumptions.

    Raises
    ------
    InputError
        On a physical dose, mixed quantities, mismatched grids or bad recovered fractions.
    """
    items: list[CourseDose] = []
    for index, course in enumerate(courses):
        if isinstance(course, CourseDose):
            items.append(course)
        else:
            dose, recovery = course
            items.append(
                CourseDose(label=f"course {index + 1}", dose=dose, recovered_fraction=recovery)
            )
    if not items:
        raise InputError("nothing to accumulate: no course given", field="courses")
    grid = items[0].dose.grid
    quantity = items[0].dose.quantity
    total = np.zeros(grid.shape)
    total_nr = np.zeros(grid.shape)
    coverage = np.ones(grid.shape, dtype=bool)
    contributions, contributions_nr, assumptions = [], [], []
    for index, item in enumerate(items):
        where = f"courses[{index}]"
        if item.dose.kind is not DoseKind.EFFECTIVE:
            raise InputError(
                f"course {item.label!r} is a physical dose: convert it to EQD2/BED first",
                field=where,
            )
        if item.dose.quantity != quantity:
            raise InputError(
                f"course {item.label!r} is {item.dose.quantity}, course 1 is {quantity}: "
                "do not add different quantities",
                field=where,
            )
        if not _same_grid(item.dose.grid, grid):
            raise InputError(
                f"course {item.label!r} is not on the reference grid; resample it first",
                field=where,
            )
        values = np.asarray(item.dose.values, dtype=float)
        if item.recovered_fraction is None:
            residual = values
            assumptions.append(f"{item.label}: counted in full (no recovery)")
        else:
            f = np.asarray(item.recovered_fraction, dtype=float)
            if f.ndim and f.shape != tuple(grid.shape):
                raise InputError(
                    f"recovered-fraction map of {item.label!r} does not match the grid",
                    field=where,
                )
            if np.any(~np.isfinite(f)) or np.any(f < 0) or np.any(f > 1):
                raise InputError("recovered fraction must be in [0, 1]", field=where)
            residual = values * (1.0 - f)
            assumptions.append(
                f"{item.label}: recovered fraction {float(np.min(f)):g}-{float(np.max(f)):g} "
                "credited (earlier course counts (1 - f) x dose)"
            )
        if item.coverage is not None:
            coverage &= np.asarray(item.coverage, dtype=bool)
        if item.uncertain:
            assumptions.append(f"{item.label}: mapped by {item.mapping} registration - UNCERTAIN")
        else:
            assumptions.append(f"{item.label}: mapped by {item.mapping}")
        total += residual
        total_nr += values
        prov = {**item.dose.provenance, "course": item.label, "mapping": item.mapping}
        contributions.append(
            Dose(
                grid,
                residual,
                DoseKind.EFFECTIVE,
                item.dose.fractions,
                quantity,
                {**prov, "recovery_applied": item.recovered_fraction is not None},
            )
        )
        contributions_nr.append(
            Dose(grid, values, DoseKind.EFFECTIVE, item.dose.fractions, quantity, prov)
        )
    if not coverage.all():
        assumptions.append(
            f"{int((~coverage).sum())} reference voxels lie outside at least one course's dose "
            "grid; that course contributes 0 there"
        )
    if reference_label:
        assumptions.append(f"reference grid: {reference_label}")
    uncertain = any(item.uncertain for item in items)
    common = {
        "courses": [item.label for item in items],
        "assumptions": list(assumptions),
        "uncertain": uncertain,
        "method": f"voxel-wise {quantity} sum",
    }
    return CumulativeResult(
        total=Dose(
            grid, total, DoseKind.EFFECTIVE, None, quantity, {**common, "recovery": "applied"}
        ),
        total_no_recovery=Dose(
            grid, total_nr, DoseKind.EFFECTIVE, None, quantity, {**common, "recovery": "none"}
        ),
        contributions=tuple(contributions),
        contributions_no_recovery=tuple(contributions_nr),
        labels=tuple(item.label for item in items),
        coverage=coverage,
        uncertain=uncertain,
        assumptions=tuple(assumptions),
    )


def structure_contributions(
    result: CumulativeResult, masks: Mapping[str, ArrayLike]
) -> dict[str, dict[str, dict[str, float]]]:
    """Each course's contribution per structure: volume-weighted mean and maximum.

    Returns ``{structure: {course label: {"mean": Gy, "max": Gy, "mean_no_recovery": Gy}}}``.
    The mean weights voxels by their fractional occupancy; the maximum is over voxels with
    occupancy > 0.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, mask in masks.items():
        w = np.asarray(mask, dtype=float)
        if w.shape != tuple(result.grid.shape):
            raise InputError(
                f"mask of {name} does not match the reference grid", field=f"masks.{name}"
            )
        total_w = w.sum()
        inside = w > 0
        per_course = {}
        for label, dose, dose_nr in zip(
            result.labels, result.contributions, result.contributions_no_recovery, strict=True
        ):
            if total_w <= 0:
                per_course[label] = {
                    "mean": float("nan"),
                    "max": float("nan"),
                    "mean_no_recovery": float("nan"),
                }
                continue
            per_course[label] = {
                "mean": float((dose.values * w).sum() / total_w),
                "max": float(dose.values[inside].max()),
                "mean_no_recovery": float((dose_nr.values * w).sum() / total_w),
            }
        out[name] = per_course
    return out


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
