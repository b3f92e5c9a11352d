"""Terminal text of an assessment: the verdicts first, one compact table, notes once.

Layout (every line at most :data:`WIDTH` characters, plain text, no colour codes):

1. the case and its courses;
2. the verdicts, grouped: EXCEEDED, NEAR THE LIMIT, NOT EVALUABLE (with the reason), MET;
3. one table, one row per structure and statistic;
4. numbered footnotes (each note said once and referenced from the rows), warnings grouped,
   the assumptions (method, alpha/beta, recovery model and interval, mapping, overlap rule),
   and the sources, one line per citation shared by several limits.

"Near the limit" is defined by the assessment's own sensitivity analysis: a limit met at the
nominal assumptions is near the limit when it is not met in every scenario of the case's
alpha/beta x recovery grid (``analysis.sensitivity``; :mod:`reirrad.core.sensitivity`), i.e.
when the limit lies within the range the result spans over those scenarios.
Nothing here computes dose; it lays out what the core and the pipelines produced.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from reirrad.core.assessment import (
    MEAN_APPROXIMATION,
    METHOD_TEXT,
    Assessment,
    StructureResult,
)
from reirrad.core.constraints import Constraint, ConstraintResult
from reirrad.core.sensitivity import SensitivityOutcome

__all__ = [
    "NEAR_DEFINITION",
    "WIDTH",
    "near_scenarios",
    "to_text",
    "verdict_groups",
    "voxel_to_text",
]

#: Columns of the terminal the text is laid out for (no line is longer).
WIDTH = 100

GROUPS = ("EXCEEDED", "NEAR THE LIMIT", "NOT EVALUABLE", "MET")


def _wrap(text: str, first: str = "", rest: str = "    ") -> list[str]:
    """``text`` in lines of at most :data:`WIDTH` characters (long tokens are broken)."""
    lines = textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )
    return lines or [first.rstrip()]


class _Refs:
    """Numbered footnotes ``[1]`` and sources ``[S1]``, each text said once."""

    def __init__(self) -> None:
        self.notes: dict[str, int] = {}
        self.sources: dict[str, tuple[int, list[str]]] = {}

    def note(self, text: str) -> str:
        return f"[{self.notes.setdefault(text, len(self.notes) + 1)}]"

    def source(self, text: str, what: str | None = None) -> str:
        number, items = self.sources.setdefault(text, (len(self.sources) + 1, []))
        if what is not None and what not in items:
            items.append(what)
        return f"[S{number}]"

    def constraint(self, c: Constraint) -> str:
        return self.source(f"{c.source} [{c.evidence}]")

    def note_lines(self) -> list[str]:
        out = []
        for text, number in self.notes.items():
            out += _wrap(text, f"[{number}] ", "    ")
        return out

    def source_lines(self) -> list[str]:
        out = []
        for text, (number, items) in self.sources.items():
            what = f"{', '.join(items)}: " if items else ""
            out += _wrap(f"{what}{text}", f"[S{number}] ", "    ")
        return out


NEAR_DEFINITION = (
    "met at nominal values, not in all scenarios: alpha/beta {shift} x recovery x {scales}"
)
MEAN_NOTE = "approximate: the EQD2 of a mean dose is not the mean EQD2 (exact only voxel-wise)"
#: The start of the core's recovery assumption, said in other words by the terminal text.
RECOVERY_RULE = "recovery is applied to earlier courses only"


@dataclass(frozen=True)
class _Verdict:
    """One limit checked on one structure (structure-level or voxel-wise)."""

    label: str
    result: ConstraintResult
    course: str | None = None
    sensitivity: SensitivityOutcome | None = None
    flags: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        if self.result.status != "pass":
            return "EXCEEDED"
        if self.sensitivity is not None and self.sensitivity.status != "pass in all":
            return "NEAR THE LIMIT"
        return "MET"


def _quantity(c: Constraint, course: str | None) -> str:
    """The limit's dose quantity in a few words (alpha/beta only when the limit states it)."""
    name = {"eqd2": "EQD2", "bed": "BED", "physical": "physical dose"}[c.quantity]
    if c.alpha_beta_gy is not None and c.quantity != "physical":
        name += f" a/b {c.alpha_beta_gy:g} Gy"
    if course is not None:
        return f"{name} of course {course}"
    if c.quantity == "physical":
        return f"cumulative {name}"
    return f"cumulative {name}, {'after' if c.recovery_credit else 'without'} recovery"


def _verdict_text(v: _Verdict, refs: _Refs, near: str, quantity: bool) -> str:
    c = v.result.constraint
    text = f"{v.label} {v.result.value:.2f} Gy, limit {c.comparator} {c.limit:g}"
    if quantity:
        text += f" ({_quantity(c, v.course)})"
    sens = v.sensitivity
    if sens is not None and sens.status == "depends":
        text += f"; {sens.value_min:.2f}-{sens.value_max:.2f} Gy in the scenarios"
    if v.flags:
        text += " PARTIAL COVERAGE"
    marks = [refs.note(w) for w in (*v.result.warnings, *v.flags)]
    if marks:  # e.g. reported as exceeded because the limit is not validated for the interval
        text += f" (see {', '.join(marks)})"
    return f"{text} {refs.constraint(c)}"


def near_scenarios(case) -> dict[str, str]:
    """The sensitivity scenarios of ``case`` in words, for :data:`NEAR_DEFINITION`."""
    settings = case.analysis.sensitivity
    shift = settings.alpha_beta_shift_gy
    return {
        "shift": f"-{shift:g}/0/+{shift:g} Gy (organs)" if shift else "unchanged",
        "scales": "/".join(f"{s:g}" for s in settings.recovery_scales),
    }


def _near_note(case, refs: _Refs) -> str:
    return refs.note(NEAR_DEFINITION.format(**near_scenarios(case)))


def _verdict_lines(
    verdicts: Sequence[_Verdict],
    not_evaluable: Sequence[str],
    refs: _Refs,
    near: str,
) -> list[str]:
    """EXCEEDED, NEAR THE LIMIT, NOT EVALUABLE, MET: each group's items, or ``none``.

    A group whose limits share one dose quantity names it once in its title.
    """
    members: dict[str, list[_Verdict]] = {g: [] for g in GROUPS}
    for v in verdicts:
        members[v.group].append(v)
    out = []
    for group in GROUPS:
        title = f"{group} {near}" if group == "NEAR THE LIMIT" else group
        if group == "NOT EVALUABLE":
            entries = list(not_evaluable)
        else:
            quantities = {_quantity(v.result.constraint, v.course) for v in members[group]}
            shared = len(quantities) == 1
            entries = [_verdict_text(v, refs, near, not shared) for v in members[group]]
            if shared:
                title += f" ({len(entries)}; {quantities.pop()})"
        if not entries:
            out.append(f"{title}: none")
            continue
        if "(" not in title.replace(near, ""):
            title += f" ({len(entries)})"
        out += _wrap(title, "", "    ")
        for entry in entries:
            out += _wrap(entry, "  ", "      ")
    return out


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fit(label: str, width: int) -> str:
    """``label`` cut to ``width`` characters with ``...`` (full names are in the verdicts and
    the JSON output)."""
    return label if len(label) <= width else label[: width - 3].rstrip() + "..."


def _table(
    groups: Sequence[tuple[str, int]],
    header: Sequence[str],
    rows: Sequence[tuple[str, str, Sequence[str]]],
) -> list[str]:
    """A table: a label column, then right-aligned columns as wide as their widest cell + 1.

    ``groups`` titles spans of columns (title, number of columns) on the first header line;
    ``header`` is the label column's title then one title per column. Each row is a name, a
    suffix that is never cut (the statistic) and the cells; the label column takes what is
    left of :data:`WIDTH` and a longer name is cut (full names are in the verdicts).
    """
    widths = [
        1 + max(len(header[i + 1]), *(len(r[2][i]) for r in rows)) for i in range(len(header) - 1)
    ]
    index = 0
    for title, span in groups:  # a group's title must fit over its columns
        extra = len(title) + 1 - sum(widths[index : index + span])
        if extra > 0:
            widths[index + span - 1] += extra
        index += span
    label_width = max(WIDTH - sum(widths), 16)
    top, index = " " * label_width, 0
    for title, span in groups:
        top += f"{title:>{sum(widths[index : index + span])}}"
        index += span
    cells = "".join(f"{c:>{w}}" for c, w in zip(header[1:], widths, strict=True))
    out = [top.rstrip(), f"{header[0]:<{label_width}}{cells}".rstrip()]
    for name, suffix, values in rows:
        numbers = "".join(f"{c:>{w}}" for c, w in zip(values, widths, strict=True))
        room = label_width - len(suffix)
        if name and room < min(len(name), 24):  # too little room: the name on its own line
            out += _wrap(name, "", "  ")
            name, suffix = "", "  " + suffix.strip()
        label = _fit(name, room) + suffix if name else suffix
        out.append(f"{_fit(label, label_width):<{label_width}}{numbers}".rstrip())
    return out


def _row_verdict(row: StructureResult) -> str:
    groups = {_Verdict("", o.result, o.course, o.sensitivity).group for o in row.constraints}
    for group, word in (("EXCEEDED", "EXCEEDED"), ("NEAR THE LIMIT", "near"), ("MET", "met")):
        if group in groups:
            return word
    return "-"


def _note(text: str) -> str:
    return MEAN_NOTE if text == MEAN_APPROXIMATION else text


def _structure_table(assessment: Assessment, refs: _Refs) -> list[str]:
    """One row per structure and statistic: per course physical dose, EQD2 and recovered
    fraction (in the course's title when the same for every row; the newest course is never
    discounted), the cumulative EQD2 with and without recovery, the cumulative BED (after
    recovery) and the worst verdict of the row's limits."""
    results = assessment.results
    groups, header = [("", 1)], ["structure  statistic", "a/b"]
    per_row = []
    for index, c in enumerate(assessment.case.courses):
        recovered = {r.courses[index].recovered_fraction for r in results}
        own = len(recovered) > 1
        per_row.append(own)
        title = c.id
        if not own and recovered and recovered != {0.0}:
            title += f" {100 * recovered.pop():.0f}% rec."
        groups.append((title, 3 if own else 2))
        header += ["phys", "EQD2"] + (["rec"] if own else [])
    groups += [("cumulative", 3), ("", 1)]
    header += ["EQD2", "no rec", "BED", "verdict"]
    common = set.intersection(*(set(r.notes) for r in results)) if results else set()
    header[0] += "".join(refs.note(_note(n)) for n in sorted(common))
    rows = []
    for r in results:
        notes = [_note(n) for n in r.notes if n not in common]
        cells = [f"{r.alpha_beta:g}"]
        for v, own in zip(r.courses, per_row, strict=True):
            cells += [_num(v.physical_gy), _num(v.eqd2_gy)]
            cells += [f"{100 * v.recovered_fraction:.0f}%"] if own else []
        cum = r.cumulative
        cells += [_num(cum.eqd2_gy), _num(cum.eqd2_no_recovery_gy), _num(cum.bed_gy)]
        cells.append(_row_verdict(r))
        suffix = f" {r.statistic}" + "".join(refs.note(n) for n in notes)
        rows.append((r.structure, suffix, cells))
    return _table(groups, header, rows)


# --------------------------------------------------------------------------------------
# Assumptions, warnings, prognosis
# --------------------------------------------------------------------------------------


def _recovery_models(case) -> dict[str, object]:
    """The recovery models of the case's structures, by their one-line description."""
    models = {}
    for spec in case.structures:
        model = case.tissue(spec)[1]
        models[model.describe()] = model
    default = case.analysis.default_tissue
    if default is not None and default.recovery is not None:
        from reirrad.core.recovery import recovery_model_from_spec

        model = recovery_model_from_spec(default.recovery)
        models[model.describe()] = model
    return models


def _cite_models(text: str, models: dict[str, object], refs: _Refs) -> str:
    """Replace each recovery model's citation in ``text`` by its source tag."""
    for description, model in models.items():
        citation = getattr(model, "citation", "")
        if not citation:
            continue
        tag = refs.source(citation, f"recovery model {model.name}")
        text = text.replace(description, f"{model.name} ({model.parameters_text()}) {tag}")
        text = text.replace(f"({citation})", tag)
    return text


def _tissue_groups(case, models: dict[str, object], refs: _Refs) -> list[str]:
    """Recovery model per group of structures (alpha/beta: the table's a/b column)."""
    groups: dict[str, list[str]] = {}
    for spec in case.structures:
        model = case.tissue(spec)[1]
        groups.setdefault(_cite_models(model.describe(), models, refs), []).append(spec.name)
    if len(groups) == 1:
        return [f"alpha/beta: a/b column; recovery {next(iter(groups))} for every structure"]
    return ["alpha/beta: a/b column"] + [
        f"recovery {key}: {', '.join(names)}" for key, names in groups.items()
    ]


def _prognosis_lines(assessment: Assessment, refs: _Refs) -> list[str]:
    parts = []
    li = assessment.prognosis.get("li2018")
    if isinstance(li, dict):
        parts.append(f"Li 2018 index not computed (missing {', '.join(li['missing'])})")
    elif li is not None:
        parts.append(
            f"Li 2018 prognostic index {li.index:.2f}: {li.group} risk {refs.note(li.note)}"
        )
    stage = assessment.prognosis.get("stage")
    if stage:
        parts.append(f"stage ({stage['edition']}) {stage['tnm']} -> {stage['group'] or 'n/a'}")
    return _wrap("; ".join(parts), "Prognosis: ") if parts else []


def _tail(
    refs: _Refs,
    warnings: Sequence[str],
    assumptions: Sequence[str],
    models,
    prognosis=(),
    *,
    listed: bool = False,
) -> list[str]:
    """Prognosis, warnings, assumptions (one paragraph, or ``listed`` one per line),
    footnotes and sources (each said once)."""
    out = list(prognosis)
    seen: list[str] = []
    for w in warnings:
        text = _cite_models(w, models, refs)
        if text not in seen:
            seen.append(text)
    for text in seen:
        out += _wrap(text, "Warning: ", "    ")
    if listed:
        out.append("Assumptions:")
        for text in assumptions:
            out += _wrap(text, "  - ", "    ")
    else:
        out += _wrap("; ".join(assumptions), "Assumptions: ", "    ")
    return out + refs.note_lines() + refs.source_lines()


# --------------------------------------------------------------------------------------
# Structure-level assessment
# --------------------------------------------------------------------------------------


def _course_lines(assessment: Assessment) -> list[str]:
    case = assessment.case
    newest = case.courses[-1]
    out = []
    for c in case.courses:
        rx = ", ".join(f"{p.dose_gy:g} Gy/{p.fractions}" for p in c.prescriptions)
        gap = (
            "newest course"
            if c is newest
            else f"{(newest.start - c.end).days} d before {newest.id}"
        )
        out += _wrap(
            f"{c.id}: {c.start} to {c.end}, {c.fractions} fx{' (' + rx + ')' if rx else ''}; {gap}",
            "  ",
            "      ",
        )
    return out


def _structure_verdicts(assessment: Assessment) -> list[_Verdict]:
    return [
        _Verdict(f"{r.structure} {r.statistic}", o.result, o.course, o.sensitivity)
        for r in assessment.results
        for o in r.constraints
    ]


def _not_evaluable(assessment: Assessment) -> list[str]:
    return [
        f"{n.structure} {n.constraint.metric} {n.constraint.comparator} {n.constraint.limit:g} Gy: "
        f"{n.reason}"
        for n in assessment.not_evaluated
    ]


def _structure_assumptions(assessment: Assessment, models, refs: _Refs) -> list[str]:
    """Method per course, the recovery rule and the tissues, each said once; the core's other
    assumptions (DICOM statistics, LQ-L, repopulation) as they are."""
    case = assessment.case
    by_method: dict[str, list[str]] = {}
    for course, method in assessment.methods.items():
        by_method.setdefault(method, []).append(course)
    said = {f"course {c}: method '{m}': {METHOD_TEXT[m]}" for c, m in assessment.methods.items()}
    lines = [
        f"method '{m}' for "
        + ("every course" if len(by_method) == 1 else f"course {', '.join(ids)}")
        + f": {METHOD_TEXT[m]}"
        for m, ids in by_method.items()
    ]
    lines.append(f"recovery credited to earlier courses (end to start of {case.courses[-1].id})")
    names = tuple(f"{s.name} (" for s in case.structures)
    for a in assessment.assumptions:
        if a in said or a.startswith(RECOVERY_RULE) or a.startswith(names):
            continue
        lines.append(_cite_models(a, models, refs))
    return lines + _tissue_groups(case, models, refs)


def to_text(assessment: Assessment) -> str:
    """The terminal report of ``reirrad assess``: verdicts, table, notes (see module doc).

    When every course gives DICOM the voxel-wise result is the result
    (:func:`voxel_to_text`), with the prognosis and every warning said once.
    """
    if assessment.voxel is not None:
        return voxel_to_text(assessment.voxel, assessment=assessment)
    case = assessment.case
    refs = _Refs()
    near = _near_note(case, refs)
    methods = sorted(set(assessment.methods.values()))
    out = [
        f"Re-irradiation assessment: {case.patient.id} (structure-level, method "
        f"{', '.join(methods)})",
        *_course_lines(assessment),
        *_verdict_lines(_structure_verdicts(assessment), _not_evaluable(assessment), refs, near),
        "",
        *_structure_table(assessment, refs),
    ]
    models = _recovery_models(case)
    assumptions = _structure_assumptions(assessment, models, refs)
    out += _tail(refs, assessment.warnings, assumptions, models, _prognosis_lines(assessment, refs))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# Voxel-wise assessment
# --------------------------------------------------------------------------------------


#: The pipeline's per-course assumptions that the course lines of the voxel text state.
_COURSE_SAID = ("mapped by ", "phase ", "recovery over ", "its dose grid covers ")


def _voxel_courses(voxel) -> list[str]:
    """One line per course: phases and fractions, mapping, grid coverage, recovery interval."""
    out = []
    for m in voxel.courses:
        parts = [
            ", ".join(f"{label} {n} fx (fractions from the {src})" for label, n, src in m.phases)
        ]
        parts.append(
            m.mapping_description if m.course == voxel.reference_course
            else f"mapped by {m.mapping_description}"
        )  # fmt: skip
        if m.coverage_fraction < 0.9995:
            parts.append(
                f"its dose grid covers {100 * m.coverage_fraction:.1f} % of the reference grid "
                "(0 Gy elsewhere; partly covered structures are flagged)"
            )
        if m.recovery_interval_days is not None:
            parts.append(f"recovery over {m.recovery_interval_days} days to the newest course")
        out += _wrap(f"{m.course}: {'; '.join(parts)}", "  ", "      ")
    return out


def _voxel_verdicts(voxel) -> list[_Verdict]:
    return [
        _Verdict(
            f"{item.structure} {item.result.constraint.metric}",
            item.result,
            item.course,
            item.sensitivity,
            item.flags,
        )
        for item in voxel.constraints
    ]


def _voxel_table(voxel, refs: _Refs) -> list[str]:
    """One row per structure and metric: the voxel-wise cumulative EQD2 with and without
    recovery, each course's physical dose on the reference grid, and the structure-level
    methods' cumulative EQD2 as the comparison."""
    names = [c.course for c in voxel.courses]
    groups = [("cumulative EQD2", 2), ("physical", len(names)), ("structure-level", 3)]
    header = ["structure  metric", "EQD2", "no rec", *names, "struct.", "presc.", "none"]
    rows = []
    for s in voxel.structures:
        flags = "".join(refs.note(f) for f in s.flags)
        for index, m in enumerate(s.metrics):
            level = m.structure_level
            cells = [_num(m.eqd2_gy), _num(m.eqd2_no_recovery_gy)]
            cells += [_num(m.physical_per_course_gy.get(n)) for n in names]
            cells += [_num(level.get(k)) for k in ("structure", "prescription", "none")]
            name = s.name if index == 0 else ""
            rows.append((name, f"{flags if index == 0 else ''}  {m.metric}", cells))
    return _table(groups, header, rows)


def _voxel_assumptions(voxel, models, refs: _Refs) -> list[str]:
    prefixes = tuple(f"{s.name} ({s.role}, ROI {s.roi!r}): " for s in voxel.structures)
    groups: dict[str, list[str]] = {}
    for a in voxel.assumptions:
        for s, prefix in zip(voxel.structures, prefixes, strict=True):
            if a.startswith(prefix):
                key = _cite_models(a[len(prefix) :], models, refs)
                groups.setdefault(key, []).append(
                    s.name if s.name == s.roi else f"{s.name} (ROI {s.roi})"
                )
                break
    said = tuple(f"course {m.course}: {what}" for m in voxel.courses for what in _COURSE_SAID)
    lines = [
        _cite_models(a, models, refs)
        for a in voxel.assumptions
        if not a.startswith(prefixes) and not a.startswith(said)
    ]
    return lines + [f"{key}: {', '.join(names)}" for key, names in groups.items()]


def voxel_to_text(voxel, *, assessment: Assessment | None = None) -> str:
    """The terminal report of a voxel-wise assessment (``reirrad accumulate``, and ``reirrad
    assess`` when every course gives DICOM: then ``assessment`` adds the prognosis, the limits
    the structure-level rows could not evaluate and its warnings, each said once)."""
    case = voxel.case
    refs = _Refs()
    near = _near_note(case, refs)
    mapping = ", UNCERTAIN mapping (deformable registration)" if voxel.uncertain else ""
    out = [
        f"Voxel-wise cumulative EQD2: {case.patient.id} (reference course "
        f"{voxel.reference_course}{mapping})",
        *_voxel_courses(voxel),
        "",
    ]
    not_evaluable = [] if assessment is None else _not_evaluable(assessment)
    out += _verdict_lines(_voxel_verdicts(voxel), not_evaluable, refs, near)
    if voxel.reirradiation is not None:
        out += _wrap(voxel.reirradiation.statement, "Re-irradiation type: ", "    ")
    out += ["", *_voxel_table(voxel, refs), ""]
    if assessment is not None:
        out += _wrap(
            "the structure-level rows per course (the comparison) are in --format json, csv and "
            "markdown",
            "Note: ",
            "    ",
        )
    models = _recovery_models(case)
    warnings = list(voxel.warnings)
    prognosis: list[str] = []
    if assessment is not None:
        warnings = list(assessment.warnings) + warnings
        prognosis = _prognosis_lines(assessment, refs)
    assumptions = _voxel_assumptions(voxel, models, refs)
    out += _tail(refs, warnings, assumptions, models, prognosis, listed=True)
    return "\n".join(out) + "\n"


def verdict_groups(assessment: Assessment) -> dict[str, list[str]]:
    """The verdicts of an assessment by group (EXCEEDED, NEAR THE LIMIT, NOT EVALUABLE, MET),
    each item one line naming the limit's id (the voxel-wise ones when every course gives
    DICOM), for outputs that have no footnotes (Markdown)."""
    voxel = assessment.voxel
    verdicts = _voxel_verdicts(voxel) if voxel is not None else _structure_verdicts(assessment)
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for v in verdicts:
        c = v.result.constraint
        text = (
            f"{v.label} {v.result.value:.2f} Gy, limit {c.comparator} {c.limit:g} Gy "
            f"({_quantity(c, v.course)})"
        )
        sens = v.sensitivity
        if sens is not None and sens.status == "depends":
            text += f"; {sens.value_min:.2f}-{sens.value_max:.2f} Gy in the sensitivity scenarios"
        if v.flags:
            text += "; PARTIAL COVERAGE: " + "; ".join(v.flags)
        out[v.group].append(f"{text} [{c.id}]")
    out["NOT EVALUABLE"] = [
        f"{item} [{n.constraint.id}]"
        for item, n in zip(_not_evaluable(assessment), assessment.not_evaluated, strict=True)
    ]
    return out
