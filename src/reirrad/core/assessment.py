"""Structure-level re-irradiation assessment: per-course EQD2/BED, recovery, cumulative sums.

For every structure and dose statistic the case gives, each course's physical value is
converted to EQD2 and BED by the course's *conversion method*:

``structure``
    The statistic is converted with its own dose per fraction, ``statistic / fractions``.
    EQD2 is monotonic in dose, so for dose-at-volume statistics (Dmax, Dmin, Dx%, Dxcc) this
    gives exactly the same statistic of the EQD2 distribution.  For Dmean it is an
    approximation (the EQD2 of the mean is not the mean EQD2; it underestimates the mean
    EQD2 of an inhomogeneous dose when alpha/beta is small), and the output says so.
``prescription``
    The statistic is converted with the course's prescription dose per fraction:
    ``BED = D (1 + d_Rx / (alpha/beta))``.  This is what the case report's Table 2 does for
    the radiosurgery course; it overstates the effect of low doses in organs at risk.
``none``
    The physical dose is used as if it were an EQD2 (delivered in 2-Gy fractions); BED is
    derived from it.  This is the case report's Table 1.

Earlier courses are discounted by each tissue's recovery model, from the interval between
the end of the earlier course and the start of the newest one; the newest course is never
discounted.  Cumulative values are reported with and without recovery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reirrad.core import radiobiology as rb
from reirrad.core.case import METHODS, Case, Course, StructureSpec
from reirrad.core.constraints import Constraint, ConstraintResult, evaluate
from reirrad.core.metrics import parse_metric
from reirrad.core.sensitivity import SensitivityOutcome, classify_scenarios, scenarios
from reirrad.errors import InputError

if TYPE_CHECKING:  # typing only: keeps `import reirrad` free of the DVH engine
    from reirrad.core.voxel import VoxelAssessment

__all__ = [
    "Assessment",
    "ConstraintOutcome",
    "CourseValue",
    "Cumulative",
    "NotEvaluated",
    "StructureResult",
    "assess",
    "case_constraints",
    "convert_statistic",
    "resolve_methods",
]

MEAN_APPROXIMATION = (
    "Dmean converted with its own dose per fraction (method 'structure') is an approximation: "
    "the EQD2 of the mean dose is not the mean EQD2; a voxel-wise calculation is needed for an "
    "exact mean"
)
METHOD_TEXT = {
    "structure": "each statistic converted with its own dose per fraction (statistic / fractions)",
    "prescription": "converted with the course's prescription dose per fraction",
    "none": "physical dose used as it is (taken as EQD2, i.e. as if given in 2-Gy fractions)",
}


@dataclass(frozen=True)
class CourseValue:
    """One course's contribution to one structure statistic."""

    course: str
    statistic: str
    method: str
    physical_gy: float
    dose_per_fraction_gy: float | None
    eqd2_gy: float
    bed_gy: float
    recovered_fraction: float
    effective_eqd2_gy: float
    effective_bed_gy: float
    interval_days: int | None


@dataclass(frozen=True)
class Cumulative:
    """Sums over courses; ``eqd2_gy`` and ``bed_gy`` include recovery, the others do not."""

    physical_gy: float
    eqd2_gy: float
    eqd2_no_recovery_gy: float
    bed_gy: float
    bed_no_recovery_gy: float


@dataclass(frozen=True)
class ConstraintOutcome:
    """A constraint checked on a result row (``course`` set for per-course limits)."""

    result: ConstraintResult
    quantity_text: str
    course: str | None = None
    #: The verdict over the case's alpha/beta x recovery scenarios (``analysis.sensitivity``);
    #: ``None`` for limits on physical dose, which neither assumption changes.
    sensitivity: SensitivityOutcome | None = None


@dataclass(frozen=True)
class StructureResult:
    """One structure and statistic (or declared mix of statistics) over all courses."""

    structure: str
    role: str
    organ: str | None
    statistic: str
    alpha_beta: float
    recovery: str
    method: str
    mixed: bool
    courses: tuple[CourseValue, ...]
    cumulative: Cumulative
    constraints: tuple[ConstraintOutcome, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotEvaluated:
    """A constraint that matched a structure but could not be checked, and why."""

    constraint: Constraint
    structure: str
    reason: str


@dataclass(frozen=True)
class Assessment:
    """The complete structure-level assessment of a case."""

    case: Case
    methods: Mapping[str, str]
    results: tuple[StructureResult, ...]
    not_evaluated: tuple[NotEvaluated, ...] = ()
    prognosis: Mapping[str, object] = field(default_factory=dict)
    assumptions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: The voxel-wise assessment when every course gives DICOM (the result; the structure-level
    #: rows are then the comparison).
    voxel: VoxelAssessment | None = None


def convert_statistic(
    physical_gy: float,
    course: Course,
    method: str,
    alpha_beta: float,
    *,
    lql: rb.LQL | None = None,
    repopulation: rb.Repopulation | None = None,
) -> tuple[float, float, float | None]:
    """Convert one course's physical statistic; returns ``(eqd2, bed, dose_per_fraction)``.

    ``repopulation`` (targets only) subtracts the loss for the course's overall time.
    """
    options: dict = {"lql": lql}
    if repopulation is not None:
        options.update(repopulation=repopulation, overall_time_days=course.overall_time_days)
    if physical_gy == 0:
        # Not irradiated in this course: nothing to convert (and no fraction size to use).
        dpf = None if method == "none" else 0.0
        return 0.0, 0.0, dpf
    if method == "none":
        eqd2 = float(physical_gy)
        return eqd2, float(rb.eqdx_to_bed(eqd2, alpha_beta)), None
    if method == "structure":
        dpf = physical_gy / course.fractions
        bed = float(rb.bed(physical_gy, course.fractions, alpha_beta, **options))
    elif method == "prescription":
        dpf = course.primary_prescription().dose_per_fraction_gy
        # The same total dose, but each fraction counted at the prescription's size.
        bed = float(rb.bed(physical_gy, physical_gy / dpf, alpha_beta, **options))
    else:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    return float(rb.bed_to_eqdx(bed, alpha_beta)), bed, dpf


def recovery_warnings(case: Case) -> list[str]:
    """Each recovery model applied at an interval outside the range its source supports."""
    newest = case.courses[-1]
    intervals = [(newest.start - c.end).days for c in case.courses if c is not newest]
    models = [case.tissue(spec)[1] for spec in case.structures]
    default = case.analysis.default_tissue
    if default is not None and default.recovery is not None:
        from reirrad.core.recovery import recovery_model_from_spec

        models.append(recovery_model_from_spec(default.recovery))
    out: list[str] = []
    for model in models:
        for interval in intervals:
            text = model.evidence_warning(interval)
            if text and text not in out:
                out.append(text)
    return out


def _recovered_fractions(case: Case, model) -> list[tuple[float, int | None]]:
    newest = case.courses[-1]
    out = []
    for course in case.courses:
        if course is newest:
            out.append((0.0, None))
        else:
            interval = (newest.start - course.end).days
            out.append((float(model.recovered_fraction(interval)), interval))
    return out


def _row(
    case: Case,
    spec: StructureSpec,
    statistics: Mapping[str, str],
    methods: Mapping[str, str],
    doses: Mapping[str, Mapping[str, float]],
    options: Mapping,
    alpha_beta: float | None = None,
) -> tuple[tuple[CourseValue, ...], Cumulative]:
    tissue_ab, model = case.tissue(spec)
    ab = alpha_beta or tissue_ab
    repopulation = options.get("repopulation") if spec.role == "target" else None
    values = []
    for course, (recovered, interval) in zip(
        case.courses, _recovered_fractions(case, model), strict=True
    ):
        statistic = statistics[course.id]
        physical = doses[course.id][spec.name][statistic]
        eqd2, bed, dpf = convert_statistic(
            physical,
            course,
            methods[course.id],
            ab,
            lql=options.get("lql"),
            repopulation=repopulation,
        )
        values.append(
            CourseValue(
                course=course.id,
                statistic=statistic,
                method=methods[course.id],
                physical_gy=physical,
                dose_per_fraction_gy=dpf,
                eqd2_gy=eqd2,
                bed_gy=bed,
                recovered_fraction=recovered,
                effective_eqd2_gy=eqd2 * (1.0 - recovered),
                effective_bed_gy=bed * (1.0 - recovered),
                interval_days=interval,
            )
        )
    cumulative = Cumulative(
        physical_gy=sum(v.physical_gy for v in values),
        eqd2_gy=sum(v.effective_eqd2_gy for v in values),
        eqd2_no_recovery_gy=sum(v.eqd2_gy for v in values),
        bed_gy=sum(v.effective_bed_gy for v in values),
        bed_no_recovery_gy=sum(v.bed_gy for v in values),
    )
    return tuple(values), cumulative


def _method_label(methods: Mapping[str, str]) -> str:
    distinct = set(methods.values())
    if len(distinct) == 1:
        return distinct.pop()
    return ", ".join(f"{course}={method}" for course, method in methods.items())


def _min_interval_days(case: Case) -> int | None:
    gaps = [(b.start - a.end).days for a, b in zip(case.courses, case.courses[1:], strict=False)]
    return min(gaps) if gaps else None


def _sensitivity(
    case: Case,
    spec: StructureSpec,
    statistics: Mapping[str, str],
    methods: Mapping[str, str],
    doses: Mapping[str, Mapping[str, Mapping[str, float]]],
    constraint: Constraint,
    options: Mapping,
    course: str | None = None,
) -> SensitivityOutcome | None:
    """A limit's verdict over the case's alpha/beta x recovery scenarios.

    The scenarios are those of the voxel-wise run (``analysis.sensitivity``): an organ's
    alpha/beta is shifted by -x, 0 and +x Gy (a target's, and a limit stated at its own
    alpha/beta, are not); the recovered fractions are scaled from none to the model's value
    where the limit credits recovery. Physical-dose limits depend on neither: ``None``.
    """
    if constraint.quantity == "physical":
        return None
    settings = case.analysis.sensitivity
    x = settings.alpha_beta_shift_gy
    shifts = (-x, 0.0, x) if x > 0 and constraint.alpha_beta_gy is None else (0.0,)
    if spec.role == "target":
        shifts = (0.0,)
    ab = constraint.alpha_beta_gy or case.tissue(spec)[0]
    if ab + min(shifts) <= 0:
        raise InputError(
            f"alpha/beta shift {min(shifts):+g} Gy gives alpha/beta <= 0 Gy for {spec.name}; use "
            "a smaller analysis.sensitivity.alpha_beta_shift_gy",
            field="analysis.sensitivity.alpha_beta_shift_gy",
        )
    rows = {
        shift: _row(case, spec, statistics, methods, doses, options, alpha_beta=ab + shift)[0]
        for shift in shifts
    }
    key = "eqd2_gy" if constraint.quantity == "eqd2" else "bed_gy"
    values = []
    for scenario in scenarios(shifts, settings.recovery_scales):
        courses = rows[scenario.alpha_beta_shift]
        if course is not None:  # a per-course limit: no recovery involved
            number = next(getattr(v, key) for v in courses if v.course == course)
        else:
            scale = scenario.recovery_scale if constraint.recovery_credit else 0.0
            number = sum(getattr(v, key) * (1.0 - scale * v.recovered_fraction) for v in courses)
        values.append((scenario, float(number)))
    return classify_scenarios(constraint, values, interval_days=_min_interval_days(case))


def _check_constraints(
    case: Case,
    spec: StructureSpec,
    statistic: str,
    methods: Mapping[str, str],
    doses: Mapping[str, Mapping[str, Mapping[str, float]]],
    constraints: list[Constraint],
    options: Mapping,
) -> tuple[ConstraintOutcome, ...]:
    outcomes = []
    statistics = {c.id: statistic for c in case.courses}
    for constraint in constraints:
        values, cumulative = _row(
            case, spec, statistics, methods, doses, options, alpha_beta=constraint.alpha_beta_gy
        )
        ab = constraint.alpha_beta_gy or case.tissue(spec)[0]
        at = f"alpha/beta {ab:g} Gy"
        if constraint.scope == "course":
            for value in values:
                number = {
                    "physical": value.physical_gy,
                    "eqd2": value.eqd2_gy,
                    "bed": value.bed_gy,
                }[constraint.quantity]
                outcomes.append(
                    ConstraintOutcome(
                        result=evaluate(constraint, number, interval_days=_min_interval_days(case)),
                        quantity_text=f"{constraint.quantity} of course {value.course} ({at})",
                        course=value.course,
                        sensitivity=_sensitivity(
                            case,
                            spec,
                            statistics,
                            methods,
                            doses,
                            constraint,
                            options,
                            course=value.course,
                        ),  # fmt: skip
                    )
                )
            continue
        if constraint.quantity == "physical":
            number, text = cumulative.physical_gy, "cumulative physical dose (no recovery)"
        elif constraint.quantity == "eqd2":
            number = (
                cumulative.eqd2_gy if constraint.recovery_credit else cumulative.eqd2_no_recovery_gy
            )
            text = f"cumulative EQD2 ({at}, {'after' if constraint.recovery_credit else 'without'} recovery)"
        else:
            number = (
                cumulative.bed_gy if constraint.recovery_credit else cumulative.bed_no_recovery_gy
            )
            text = f"cumulative BED ({at}, {'after' if constraint.recovery_credit else 'without'} recovery)"
        result = evaluate(constraint, number, interval_days=_min_interval_days(case))
        sensitivity = _sensitivity(case, spec, statistics, methods, doses, constraint, options)
        outcomes.append(ConstraintOutcome(result, text, sensitivity=sensitivity))
    return tuple(outcomes)


def case_constraints(case: Case, constraint_sets) -> list[tuple[Constraint, str]]:
    """All constraints of a case with what each applies to: ``organ:<key>`` or ``structure:<name>``.

    ``constraint_sets`` are the loaded sets; the case's custom limits are added, each bound to
    its structure.
    """
    out = [(c, f"organ:{c.organ}") for group in constraint_sets for c in group]
    for spec in case.constraints.custom:
        constraint = Constraint(
            id=spec.id,
            organ="custom",
            metric=spec.metric,
            quantity=spec.quantity,
            scope=spec.scope,
            comparator=spec.comparator,
            limit=spec.limit,
            alpha_beta_gy=spec.alpha_beta_gy,
            recovery_credit=spec.recovery_credit,
            min_interval_days=spec.min_interval_days,
            tier=spec.tier,
            endpoint=spec.endpoint or "not stated",
            source=spec.source,
            evidence=spec.evidence,
            note=f"case-specific limit on {spec.structure}",
        )
        out.append((constraint, f"structure:{spec.structure}"))
    return out


def _applies(target: str, spec: StructureSpec) -> bool:
    return target == f"structure:{spec.name}" or (
        spec.organ is not None and target == f"organ:{spec.organ}"
    )


def resolve_methods(case: Case, override: Mapping[str, str] | str | None = None) -> dict[str, str]:
    """Per-course method: the case's analysis section, overridden by ``override``.

    ``override`` is a method for every course, or a mapping course id -> method.
    """
    methods = {c.id: case.method_for(c.id) for c in case.courses}
    if isinstance(override, str):
        methods = dict.fromkeys(methods, override)
    elif override:
        for course_id, method in override.items():
            case.course(course_id)
            methods[course_id] = method
    for course_id, method in methods.items():
        if method not in METHODS:
            raise InputError(
                f"unknown method {method!r} for course {course_id}; use one of {', '.join(METHODS)}",
                field="method",
            )
    return methods


def assess(
    case: Case,
    *,
    methods: Mapping[str, str] | str | None = None,
    constraint_sets: list[list[Constraint]] | None = None,
    doses: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    lql: rb.LQL | None = None,
    repopulation: rb.Repopulation | None = None,
    prognosis: Mapping[str, object] | None = None,
    extra_assumptions: Sequence[str] = (),
) -> Assessment:
    """Assess a case structure by structure.

    Parameters
    ----------
    case
        The validated case.
    methods
        Conversion method for all courses, or per course id; default: the case's analysis.
    constraint_sets
        Constraint lists (e.g. loaded from the packaged sets the case names).
    doses
        Per course, per structure, per statistic physical doses (Gy).  Default: the values
        typed into the case; callers that computed DVHs from DICOM pass the merged values.
    lql, repopulation
        LQ-L model for all conversions; repopulation correction for targets.
    prognosis
        Precomputed prognostic results to attach (see :func:`reirrad.pipelines.assess.assess_case`).
    extra_assumptions
        Facts the caller established (e.g. which statistics came from which DICOM file).
    """
    resolved = resolve_methods(case, methods)
    run = _Run(
        case=case,
        resolved=resolved,
        doses=doses if doses is not None else {c.id: c.doses for c in case.courses},
        options={"lql": lql, "repopulation": repopulation},
    )
    constraints = case_constraints(case, constraint_sets or [])
    results: list[StructureResult] = []
    not_evaluated: list[NotEvaluated] = []
    warnings: list[str] = []
    # (statistic, courses that give it) -> structures: one warning per group, not per structure
    partial_by: dict[tuple[str, tuple[str, ...]], list[str]] = {}

    for spec in case.structures:
        per_course = [set(run.doses.get(c.id, {}).get(spec.name, {})) for c in case.courses]
        if not any(per_course):
            warnings.append(f"structure {spec.name!r} has no dose in any course; skipped")
            continue
        common = set.intersection(*per_course)
        _collect_partial(case, spec, per_course, common, partial_by)
        applicable = [c for c, target in constraints if _applies(target, spec)]
        results += _common_results(run, spec, common, applicable)
        not_evaluated += _unevaluable(case, spec, per_course, common, applicable)
        results += _mixed_results(run, spec, per_course)

    for (name, have), names in partial_by.items():
        warnings.append(
            f"{name} given for course {', '.join(have)} only, so no cumulative {name} for: "
            f"{', '.join(names)}; enter it for every course (0 Gy if not irradiated) or declare "
            "a sum of different statistics (analysis.mixed_statistics)"
        )
    return Assessment(
        case=case,
        methods=resolved,
        results=tuple(results),
        not_evaluated=tuple(not_evaluated),
        prognosis=dict(prognosis or {}),
        assumptions=_assumptions(case, resolved, lql, repopulation, extra_assumptions),
        warnings=tuple(recovery_warnings(case)) + tuple(warnings),
    )


@dataclass(frozen=True)
class _Run:
    """What every row of one assessment is computed with."""

    case: Case
    resolved: dict[str, str]
    doses: Mapping[str, Mapping[str, Mapping[str, float]]]
    options: dict[str, object]


def _collect_partial(
    case: Case,
    spec: StructureSpec,
    per_course: list[set[str]],
    common: set[str],
    partial_by: dict[tuple[str, tuple[str, ...]], list[str]],
) -> None:
    """Record statistics given for some courses only (unless a mixed statistic uses them)."""
    partial = sorted(set.union(*per_course) - common, key=lambda s: parse_metric(s).name)
    mixed_used = {
        metric
        for mixed in case.analysis.mixed_statistics
        if mixed.structures is None or spec.name in mixed.structures
        for metric in mixed.per_course.values()
    }
    for name in partial:
        if parse_metric(name).name in mixed_used:
            continue
        have = [c.id for c, stats in zip(case.courses, per_course, strict=True) if name in stats]
        partial_by.setdefault((name, tuple(have)), []).append(spec.name)


def _common_results(
    run: _Run, spec: StructureSpec, common: set[str], applicable: list[Constraint]
) -> list[StructureResult]:
    """One row per statistic every course gives, with its constraint outcomes."""
    case, resolved = run.case, run.resolved
    alpha_beta, model = case.tissue(spec)
    rows = []
    for statistic in sorted(common, key=lambda s: (not parse_metric(s).kind == "mean", s)):
        statistics = {c.id: statistic for c in case.courses}
        values, cumulative = _row(case, spec, statistics, resolved, run.doses, run.options)
        notes = []
        if parse_metric(statistic).kind == "mean" and "structure" in resolved.values():
            notes.append(MEAN_APPROXIMATION)
        matching = [c for c in applicable if parse_metric(c.metric).name == statistic]
        outcomes = _check_constraints(
            case, spec, statistic, resolved, run.doses, matching, run.options
        )
        rows.append(
            StructureResult(
                structure=spec.name,
                role=spec.role,
                organ=spec.organ,
                statistic=statistic,
                alpha_beta=alpha_beta,
                recovery=model.describe(),
                method=_method_label(resolved),
                mixed=False,
                courses=values,
                cumulative=cumulative,
                constraints=outcomes,
                notes=tuple(notes),
            )
        )
    return rows


def _unevaluable(
    case: Case,
    spec: StructureSpec,
    per_course: list[set[str]],
    common: set[str],
    applicable: list[Constraint],
) -> list[NotEvaluated]:
    """Constraints on a statistic that not every course gives, with the reason."""
    missing = []
    for constraint in applicable:
        name = parse_metric(constraint.metric).name
        if name in common:
            continue
        have = [c.id for c, st in zip(case.courses, per_course, strict=True) if name in st]
        reason = (
            f"{name} given for course {', '.join(have)} only, no cumulative value"
            if have
            else f"{name} given for no course"
        )
        missing.append(NotEvaluated(constraint, spec.name, reason))
    return missing


def _mixed_results(
    run: _Run, spec: StructureSpec, per_course: list[set[str]]
) -> list[StructureResult]:
    """Rows of the declared sums of different statistics across courses."""
    case = run.case
    alpha_beta, model = case.tissue(spec)
    rows = []
    for mixed in case.analysis.mixed_statistics:
        if mixed.structures is not None and spec.name not in mixed.structures:
            continue
        have = all(
            mixed.per_course[c.id] in stats
            for c, stats in zip(case.courses, per_course, strict=True)
        )
        if not have:
            if mixed.structures is not None:
                raise InputError(
                    f"mixed statistic {mixed.name!r}: {spec.name} lacks one of {mixed.per_course}",
                    field="analysis.mixed_statistics",
                )
            continue
        values, cumulative = _row(
            case, spec, mixed.per_course, run.resolved, run.doses, run.options
        )
        label = " + ".join(f"{course}:{metric}" for course, metric in mixed.per_course.items())
        rows.append(
            StructureResult(
                structure=spec.name,
                role=spec.role,
                organ=spec.organ,
                statistic=f"{label} (mixed)",
                alpha_beta=alpha_beta,
                recovery=model.describe(),
                method=_method_label(run.resolved),
                mixed=True,
                courses=values,
                cumulative=cumulative,
                notes=(
                    f"mixed statistics ({mixed.name}): different statistics are added across "
                    "courses; the sum is neither a cumulative mean nor a cumulative maximum",
                    *(() if mixed.note is None else (mixed.note,)),
                ),
            )
        )
    return rows


def _assumptions(
    case: Case,
    resolved: Mapping[str, str],
    lql: rb.LQL | None,
    repopulation: rb.Repopulation | None,
    extra: Sequence[str],
) -> tuple[str, ...]:
    """Every assumption the rows rest on, in words."""
    assumptions = [
        f"course {course_id}: method '{method}': {METHOD_TEXT[method]}"
        for course_id, method in resolved.items()
    ]
    assumptions.append(
        "recovery is applied to earlier courses only, from the interval between the end of each "
        f"earlier course and the start of the newest course ({case.courses[-1].id}); "
        "cumulative values are also given without recovery"
    )
    for spec in case.structures:
        ab, model = case.tissue(spec)
        assumptions.append(
            f"{spec.name} ({spec.role}): alpha/beta {ab:g} Gy; recovery {model.describe()}"
        )
    assumptions += list(extra)
    if lql is not None:
        assumptions.append(
            f"LQ-L above {lql.transition_dose_gy:g} Gy per fraction ({lql.citation})"
        )
    if repopulation is not None:
        assumptions.append(
            f"repopulation for targets: Tk {repopulation.kickoff_days:g} d, Dprolif "
            f"{repopulation.dprolif_gy_per_day:g} Gy/d ({repopulation.citation})"
        )
    return tuple(assumptions)
