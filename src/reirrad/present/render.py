"""Presentation of assessments: JSON-ready dictionaries, tables (pandas), Markdown, text.

Nothing here computes dose; it only lays out what :mod:`reirrad.core.assessment` produced.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Mapping

import pandas as pd

from reirrad import __version__
from reirrad.core.assessment import (
    Assessment,
    ConstraintOutcome,
    StructureResult,
)
from reirrad.present.terminal import (
    NEAR_DEFINITION,
    near_scenarios,
    to_text,
    verdict_groups,
    voxel_to_text,
)

__all__ = [
    "assessment_frame",
    "assessment_to_dict",
    "to_csv",
    "to_markdown",
    "to_text",
    "voxel_frame",
    "voxel_to_dict",
    "voxel_to_text",
]


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
        "sensitivity": _sensitivity_dict(outcome.sensitivity),
    }


def _sensitivity_dict(sens) -> dict | None:
    if sens is None:
        return None
    return {
        "status": sens.status,
        "value_min": _round(sens.value_min),
        "value_max": _round(sens.value_max),
        "failing_scenarios": [s.label for s in sens.failing],
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
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
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
        "voxel": None if assessment.voxel is None else voxel_to_dict(assessment.voxel),
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
            "eqd2_gy": r.cumulative.eqd2_gy,
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
    frame = assessment_frame(assessment)
    if assessment.voxel is not None:
        frame = pd.concat([frame, _voxel_csv_rows(assessment.voxel)], ignore_index=True)
    frame.to_csv(buffer, index=False, float_format="%.4f")
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
        "effective_eqd2_gy": "EQD2 after recovery (Gy)",
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


def _footer(assessment: Assessment, bullet: str, assumptions: list[str] | None = None) -> list[str]:
    lines = []
    prognosis = assessment.prognosis
    li = prognosis.get("li2018")
    if li is not None:
        if isinstance(li, dict):
            lines.append(f"{bullet}Li 2018 index: not computed, missing {', '.join(li['missing'])}")
        else:
            lines.append(
                f"{bullet}Li 2018 prognostic index: {li.index:.2f} ({li.group} risk). {li.note}"
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
    assumptions = list(assessment.assumptions) if assumptions is None else assumptions
    lines += [f"{bullet}Assumption: {text}" for text in assumptions]
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
    out += [courses.to_markdown(index=False), "", "## Verdicts", ""]
    for group, items in verdict_groups(assessment).items():
        out.append(f"- **{group}**:" + (" none" if not items else ""))
        out += [f"  - {item}" for item in items]
    if any(r.constraints for r in assessment.results) or assessment.voxel is not None:
        out.append(f"- near the limit: {NEAR_DEFINITION.format(**near_scenarios(case))}")
    out += [
        "",
        "## Per course and cumulative",
        "",
        _display_frame(assessment).to_markdown(index=False, disable_numparse=True),
        "",
    ]
    out += _footer(assessment, "- ")
    voxel = assessment.voxel
    if voxel is not None:
        out += [
            "",
            "## Voxel-wise cumulative EQD2",
            "",
            voxel_frame(voxel).to_markdown(index=False, floatfmt=".2f"),
            "",
        ]
        if voxel.reirradiation is not None:
            out.append(f"- Re-irradiation type: {voxel.reirradiation.statement}")
        out += [f"- Assumption: {a}" for a in voxel.assumptions]
        out += [f"- Warning: {w}" for w in voxel.warnings if w not in assessment.warnings]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# Voxel-wise accumulation (reirrad.pipelines.accumulate.VoxelAssessment)
# --------------------------------------------------------------------------------------


def _voxel_constraint_dict(item) -> dict:
    out = _constraint_dict(ConstraintOutcome(item.result, item.quantity_text, item.course))
    out["structure"] = item.structure
    # verdict-level flags (partial dose-grid coverage): next to the status, not a note
    out["flags"] = list(item.flags)
    out["sensitivity"] = _sensitivity_dict(item.sensitivity)
    return out


def voxel_to_dict(voxel) -> dict:
    """JSON-ready summary of a voxel-wise assessment (``reirrad accumulate --format json``)."""
    reirr = voxel.reirradiation
    return {
        "reirrad_version": __version__,
        "patient": voxel.case.patient.id,
        "method": "voxel-wise EQD2 accumulation",
        "reference_course": voxel.reference_course,
        "reference_grid": {
            "shape_kji": list(voxel.grid.shape),
            "spacing_mm": [_round(s) for s in voxel.grid.spacing],
            "frame_of_reference_uid": voxel.frame_of_reference_uid,
        },
        "uncertain": voxel.uncertain,
        "overlap_rule": voxel.tissue_rule,
        "courses": [
            {
                "course": m.course,
                "phases": [
                    {"label": label, "fractions": n, "fractions_from": src}
                    for label, n, src in m.phases
                ],
                "mapping": m.mapping,
                "mapping_description": m.mapping_description,
                "uncertain": m.uncertain,
                "recovery_interval_days": m.recovery_interval_days,
                "coverage_fraction": _round(m.coverage_fraction),
            }
            for m in voxel.courses
        ],
        "structures": [
            {
                "structure": s.name,
                "roi": s.roi,
                "role": s.role,
                "organ": s.organ,
                "alpha_beta": s.alpha_beta,
                "recovery": s.recovery,
                "volume_cc": _round(s.volume_cc),
                "covered_fraction": _round(s.covered_fraction),
                "course_coverage": {k: _round(v) for k, v in s.course_coverage.items()},
                "flags": list(s.flags),
                "metrics": [
                    {
                        "metric": m.metric,
                        "eqd2_gy": _round(m.eqd2_gy),
                        "eqd2_no_recovery_gy": _round(m.eqd2_no_recovery_gy),
                        "physical_per_course_gy": {
                            k: _round(v) for k, v in m.physical_per_course_gy.items()
                        },
                        "structure_level_eqd2_gy": {
                            k: _round(v) for k, v in m.structure_level.items()
                        },
                    }
                    for m in s.metrics
                ],
                "contributions": [
                    {
                        "course": c.course,
                        "mean_eqd2_gy": _round(c.mean_gy),
                        "max_eqd2_gy": _round(c.max_gy),
                        "mean_eqd2_no_recovery_gy": _round(c.mean_no_recovery_gy),
                        "max_eqd2_no_recovery_gy": _round(c.max_no_recovery_gy),
                    }
                    for c in s.contributions
                ],
            }
            for s in voxel.structures
        ],
        "constraints": [_voxel_constraint_dict(c) for c in voxel.constraints],
        "reirradiation_type": None
        if reirr is None
        else {
            "type": reirr.type,
            "overlap_cc": _round(reirr.overlap_cc),
            "threshold_gy": reirr.threshold_gy,
            "statement": reirr.statement,
            "citation": reirr.citation,
        },
        "assumptions": list(voxel.assumptions),
        "warnings": list(voxel.warnings),
    }


def voxel_frame(voxel) -> pd.DataFrame:
    """One row per structure and metric: voxel-wise EQD2 and the structure-level methods."""
    rows = []
    for s in voxel.structures:
        for m in s.metrics:
            rows.append(
                {
                    "structure": s.name,
                    "metric": m.metric,
                    "voxel_eqd2_gy": m.eqd2_gy,
                    "voxel_eqd2_no_recovery_gy": m.eqd2_no_recovery_gy,
                    **{f"{k}_method_eqd2_gy": v for k, v in m.structure_level.items()},
                }
            )
    return pd.DataFrame(rows)


def _voxel_csv_rows(voxel) -> pd.DataFrame:
    """Voxel-wise rows for the assessment CSV (course ``cumulative (voxel-wise)``)."""
    rows = []
    limits: dict[tuple[str, str], list] = {}
    for c in voxel.constraints:
        if c.course is None:
            limits.setdefault((c.structure, c.result.constraint.metric), []).append(c)
    for s in voxel.structures:
        for m in s.metrics:
            base = {
                "structure": s.name,
                "statistic": m.metric,
                "course": "cumulative (voxel-wise)",
                "method": "voxel-wise",
                "alpha_beta_gy": s.alpha_beta,
                "effective_eqd2_gy": m.eqd2_gy,
                "eqd2_no_recovery_gy": m.eqd2_no_recovery_gy,
            }
            found = [
                c
                for (name, metric), items in limits.items()
                for c in items
                if name == s.name and metric == m.metric
            ]
            if not found:
                rows.append(base)
            for c in found:
                constraint = c.result.constraint
                rows.append(
                    {
                        **base,
                        "constraint": f"{constraint.id}: {c.quantity_text} "
                        f"{constraint.comparator} {constraint.limit:g}",
                        "status": c.result.status,
                        "margin_gy": c.result.margin,
                    }
                )
    return pd.DataFrame(rows)
