"""One patient's typed results (:class:`reirrad.pipelines.run.CaseRun`) as table rows.

Only reshapes: every number is a field of the typed results, copied; nothing here computes a
dose. The tables (columns and types in :data:`TABLES`):

``structure_courses``
    Structure-level assessment: per structure, statistic and course the physical dose,
    EQD2, BED, recovered fraction and effective (recovery-credited) EQD2/BED, plus one row
    per structure and statistic with ``course = "cumulative"``.
``voxel_metrics``
    Voxel-wise cumulative statistics per structure (EQD2 with and without recovery, and
    the structure-level methods' values for comparison).
``voxel_course_physical``
    Per structure, statistic and course the physical dose of the course mapped onto the
    reference grid.
``constraints``
    Constraint verdicts with value, limit, margin, source and evidence; voxel-wise when
    the case has DICOM doses, otherwise structure-level.
``sensitivity``
    For each voxel-wise cumulative constraint, the value and verdict in every scenario
    (alpha/beta shift, recovery scale); ``constraints`` has the min-max range.
``dvh``
    DVH curves in long format: cumulative EQD2 (with / without recovery) and each
    course's physical and EQD2 DVH on the reference grid.
``ntcp``
    NTCP of the cumulative DVHs with the packaged parameter sets.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reirrad.pipelines.run import CaseRun

__all__ = ["TABLES", "case_run_rows"]

S, C, F, F32, INT = "string", "category", "float64", "float32", "int64"

TABLES: dict[str, dict[str, str]] = {
    "structure_courses": {
        "patient": S, "structure": S, "role": S, "organ": S, "statistic": S, "method": S,
        "alpha_beta": F, "recovery": S, "course": S, "physical_gy": F,
        "dose_per_fraction_gy": F, "eqd2_gy": F, "bed_gy": F, "recovered_fraction": F,
        "effective_eqd2_gy": F, "effective_bed_gy": F, "interval_days": INT,
    },
    "voxel_metrics": {
        "patient": S, "structure": S, "roi": S, "role": S, "organ": S, "alpha_beta": F,
        "recovery": S, "volume_cc": F, "covered_fraction": F, "metric": S, "eqd2_gy": F,
        "eqd2_no_recovery_gy": F, "structure_method_eqd2_gy": F,
        "prescription_method_eqd2_gy": F, "physical_as_eqd2_gy": F,
    },
    "voxel_course_physical": {
        "patient": S, "structure": S, "metric": S, "course": S, "physical_gy": F,
    },
    "constraints": {
        "patient": S, "basis": S, "structure": S, "course": S, "constraint_id": S,
        "organ": S, "metric": S, "quantity": S, "scope": S, "comparator": S, "limit": F,
        "value": F, "margin": F, "status": S, "quantity_text": S, "source": S,
        "evidence": S, "sensitivity_status": S, "sensitivity_min": F, "sensitivity_max": F,
        "warnings": S,
    },
    "sensitivity": {
        "patient": S, "structure": S, "constraint_id": S, "alpha_beta_shift": F,
        "recovery_scale": F, "value": F, "margin": F, "status": S,
    },
    "dvh": {
        "patient": C, "structure": C, "curve": C, "course": C, "dose_gy": F32,
        "volume_cc": F32, "volume_fraction": F32,
    },
    "ntcp": {
        "patient": S, "structure": S, "parameter_set": S, "model": S, "endpoint": S,
        "variant": S, "geud_gy": F, "probability": F, "citation": S,
    },
    # the follow-up record (core.follow_up), for dose-toxicity and dose-response analyses:
    # join on (patient, structure) with voxel_metrics / structure_courses
    "toxicity": {
        "patient": S, "date": S, "days_after_last_course": INT, "term": S, "grade": F,
        "structure": S, "organ": S, "attribution": S, "onset": S, "note": S,
    },
    "response": {
        "patient": S, "date": S, "days_after_last_course": INT, "modality": S, "site": S,
        "size_mm": S, "suv_max": F, "recist": S, "percist": S, "reported": S, "note": S,
    },
}  # fmt: skip


def case_run_rows(patient: str, run: CaseRun) -> dict[str, list[dict] | dict[str, list]]:
    """Rows of every table in :data:`TABLES` for one patient (``dvh`` as columns)."""
    return {
        "structure_courses": _structure_courses(patient, run),
        "voxel_metrics": _voxel_metrics(patient, run),
        "voxel_course_physical": _voxel_course_physical(patient, run),
        "constraints": _constraints(patient, run),
        "sensitivity": _sensitivity(patient, run),
        "dvh": _dvh(patient, run),
        "ntcp": [
            {
                "patient": patient,
                "structure": n.structure,
                "parameter_set": n.parameter_set,
                "model": n.model,
                "endpoint": n.endpoint,
                "variant": n.variant,
                "geud_gy": n.geud_gy,
                "probability": n.probability,
                "citation": n.citation,
            }
            for n in run.ntcp
        ],  # fmt: skip
        **_follow_up(patient, run),
    }


def _follow_up(patient: str, run: CaseRun) -> dict[str, list[dict]]:
    """Toxicity and response observations, dated also from the end of the last course."""
    case = run.case
    follow = case.follow_up
    if follow is None:
        return {"toxicity": [], "response": []}
    end = case.courses[-1].end
    organs = {spec.name: spec.organ for spec in case.structures}
    toxicity = [
        {"patient": patient, "date": t.date.isoformat(),
         "days_after_last_course": (t.date - end).days, "term": t.term,
         "grade": None if t.grade is None else float(t.grade), "structure": t.structure,
         "organ": organs.get(t.structure) if t.structure else None,
         "attribution": t.attribution, "onset": t.onset, "note": t.note}
        for t in follow.toxicity
    ]  # fmt: skip
    response = [
        {"patient": patient, "date": r.date.isoformat(),
         "days_after_last_course": (r.date - end).days, "modality": r.modality,
         "site": r.site, "size_mm": "x".join(f"{v:g}" for v in r.size_mm) if r.size_mm else None,
         "suv_max": r.suv_max, "recist": r.recist, "percist": r.percist,
         "reported": r.reported, "note": r.note}
        for r in follow.response
    ]  # fmt: skip
    return {"toxicity": toxicity, "response": response}


def _structure_courses(patient: str, run: CaseRun) -> list[dict]:
    rows = []
    for r in run.assessment.results:
        common = {"patient": patient, "structure": r.structure, "role": r.role,
                  "organ": r.organ, "statistic": r.statistic, "method": r.method,
                  "alpha_beta": r.alpha_beta, "recovery": r.recovery}  # fmt: skip
        for c in r.courses:
            rows.append(
                {**common, "course": c.course, "physical_gy": c.physical_gy,
                 "dose_per_fraction_gy": c.dose_per_fraction_gy, "eqd2_gy": c.eqd2_gy,
                 "bed_gy": c.bed_gy, "recovered_fraction": c.recovered_fraction,
                 "effective_eqd2_gy": c.effective_eqd2_gy,
                 "effective_bed_gy": c.effective_bed_gy, "interval_days": c.interval_days}
            )  # fmt: skip
        total = r.cumulative
        # same meaning as the course rows: eqd2/bed without, effective_* with recovery
        rows.append(
            {**common, "course": "cumulative", "physical_gy": total.physical_gy,
             "eqd2_gy": total.eqd2_no_recovery_gy, "bed_gy": total.bed_no_recovery_gy,
             "effective_eqd2_gy": total.eqd2_gy, "effective_bed_gy": total.bed_gy}
        )  # fmt: skip
    return rows


def _voxel_metrics(patient: str, run: CaseRun) -> list[dict]:
    voxel = run.voxel
    rows = []
    for s in voxel.structures if voxel is not None else ():
        for m in s.metrics:
            level: Mapping[str, float | None] = m.structure_level
            rows.append(
                {"patient": patient, "structure": s.name, "roi": s.roi, "role": s.role,
                 "organ": s.organ, "alpha_beta": s.alpha_beta, "recovery": s.recovery,
                 "volume_cc": s.volume_cc, "covered_fraction": s.covered_fraction,
                 "metric": m.metric, "eqd2_gy": m.eqd2_gy,
                 "eqd2_no_recovery_gy": m.eqd2_no_recovery_gy,
                 "structure_method_eqd2_gy": level.get("structure"),
                 "prescription_method_eqd2_gy": level.get("prescription"),
                 "physical_as_eqd2_gy": level.get("none")}
            )  # fmt: skip
    return rows


def _voxel_course_physical(patient: str, run: CaseRun) -> list[dict]:
    voxel = run.voxel
    return [
        {"patient": patient, "structure": s.name, "metric": m.metric, "course": course,
         "physical_gy": value}
        for s in (voxel.structures if voxel is not None else ())
        for m in s.metrics
        for course, value in m.physical_per_course_gy.items()
    ]  # fmt: skip


def _constraint_row(patient, basis, structure, course, result, quantity_text, sensitivity):
    c = result.constraint
    return {
        "patient": patient, "basis": basis, "structure": structure, "course": course,
        "constraint_id": c.id, "organ": c.organ, "metric": c.metric, "quantity": c.quantity,
        "scope": c.scope, "comparator": c.comparator, "limit": c.limit, "value": result.value,
        "margin": result.margin, "status": result.status, "quantity_text": quantity_text,
        "source": c.source, "evidence": c.evidence,
        "sensitivity_status": sensitivity.status if sensitivity else None,
        "sensitivity_min": sensitivity.value_min if sensitivity else None,
        "sensitivity_max": sensitivity.value_max if sensitivity else None,
        "warnings": " | ".join(result.warnings) or None,
    }  # fmt: skip


def _constraints(patient: str, run: CaseRun) -> list[dict]:
    voxel = run.voxel
    if voxel is not None:
        return [
            _constraint_row(patient, "voxel", v.structure, v.course, v.result,
                            v.quantity_text, v.sensitivity)
            for v in voxel.constraints
        ]  # fmt: skip
    return [
        _constraint_row(patient, "structure", r.structure, o.course, o.result,
                        o.quantity_text, None)
        for r in run.assessment.results
        for o in r.constraints
    ]  # fmt: skip


def _sensitivity(patient: str, run: CaseRun) -> list[dict]:
    voxel = run.voxel
    return [
        {"patient": patient, "structure": v.structure, "constraint_id": v.result.constraint.id,
         "alpha_beta_shift": scenario.alpha_beta_shift,
         "recovery_scale": scenario.recovery_scale, "value": result.value,
         "margin": result.margin, "status": result.status}
        for v in (voxel.constraints if voxel is not None else ())
        if v.sensitivity is not None
        for scenario, result in v.sensitivity.results
    ]  # fmt: skip


def _dvh(patient: str, run: CaseRun) -> dict[str, list]:
    """Long-format DVH points, built as columns (tens of thousands of rows per patient)."""
    curves = []
    voxel = run.voxel
    for s in voxel.structures if voxel is not None else ():
        curves.append((s.name, "cumulative_eqd2", None, s.dvh))
        curves.append((s.name, "cumulative_eqd2_no_recovery", None, s.dvh_no_recovery))
    for course, per_structure in run.course_dvhs.items():
        for name, (physical, effective) in per_structure.items():
            curves.append((name, "course_physical", course, physical))
            curves.append((name, "course_eqd2", course, effective))
    columns: dict[str, list] = {name: [] for name in TABLES["dvh"]}
    for structure, curve, course, dvh in curves:
        n = len(dvh.edges)
        covered = dvh.volume_cc * dvh.covered_fraction
        columns["patient"] += [patient] * n
        columns["structure"] += [structure] * n
        columns["curve"] += [curve] * n
        columns["course"] += [course] * n
        columns["dose_gy"].append(np.asarray(dvh.edges, dtype=np.float32))
        columns["volume_cc"].append(np.asarray(dvh.cumulative_cc, dtype=np.float32))
        fraction = np.asarray(dvh.cumulative_cc, dtype=float) / covered if covered > 0 else None
        columns["volume_fraction"].append(
            np.full(n, np.nan, np.float32) if fraction is None else fraction.astype(np.float32)
        )
    for name in ("dose_gy", "volume_cc", "volume_fraction"):
        parts = columns[name]
        columns[name] = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return columns
