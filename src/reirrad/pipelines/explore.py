"""The fractionation explorer for a case file (``reirrad explore``).

Builds the explorer's inputs (:mod:`reirrad.core.explore`) from a case: each organ's residual
EQD2 from the earlier courses (structure-level, after the tissue's recovery up to the new
course's start), the new plan's relative doses, and the case's cumulative constraints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reirrad.core import radiobiology as rb
from reirrad.core.accumulate import effective_sum
from reirrad.core.assessment import case_constraints, convert_statistic, resolve_methods
from reirrad.core.case import Case, Course
from reirrad.core.constraints import Constraint
from reirrad.core.explore import (
    DEFAULT_FRACTIONS,
    CumulativeConstraint,
    CurativeCriterion,
    ExplorerResult,
    OrganAtRisk,
    Target,
    explore,
)
from reirrad.core.metrics import parse_metric
from reirrad.core.voxel import VoxelAssessment
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.constraint_sets import load_constraints
from reirrad.pipelines.accumulate import accumulate_case

__all__ = ["CaseExploration", "explore_case"]


@dataclass(frozen=True)
class CaseExploration:
    """The explorer's result for a case, with what went into it.

    Attributes
    ----------
    result
        The explorer's table, sources and assumptions.
    history
        Ids of the courses counted as history.
    start
        Start date of the new course (the end of the recovery interval).
    new_course
        The course being re-planned, if any.
    not_explored
        Constraints that match a structure but could not be used, and why.
    assumptions
        Everything assumed in building the inputs.
    """

    result: ExplorerResult
    history: tuple[str, ...]
    start: object
    new_course: str | None
    not_explored: tuple[str, ...]
    assumptions: tuple[str, ...]
    exceeded: tuple[str, ...] = ()
    level: str = "structure"
    organs: tuple[OrganAtRisk, ...] = ()


def _relative_doses(case: Case) -> dict[str, dict[str, float]]:
    explore_spec = case.exploration
    relative: dict[str, dict[str, float]] = {}
    if explore_spec.new_course is not None:
        course = case.course(explore_spec.new_course)
        total = course.primary_prescription().dose_gy
        for structure, stats in course.doses.items():
            relative[structure] = {
                parse_metric(k).name: 100.0 * v / total for k, v in stats.items()
            }
    for structure, stats in explore_spec.relative_doses.items():
        relative.setdefault(structure, {}).update(
            {parse_metric(k).name: float(v) for k, v in stats.items()}
        )
    return relative


def _residual(
    case: Case,
    history: list[Course],
    structure: str,
    statistic: str,
    start,
    methods,
    *,
    alpha_beta: float | None = None,
    recovery: bool = True,
) -> float | None:
    """Residual EQD2 (Gy) of a statistic summed over the history courses, or None if missing."""
    spec = case.structure(structure)
    tissue_ab, model = case.tissue(spec)
    ab = alpha_beta or tissue_ab
    total = 0.0
    for course in history:
        stats = {parse_metric(k).name: v for k, v in course.doses.get(structure, {}).items()}
        if statistic not in stats:
            return None
        eqd2, _, _ = convert_statistic(stats[statistic], course, methods[course.id], ab)
        recovered = float(model.recovered_fraction((start - course.end).days)) if recovery else 0.0
        total += eqd2 * (1.0 - recovered)
    return total


def _limit_eqd2(constraint: Constraint, alpha_beta: float) -> float | None:
    if constraint.quantity == "eqd2":
        return constraint.limit
    if constraint.quantity == "bed":
        return float(rb.bed_to_eqdx(constraint.limit, alpha_beta))
    return None


def _explorable_limit(
    constraint: Constraint, tissue_ab: float, label: str, skipped: list[str]
) -> tuple[float, float | None]:
    """The alpha/beta and EQD2 limit a constraint is explored at (the limit's own alpha/beta,
    else the tissue's); ``None`` (and a line in ``skipped``) for a physical-dose limit."""
    ab = constraint.alpha_beta_gy or tissue_ab
    limit = _limit_eqd2(constraint, ab)
    if limit is None:
        skipped.append(f"{label}: a physical-dose limit cannot be explored in EQD2")
    return ab, limit


def explore_case(
    case: Case | str | Path,
    *,
    constraint_sets: list[str] | None = None,
    fractions: list[int] | None = None,
    exclude: tuple[str, ...] | list[str] = (),
    base: Path | None = None,
    voxel: VoxelAssessment | None = None,
) -> CaseExploration:
    """Run the fractionation explorer on a case with an ``exploration`` section.

    For each number of fractions, the highest prescription dose per fraction for which every
    cumulative constraint on the structures with relative doses holds; structure-level (each
    statistic one "voxel", converted with its own dose per fraction); voxel-wise when every
    course has DICOM, from ``voxel`` (an accumulation with maps on the new course's grid, e.g.
    from :func:`reirrad.pipelines.run.run_case`) or from its own run.
    """
    if not isinstance(case, Case):
        base = Path(case).resolve().parent
        case = load_case(case)
    spec = case.exploration
    if spec is None:
        raise InputError(
            "the case has no 'exploration' section (target, and new_course or start with "
            "relative_doses); see docs/case-format.md",
            field="exploration",
        )
    if spec.new_course is not None:
        index = [c.id for c in case.courses].index(spec.new_course)
        history, start = list(case.courses[:index]), case.course(spec.new_course).start
    else:
        history, start = list(case.courses), spec.start
    methods = resolve_methods(case)
    relative = _relative_doses(case)
    sets = load_constraints(list(case.constraints.sets) + list(constraint_sets or []), base=base)
    constraints = case_constraints(case, sets)
    known = {c.id for c, _ in constraints}
    unknown = sorted(set(exclude) - known)
    if unknown:
        raise InputError(
            f"unknown constraint id(s) {unknown}; see reirrad constraints list", source="--exclude"
        )
    constraints = [(c, t) for c, t in constraints if c.id not in set(exclude)]
    if _voxel_path(case, spec):
        organs, target, notes, skipped, exceeded = _voxel_organs(
            case, spec, constraints, base, voxel
        )
        return _run(case, spec, organs, target, notes, skipped, exceeded, history, start,
                    fractions, exclude, level="voxel")  # fmt: skip
    notes: list[str] = [
        f"history: {', '.join(c.id for c in history)}; new course starts {start}",
        "residual EQD2 per organ: structure-level, each history statistic converted by its "
        "course's method, discounted by the tissue's recovery over the interval from the end "
        "of that course to the new start",
    ]
    found = _StructureLevel(case, history, start, methods, notes)
    for structure, stats in relative.items():
        struct = case.structure(structure)
        if struct.role != "organ_at_risk":
            continue
        for constraint, target in constraints:
            if target in (f"structure:{structure}", f"organ:{struct.organ}"):
                found.add_organ(structure, stats, constraint)
    target = _structure_level_target(case, spec, relative, history, start, methods, notes)
    return _run(case, spec, found.organs, target, notes, found.skipped, found.exceeded, history,
                start, fractions, exclude, level="structure")  # fmt: skip


@dataclass
class _StructureLevel:
    """The organs at risk of a structure-level exploration, collected one (structure,
    constraint) pair at a time, with what was skipped or already exceeded."""

    case: Case
    history: list
    start: object
    methods: object
    notes: list[str]
    organs: list[OrganAtRisk] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    exceeded: list[str] = field(default_factory=list)

    def add_organ(self, structure: str, stats: dict, constraint) -> None:
        tissue_ab, _ = self.case.tissue(self.case.structure(structure))
        metric = parse_metric(constraint.metric).name
        label = f"{structure}: {constraint.id}"
        if metric not in stats:
            self.skipped.append(f"{label}: no {metric} of the new plan (relative_doses)")
            return
        ab, limit = _explorable_limit(constraint, tissue_ab, label, self.skipped)
        if limit is None:
            return
        residual = 0.0
        if constraint.scope != "course":
            residual = _residual(
                self.case, self.history, structure, metric, self.start, self.methods,
                alpha_beta=ab, recovery=constraint.recovery_credit,
            )  # fmt: skip
            if residual is None:
                self.skipped.append(f"{label}: a history course has no {metric} for {structure}")
                return
        if residual >= limit:
            self.exceeded.append(
                f"{label}: residual {residual:.2f} Gy EQD2 >= limit {limit:g} Gy before any new dose"
            )
        if constraint.min_interval_days is not None and self.history:
            gap = (self.start - self.history[-1].end).days
            if gap < constraint.min_interval_days:
                self.notes.append(
                    f"{label}: interval {gap} d is shorter than the {constraint.min_interval_days:g} d "
                    "the limit was derived for; applied anyway, not validated"
                )
        self.organs.append(
            OrganAtRisk.from_statistic(
                name=label,
                alpha_beta_gy=ab,
                percent_of_prescription=stats[metric],
                residual_eqd2_gy=residual,
                constraints=(
                    CumulativeConstraint(
                        metric=metric,
                        limit_eqd2_gy=limit,
                        source=f"{constraint.source} [{constraint.evidence}]",
                    ),
                ),
            )
        )


def _structure_level_target(case, spec, relative, history, start, methods, notes) -> Target:
    """The target of a structure-level exploration: its Dmean residual (0, said, when a
    history course has none) and its dose relative to the prescription."""
    target_ab, _ = case.tissue(case.structure(spec.target))
    target_residual = _residual(case, history, spec.target, "Dmean", start, methods)
    if target_residual is None:
        target_residual = 0.0
        notes.append(f"target {spec.target}: no Dmean in every history course; residual taken as 0")
    return Target(
        alpha_beta_gy=target_ab,
        residual_eqd2_gy=target_residual,
        relative_dose=relative.get(spec.target, {}).get("Dmean", 100.0) / 100.0,
        name=spec.target,
    )


def _run(case, spec, organs, target, notes, skipped, exceeded, history, start, fractions,
         exclude, *, level: str) -> CaseExploration:  # fmt: skip
    if not organs:
        raise InputError(
            "no cumulative constraint applies to a structure with new-plan doses; add "
            "constraint sets or custom limits, and relative doses for their statistics",
            field="exploration",
        )
    result = explore(
        organs,
        target,
        fractions=fractions or spec.fractions or DEFAULT_FRACTIONS,
        curative=CurativeCriterion(
            threshold_gy=spec.curative_threshold_gy, quantity=spec.curative_quantity
        ),
        max_dose_per_fraction_gy=spec.max_dose_per_fraction_gy,
    )
    return CaseExploration(
        result=result,
        history=tuple(c.id for c in history),
        start=start,
        new_course=spec.new_course,
        not_explored=tuple(skipped),
        assumptions=tuple(notes)
        + tuple(f"constraint {c} left out on request (--exclude)" for c in exclude),
        exceeded=tuple(exceeded),
        level=level,
        organs=tuple(organs),
    )


def _voxel_path(case: Case, spec) -> bool:
    """Voxel-wise when the course being re-planned is the newest and every course has DICOM."""
    if spec.new_course is None or any(c.dicom is None for c in case.courses):
        return False
    if spec.new_course != case.courses[-1].id:
        raise InputError(
            "the voxel-wise explorer re-plans the newest course; set exploration.new_course "
            f"to {case.courses[-1].id!r} or drop the later courses",
            field="exploration.new_course",
        )
    return True


@dataclass(frozen=True)
class VoxelResidual:
    """One cumulative limit of one organ at risk, with its voxels on the new course's grid.

    ``box`` and ``inside`` place the voxels: ``grid[box][inside]`` in C order, the order of
    ``relative_dose``, ``residual_eqd2_gy`` and ``volume_cc``.
    """

    label: str
    metric: str
    alpha_beta_gy: float
    limit_eqd2_gy: float
    source: str
    box: tuple[slice, slice, slice]
    inside: np.ndarray
    relative_dose: np.ndarray
    residual_eqd2_gy: np.ndarray
    volume_cc: np.ndarray


def _history_residual(maps, history, box, inside, alpha_beta, recovery, model) -> np.ndarray:
    """Residual EQD2 of the history on a structure's voxels.

    The one engine (:func:`reirrad.core.accumulate.effective_sum`) on the structure's voxels,
    at one alpha/beta (the organ's or the limit's) and the organ's recovery.
    """
    courses = [maps.course(c.id).box(box) for c in history]
    if not courses:
        return np.zeros(int(inside.sum()))
    recovered = {
        c.id: float(model.recovered_fraction(maps.recovery_interval_days[c.id])) for c in history
    }
    total = effective_sum(
        courses, np.float32(alpha_beta), recovered if recovery else None, quantity="EQD2"
    )
    return total[inside].astype(float)


def voxel_residuals(
    case: Case,
    new_course: str,
    constraints,
    voxel: VoxelAssessment,
    skipped: list[str],
    exceeded: list[str],
) -> list[VoxelResidual]:
    """Per organ-at-risk limit, the voxels' residual EQD2 and new-plan relative dose.

    ``voxel``: the accumulation with maps on ``new_course``'s grid. Limits the explorer
    cannot handle are named in ``skipped``; Dmax limits already used up in ``exceeded``.
    """
    maps = voxel.maps
    new = case.course(new_course)
    new_phases = maps.course(new.id).phases
    if len(new_phases) != 1:
        raise InputError(
            "the explorer scales one fractionation; the course to re-plan has "
            f"{len(new_phases)} phases",
            field="exploration.new_course",
        )
    try:
        prescription = new.primary_prescription().dose_gy
    except InputError as error:
        raise error.located(field=f"courses[{new.id}].prescriptions") from None
    new_dose = new_phases[0][1]
    history = [c for c in case.courses if c.id != new.id]
    out: list[VoxelResidual] = []
    for struct in case.structures:
        if struct.role != "organ_at_risk" or struct.name not in maps.occupancy:
            continue
        tissue_ab, model = case.tissue(struct)
        box, occupancy = maps.occupancy[struct.name]
        inside = occupancy > 0.0
        if not inside.any():
            continue
        weights = occupancy[inside] * voxel.grid.voxel_volume_cc
        relative = new_dose[box][inside].astype(float) / prescription
        for constraint, target in constraints:
            if target not in (f"structure:{struct.name}", f"organ:{struct.organ}"):
                continue
            label = f"{struct.name}: {constraint.id}"
            metric = parse_metric(constraint.metric)
            if metric.kind not in ("max", "mean", "dose_at_volume"):
                skipped.append(f"{label}: the explorer handles Dmax, Dmean and Dx limits only")
                continue
            ab, limit = _explorable_limit(constraint, tissue_ab, label, skipped)
            if limit is None:
                continue
            if constraint.scope == "course":
                res = np.zeros_like(relative)
            else:
                res = _history_residual(
                    maps, history, box, inside, ab, constraint.recovery_credit, model
                )
            if metric.kind == "max" and res.max() >= limit:
                exceeded.append(
                    f"{label}: residual Dmax {res.max():.2f} Gy EQD2 >= limit {limit:g} Gy "
                    "before any new dose"
                )
            out.append(
                VoxelResidual(
                    label=label,
                    metric=metric.name,
                    alpha_beta_gy=ab,
                    limit_eqd2_gy=limit,
                    source=f"{constraint.source} [{constraint.evidence}]",
                    box=box,
                    inside=inside,
                    relative_dose=relative,
                    residual_eqd2_gy=res,
                    volume_cc=weights,
                )
            )
    return out


def _voxel_organs(case: Case, spec, constraints, base, voxel: VoxelAssessment | None = None):
    """Organs as voxel arrays from the DICOM courses: residual and relative dose per voxel.

    ``voxel``: the case's accumulation (with maps, on the new course's grid) when the caller
    has run it already; otherwise it is run here.
    """
    if voxel is None or voxel.maps is None or voxel.reference_course != spec.new_course:
        voxel = accumulate_case(case, reference=spec.new_course, base=base, keep_maps=True)
    maps = voxel.maps
    new = case.course(spec.new_course)
    skipped: list[str] = []
    exceeded: list[str] = []
    limits = voxel_residuals(case, new.id, constraints, voxel, skipped, exceeded)
    prescription = new.primary_prescription().dose_gy
    history = [c for c in case.courses if c.id != new.id]
    notes = [
        f"voxel-wise: history {', '.join(c.id for c in history)} mapped onto the grid of "
        f"{new.id} (see the accumulation assumptions); the new plan's dose per voxel divided by "
        f"its {prescription:g} Gy prescription gives each voxel's relative dose",
        "residual EQD2 per voxel: each history phase converted with the voxel's own dose per "
        "fraction at the organ's (or the limit's) alpha/beta, discounted by the organ's recovery "
        "up to the start of the new course",
        *voxel.assumptions,
    ]
    organs = [
        OrganAtRisk(
            name=item.label,
            alpha_beta_gy=item.alpha_beta_gy,
            relative_dose=item.relative_dose,
            residual_eqd2_gy=item.residual_eqd2_gy,
            constraints=(
                CumulativeConstraint(
                    metric=item.metric, limit_eqd2_gy=item.limit_eqd2_gy, source=item.source
                ),
            ),
            voxel_volume_cc=item.volume_cc,
        )
        for item in limits
    ]

    def voxels(name: str):
        box, occupancy = maps.occupancy[name]
        inside = occupancy > 0.0
        return box, inside, occupancy[inside] * voxel.grid.voxel_volume_cc

    target_spec = case.structure(spec.target)
    target_ab, target_model = case.tissue(target_spec)
    if spec.target in maps.occupancy:
        box, inside, weights = voxels(spec.target)
        res = _history_residual(maps, history, box, inside, target_ab, True, target_model)
        target_residual = float(np.average(res, weights=weights)) if inside.any() else 0.0
    else:
        target_residual = 0.0
        notes.append(f"target {spec.target} is not in the reference structure set; residual 0")
    target = Target(
        alpha_beta_gy=target_ab, residual_eqd2_gy=target_residual, relative_dose=1.0,
        name=spec.target,
    )  # fmt: skip
    notes.append(
        f"target {spec.target}: new-course EQD2 at the prescription; residual = its mean "
        f"history EQD2 {target_residual:.2f} Gy"
    )
    return organs, target, notes, skipped, exceeded
