"""Presentation of assessments: JSON-ready dictionaries, tables (pandas), Markdown, text.

Nothing here computes dose; it only lays out what :mod:`reirrad.core.assessment` produced.
"""

from __future__ import annotations

import dataclasses
import io
import math

import pandas as pd

from reirrad import __version__
from reirrad.core.assessment import Assessment, ConstraintOutcome, StructureResult

__all__ = ["assessment_frame", "assessment_to_dict", "to_csv", "to_markdown", "to_text"]


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _constraint_dict(outcome: ConstraintOutcome) -> dict:
    result = outcome.result
    c = result.constraint
    return {
        "id": c.id,
        "limit": f"{c.metric} {c.comparator} {c.limit:g} Gy",
        "quantity": outcome.quantity_text,
        "course": outcome.course,
        "value": _round(result.value),
        "status": result.status,
        "margin": _round(result.margin),
        "tier": c.tier,
        "endpoint": c.endpoint,
        "source": c.source,
        "evidence": c.evidence,
        "warnings": list(result.warnings),
    }


def _result_dict(row: StructureResult) -> dict:
    return {
        "structure": row.structure,
        "role": row.role,
        "organ": row.organ,
        "statistic": row.statistic,
        "mixed": row.mixed,
        "alpha_beta": row.alpha_beta,
        "recovery": row.recovery,
        "method": row.method,
        "courses": [
            {
                "course": v.course,
                "statistic": v.statistic,
                "method": v.method,
                "physical_gy": _round(v.physical_gy),
                "dose_per_fraction_gy": _round(v.dose_per_fraction_gy),
                "eqd2_gy": _round(v.eqd2_gy),
                "bed_gy": _round(v.bed_gy),
                "interval_days": v.interval_days,
                "recovered_fraction": _round(v.recovered_fraction),
                "effective_eqd2_gy": _round(v.effective_eqd2_gy),
                "effective_bed_gy": _round(v.effective_bed_gy),
            }
            for v in row.courses
        ],
        "cumulative": {
            "physical_gy": _round(row.cumulative.physical_gy),
            "eqd2_gy": _round(row.cumulative.eqd2_gy),
            "eqd2_no_recovery_gy": _round(row.cumulative.eqd2_no_recovery_gy),
            "bed_gy": _round(row.cumulative.bed_gy),
            "bed_no_recovery_gy": _round(row.cumulative.bed_no_recovery_gy),
        },
        "constraints": [_constraint_dict(o) for o in row.constraints],
        "notes": list(row.notes),
    }


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return _round(value)
    return value


def assessment_to_dict(assessment: Assessment) -> dict:
    """The JSON document of ``reirrad assess --format json``."""
    case = assessment.case
    return {
        "reirrad_version": __version__,
        "patient": case.patient.id,
        "courses": [
            {
                "id": c.id,
                "label": c.label,
                "fractions": c.fractions,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "technique": c.technique,
                "method": assessment.methods[c.id],
                "prescriptions": [p.model_dump() for p in c.prescriptions],
            }
            for c in case.courses
        ],
        "results": [_result_dict(r) for r in assessment.results],
        "constraints_not_evaluated": [
            {"id": n.constraint.id, "structure": n.structure, "reason": n.reason}
            for n in assessment.not_evaluated
        ],
        "prognosis": _plain(dict(assessment.prognosis)),
        "assumptions": list(assessment.assumptions),
        "warnings": list(assessment.warnings),
    }


def assessment_frame(assessment: Assessment) -> pd.DataFrame:
    """One row per structure, statistic and course, plus a ``cumulative`` row for each."""
    rows = []
    for r in assessment.results:
        for v in r.courses:
            rows.append(
                {
                    "structure": r.structure,
                    "statistic": v.statistic if r.mixed else r.statistic,
                    "course": v.course,
                    "method": v.method,
                    "alpha_beta_gy": r.alpha_beta,
                    "physical_gy": v.physical_gy,
                    "eqd2_gy": v.eqd2_gy,
                    "bed_gy": v.bed_gy,
                    "recovered_fraction": v.recovered_fraction,
                    "effective_eqd2_gy": v.effective_eqd2_gy,
                    "eqd2_no_recovery_gy": None,
                    "constraint": None,
                    "status": None,
                    "margin_gy": None,
                }
            )
        limits = [o for o in r.constraints if o.course is None]
        base = {
            "structure": r.structure,
            "statistic": r.statistic,
            "course": "cumulative",
            "method": r.method,
            "alpha_beta_gy": r.alpha_beta,
            "physical_gy": r.cumulative.physical_gy,
            "eqd2_gy": None,
            "bed_gy": r.cumulative.bed_gy,
            "recovered_fraction": None,
            "effective_eqd2_gy": r.cumulative.eqd2_gy,
            "eqd2_no_recovery_gy": r.cumulative.eqd2_no_recovery_gy,
        }
        if not limits:
            rows.append({**base, "constraint": None, "status": None, "margin_gy": None})
        for outcome in limits:
            c = outcome.result.constraint
            rows.append(
                {
                    **base,
                    "constraint": f"{c.id}: {outcome.quantity_text} {c.comparator} {c.limit:g}",
                    "status": outcome.result.status,
                    "margin_gy": outcome.result.margin,
                }
            )
    return pd.DataFrame(rows)


def to_csv(assessment: Assessment) -> str:
    """CSV of :func:`assessment_frame` (full precision)."""
    buffer = io.StringIO()
    assessment_frame(assessment).to_csv(buffer, index=False, float_format="%.4f")
    return buffer.getvalue()


def _display_frame(assessment: Assessment) -> pd.DataFrame:
    frame = assessment_frame(assessment)
    columns = {
        "structure": "Structure",
        "statistic": "Statistic",
        "course": "Course",
        "method": "Method",
        "physical_gy": "Physical (Gy)",
        "eqd2_gy": "EQD2 (Gy)",
        "bed_gy": "BED (Gy)",
        "recovered_fraction": "Recovered",
        "effective_eqd2_gy": "Effective EQD2 (Gy)",
        "eqd2_no_recovery_gy": "EQD2 no recovery (Gy)",
        "status": "Verdict",
        "margin_gy": "Margin (Gy)",
        "constraint": "Limit",
    }
    frame = frame[list(columns)].rename(columns=columns)
    for column in frame.columns:
        if frame[column].dtype.kind == "f" or column.endswith("(Gy)") or column == "Recovered":
            frame[column] = frame[column].map(
                lambda x: (
                    "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"
                )
            )
    return frame.fillna("")


def _footer(assessment: Assessment, bullet: str) -> list[str]:
    lines = []
    prognosis = assessment.prognosis
    li = prognosis.get("li2018")
    if li is not None:
        if isinstance(li, dict):
            lines.append(f"{bullet}Li 2018 index: not computed, missing {', '.join(li['missing'])}")
        else:
            lines.append(
                f"{bullet}Li 2018 prognostic index: {li.index:.1f} ({li.group} risk). {li.note}"
            )
    stage = prognosis.get("stage")
    if stage:
        lines.append(
            f"{bullet}Stage ({stage['edition']}): {stage['tnm']} -> {stage['group'] or 'n/a'}"
        )
    for item in assessment.not_evaluated:
        lines.append(f"{bullet}Not evaluated: {item.constraint.id} ({item.reason})")
    notes = sorted({note for r in assessment.results for note in r.notes})
    lines += [f"{bullet}Note: {note}" for note in notes]
    lines += [f"{bullet}Assumption: {text}" for text in assessment.assumptions]
    lines += [f"{bullet}Warning: {text}" for text in assessment.warnings]
    sources = sorted(
        {
            f"{o.result.constraint.id}: {o.result.constraint.source} [{o.result.constraint.evidence}]"
            for r in assessment.results
            for o in r.constraints
        }
    )
    lines += [f"{bullet}Source: {text}" for text in sources]
    return lines


def to_markdown(assessment: Assessment) -> str:
    """Markdown tables and the assumptions, as a physician would paste into a note."""
    case = assessment.case
    out = [f"# Re-irradiation assessment: {case.patient.id}", ""]
    courses = pd.DataFrame(
        [
            {
                "Course": c.id,
                "Dates": f"{c.start} to {c.end}",
                "Fractions": c.fractions,
                "Prescription": ", ".join(
                    f"{p.dose_gy:g} Gy/{p.fractions}" for p in c.prescriptions
                ),
                "Method": assessment.methods[c.id],
            }
            for c in case.courses
        ]
    )
    out += [
        courses.to_markdown(index=False),
        "",
        _display_frame(assessment).to_markdown(index=False),
        "",
    ]
    out += _footer(assessment, "- ")
    return "\n".join(out) + "\n"


def to_text(assessment: Assessment) -> str:
    """Plain-text report for the terminal."""
    case = assessment.case
    out = [f"Re-irradiation assessment: {case.patient.id}"]
    for c in case.courses:
        rx = ", ".join(f"{p.dose_gy:g} Gy/{p.fractions} fx" for p in c.prescriptions)
        out.append(
            f"  course {c.id}: {c.start} to {c.end}, {c.fractions} fractions"
            f"{', ' + rx if rx else ''}; method {assessment.methods[c.id]}"
        )
    out.append("")
    out.append(_display_frame(assessment).to_string(index=False))
    out.append("")
    out += _footer(assessment, "")
    return "\n".join(out) + "\n"
