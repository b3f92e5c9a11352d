"""The clinical report: one self-contained HTML document (and optionally PDF) per case.

Presentation only: every number comes from one run of the case,
:func:`reirrad.pipelines.run.run_case` (the assessment, the voxel-wise accumulation when every
course gives DICOM, the fractionation explorer, NTCP), handed over as a
:class:`reirrad.pipelines.run.CaseRun`.  This module lays the results out, draws figures
(matplotlib, Agg, embedded as base64 PNG so the HTML needs no other file) and prints the
HTML to PDF with headless Chromium.  It reads no dose file: only the input files for their
SHA-256 and the reference CT under the dose planes.

Sections: timeline of courses; assumptions (alpha/beta per tissue, recovery model and
interval, conversion method, registration, software version, SHA-256 of every input file);
per-course and cumulative tables with verdicts; constraints with their sources; DVH plots
and orthogonal EQD2 images (DICOM cases); NTCP (needs a DVH); prognosis (Li 2018 index,
AJCC 9 stage); sensitivity (DICOM cases); the fractionation explorer; the ESTRO-EORTC
re-irradiation reporting items that could be verified; a signature block.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure

from reirrad import __version__
from reirrad.core.assessment import METHOD_TEXT, Assessment, StructureResult
from reirrad.core.case import Case
from reirrad.errors import InputError
from reirrad.present.figures import ReportFigure, figure_svg, num
from reirrad.present.follow_up import (
    follow_up_schedule,
    response_to_initial_course,
    structure_outcomes,
    toxicity_summary,
)

if TYPE_CHECKING:
    from reirrad.pipelines.run import CaseRun

__all__ = [
    "CHROMIUM_INSTALL_HINT",
    "ESTRO_EORTC_SOURCES",
    "ReportData",
    "WrittenReport",
    "build_report",
    "check_outputs",
    "find_chromium",
    "html_to_pdf",
    "provenance_appendix",
    "provenance_path",
    "render_html",
    "series_sha256",
    "unavailable_sections",
    "write_report",
]

NOT_A_MEDICAL_DEVICE = (
    "reirrad is research software, not a medical device. This report supports, and does not "
    "replace, the judgement of a qualified radiation oncologist and medical physicist. Every "
    "number rests on the assumptions listed in section 2 (linear-quadratic model, alpha/beta "
    "values, recovery model, dose summation method); check them before use."
)

NO_DICOM = "not available: the case has no DICOM doses"

CHROMIUM_INSTALL_HINT = (
    "headless Chromium is needed for --pdf and was not found; install it (Debian/Ubuntu: "
    "apt-get install chromium), set REIRRAD_CHROMIUM to its path, or omit --pdf and print "
    "the HTML report from a browser"
)

#: What could be verified about the ESTRO-EORTC consensus (search of public sources,
#: 2026-11-27).  The consensus paper's own reporting table was not accessible; only these
#: statements were.
ESTRO_EORTC_SOURCES: Mapping[str, str] = {
    "consensus": (
        "Andratschke N, Willmann J, Appelt AL, Alyamani N, Balermpas P, Baumert BG, et al. "
        "European Society for Radiotherapy and Oncology and European Organisation for "
        "Research and Treatment of Cancer consensus on re-irradiation: definition, reporting, "
        "and clinical decision making. Lancet Oncol 2022 (aims: standardise the classification "
        "of re-irradiation and its reporting; EORTC and Aarhus University pages, verified)"
    ),
    "summary": (
        "Re-irradiation practice and ESTRO/EORTC consensus recommendations: 2023 ASTRO "
        "education panel. Ann Palliat Med 2024, doi:10.21037/apm-24-4 (abstract verified)"
    ),
}


# --------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100.0 * float(value):.0f} %"


def _months(days: int | None) -> str:
    if days is None:
        return "–"
    # mean Gregorian month (365.2425 / 12 days): only for display next to the days
    return f"{days} d ({days / 30.436875:.1f} months)"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# The report's content
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """Everything the template shows (strings and small tables; no computation left).

    ``sections`` maps a section key to its content (dicts/lists of strings); a section
    that cannot be shown holds ``{"unavailable": reason}``.
    """

    title: str
    patient_id: str
    generated: str
    software: str
    banner: str
    sections: Mapping[str, Any]
    figures: Mapping[str, tuple[ReportFigure, ...]] = field(default_factory=dict)


def _dicom_series(path: Path) -> tuple[str, str]:
    """Modality and SeriesInstanceUID of a DICOM file (header only); ``("", "")`` if the
    file is not DICOM or lacks them."""
    import pydicom

    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            force=True,
            specific_tags=["Modality", "SeriesInstanceUID"],
        )
    except Exception:  # noqa: BLE001 - provenance only: an unreadable header is shown as such
        return "", ""
    return str(getattr(ds, "Modality", "") or ""), str(getattr(ds, "SeriesInstanceUID", "") or "")


#: How one SHA-256 is computed over a series of files (stated in the report and the
#: provenance appendix, so that anyone can recompute it).
SERIES_HASH_DEFINITION = (
    "SHA-256 of the text formed by the SHA-256 hex digests (lower case) of the series' files, "
    "sorted, each followed by a line feed"
)


def series_sha256(digests: Iterable[str]) -> str:
    """One SHA-256 over a series of files from their hex digests (:data:`SERIES_HASH_DEFINITION`;
    a series of one file gets the digest of that one line, not the file's own digest)."""
    text = "".join(f"{d.lower()}\n" for d in sorted(digests))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _input_files(case: Case, case_path: Path | None, base: Path | None) -> list[dict[str, str]]:
    """Every input file (the case file and each DICOM file it names) with its SHA-256, the
    case-file field naming it, and its DICOM modality and series."""
    rows = []
    if case_path is not None:
        rows.append(
            {
                "role": "case file",
                "course": "",
                "path": case_path.name,
                "sha256": sha256_file(case_path),
                "modality": "case file",
                "series_uid": "",
            }
        )
    source = str(case_path) if case_path is not None else None
    base = base if base is not None else Path()

    def row(role: str, course: str, path: Path, shown: str) -> dict[str, str]:
        modality, series = _dicom_series(path)
        return {
            "role": role,
            "course": course,
            "path": shown,
            "sha256": sha256_file(path),
            "modality": modality,
            "series_uid": series,
        }

    def add(role: str, course: str, name: str) -> None:
        path = Path(name) if Path(name).is_absolute() else base / name
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            if not files:
                raise InputError(f"{role} directory {name!r} is empty", source=source)
            for p in files:
                shown = str(p.relative_to(base)) if p.is_relative_to(base) else str(p)
                rows.append(row(role, course, p, shown))
            return
        if not path.is_file():
            raise InputError(f"{role} file {name!r} does not exist", source=source, field=role)
        rows.append(row(role, course, path, name))

    for course in case.courses:
        dicom = course.dicom
        if dicom is None:
            continue
        where = f"courses[{course.id}].dicom"
        phases = getattr(dicom, "phase_list", None)
        if phases is not None:
            for number, phase in enumerate(phases()):
                label = f"{where}.phases[{number}]" if dicom.phases else where
                for name in phase.rtdose:
                    add(f"{label}.rtdose", course.id, name)
                if phase.rtplan:
                    add(f"{label}.rtplan", course.id, phase.rtplan)
        else:  # older case model: one phase
            for name in dicom.rtdose:
                add(f"{where}.rtdose", course.id, name)
            if dicom.rtplan:
                add(f"{where}.rtplan", course.id, dicom.rtplan)
        add(f"{where}.rtstruct", course.id, dicom.rtstruct)
        cts = dicom.ct if isinstance(dicom.ct, list) else [dicom.ct] if dicom.ct else []
        for name in cts:
            add(f"{where}.ct", course.id, name)
        registration = getattr(dicom, "registration", None)
        if registration is not None and getattr(registration, "file", None):
            add(f"{where}.registration", course.id, registration.file)
    return rows


def _series_rows(files: list[dict[str, str]]) -> list[dict[str, str]]:
    """One row per series (files of one case-file field sharing a SeriesInstanceUID); a file
    without a series UID is its own row.  Order: as the files are listed."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for f in files:
        key = (f["role"], f["series_uid"] or f["path"])
        groups.setdefault(key, []).append(f)
    rows = []
    for (role, _), members in groups.items():
        first = members[0]
        many = len(members) > 1
        if many:
            folders = {str(Path(m["path"]).parent) for m in members}
            shown = folders.pop() + "/" if len(folders) == 1 else f"{first['path']} …"
        else:
            shown = first["path"]
        rows.append(
            {
                "course": first["course"] or "–",
                "modality": first["modality"] or "–",
                "path": shown,
                "series_uid": first["series_uid"] or "–",
                "files": str(len(members)),
                "sha256": series_sha256(m["sha256"] for m in members) if many else first["sha256"],
                "series": "yes" if many else "",
                "role": role,
            }
        )
    return rows


def provenance_appendix(data: ReportData) -> bytes:
    """The machine-readable provenance appendix: every input file with its SHA-256 (JSON,
    UTF-8, keys sorted, so that the same inputs give the same bytes)."""
    import json

    content = {
        "reirrad_provenance": 1,
        "patient_id": data.patient_id,
        "generated": data.generated,
        "software": data.software,
        "series_sha256_definition": SERIES_HASH_DEFINITION,
        "series": data.sections["provenance"]["series"],
        "files": data.sections["files"],
    }
    return (json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _verdict(result: StructureResult) -> str:
    statuses = {o.result.status for o in result.constraints}
    if not statuses:
        return "no limit"
    return "FAIL" if "fail" in statuses else "PASS"


def _timeline_figure(case: Case) -> ReportFigure:
    extra_row = case.follow_up is not None and bool(case.follow_up.response)
    rows_n = len(case.courses) + (1.6 if extra_row else 0)
    fig = Figure(figsize=(7.4, 1.2 + 0.45 * rows_n), layout="constrained")
    ax = fig.add_subplot()
    colours = [f"C{i}" for i in range(10)]
    for row, course in enumerate(case.courses):
        start = mdates.date2num(course.start)
        width = max(mdates.date2num(course.end) - start, 2.0)
        ax.barh(row, width, left=start, height=0.5, color=colours[row % 10])
        rx = course.prescriptions[0] if course.prescriptions else None
        label = f"{course.id}: {course.fractions} fx" + (
            f", {rx.dose_gy:g} Gy" if rx is not None else ""
        )
        ax.annotate(
            label,
            (start + width, row),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    events = []
    if case.diagnosis is not None and case.diagnosis.date is not None:
        events.append((case.diagnosis.date, "diagnosis"))
    if case.recurrence is not None and case.recurrence.date is not None:
        events.append((case.recurrence.date, "recurrence"))
    for date, name in events:
        x = mdates.date2num(date)
        ax.axvline(x, color="0.35", linestyle=":", linewidth=1)
        ax.annotate(
            name,
            (x, len(case.courses) - 0.5),
            xytext=(2, 0),
            textcoords="offset points",
            fontsize=7,
            color="0.3",
            va="bottom",
        )
    rows = [c.id for c in case.courses]
    studies = _imaging_row(ax, case, len(rows))
    if studies:
        rows.append("imaging")
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    first = min(
        [mdates.date2num(c.start) for c in case.courses]
        + [mdates.date2num(d) for d, _ in events]
        + studies
    )
    last = max([mdates.date2num(c.end) for c in case.courses] + studies)
    pad = 0.08 * (last - first + 30)
    ax.set_xlim(first - pad, last + 3 * pad)
    ax.set_ylim(len(rows) - (0.1 if studies else 0.4), -0.9)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    title = "Timeline of courses" + (" and follow-up imaging" if studies else "")
    return ReportFigure(title, figure_svg(fig))


def _imaging_row(ax, case: Case, row: int) -> list[float]:
    """Follow-up studies on one row: PET as triangles labelled with SUVmax, others as dots."""
    if case.follow_up is None or not case.follow_up.response:
        return []
    by_date: dict = {}
    for item in case.follow_up.response:
        by_date.setdefault((item.date, item.modality), []).append(item)
    xs: list[float] = []
    below = True
    for (date, modality), items in sorted(by_date.items()):
        x = mdates.date2num(date)
        # labels of studies closer than ~6 weeks alternate below and above the row
        below = not below if xs and x - xs[-1] < 45 else True
        xs.append(x)
        pet = modality.startswith("PET")
        ax.plot(x, row, marker="^" if pet else "o", color="0.15" if pet else "0.5", markersize=6)
        suv = [i.suv_max for i in items if i.suv_max is not None]
        label = modality + (f"\nSUVmax {max(suv):g}" if suv else "")
        ax.annotate(label, (x, row), xytext=(0, -8 if below else 8), textcoords="offset points",
                    fontsize=6, ha="center", va="top" if below else "bottom",
                    color="0.25")  # fmt: skip
    return xs


def _courses_section(case: Case, assessment: Assessment) -> list[dict[str, str]]:
    newest = case.courses[-1]
    rows = []
    for course in case.courses:
        gap = None if course is newest else (newest.start - course.end).days
        rows.append(
            {
                "id": course.id,
                "label": course.label or "",
                "start": course.start.isoformat(),
                "end": course.end.isoformat(),
                "fractions": str(course.fractions),
                "prescriptions": "; ".join(
                    f"{p.target}: {p.dose_gy:g} Gy in {p.fractions} fx "
                    f"({p.dose_per_fraction_gy:.2f} Gy/fx){' [primary]' if p.primary else ''}"
                    for p in course.prescriptions
                )
                or "–",
                "technique": course.technique or "–",
                "systemic": course.systemic_therapy or "–",
                "method": assessment.methods[course.id],
                "interval": _months(gap) if gap is not None else "newest course",
                "source": "DICOM RT" if course.dicom is not None else "typed-in statistics",
            }
        )
    return rows


def _patient_rows(case: Case) -> list[tuple[str, str]]:
    patient = case.patient
    rows = [("Patient id", patient.id), ("Sex", patient.sex)]
    if patient.birth_date is not None:
        rows.append(("Birth date", patient.birth_date.isoformat()))
    if patient.age_at_diagnosis is not None:
        rows.append(("Age at diagnosis", f"{patient.age_at_diagnosis:g} years"))
    d = case.diagnosis
    if d is not None:
        text = d.site + (f", {d.histology}" if d.histology else "")
        if d.date is not None:
            text += f" ({d.date.isoformat()})"
        rows.append(("Diagnosis", text))
        if d.stage is not None:
            rows.append(
                ("Stage at diagnosis", f"{d.stage.edition} {d.stage.t} {d.stage.n} {d.stage.m}")
            )
    r = case.recurrence
    if r is not None:
        bits = []
        if r.date is not None:
            bits.append(r.date.isoformat())
        if r.volume_ml is not None:
            bits.append(f"rGTV {r.volume_ml:g} mL")
        if r.rt_category:
            bits.append(r.rt_category)
        if r.age_years is not None:
            bits.append(f"age {r.age_years:g} years")
        if r.prior_grade3_toxicity is not None:
            bits.append(
                "prior grade >= 3 toxicity"
                if r.prior_grade3_toxicity
                else "no prior grade >= 3 toxicity"
            )
        if r.note:
            bits.append(r.note)
        rows.append(("Recurrence", "; ".join(bits) or "–"))
    return rows


def _tissue_rows(case: Case) -> list[dict[str, str]]:
    rows = []
    for spec in case.structures:
        ab, model = case.tissue(spec)
        rows.append(
            {
                "structure": spec.name,
                "role": spec.role.replace("_", " "),
                "organ": spec.organ or "–",
                "alpha_beta": f"{ab:g} Gy",
                "recovery": model.describe(),
            }
        )
    return rows


def _result_tables(
    assessment: Assessment, flags: Mapping[str, tuple[str, ...]]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Cumulative summary rows, per-course rows and constraint rows (``flags``: verdict-level
    flags per structure, shown with every verdict of its limits)."""
    summary, per_course, limits = [], [], []
    for r in assessment.results:
        verdict = _verdict(r)
        summary.append(
            {
                "structure": r.structure,
                "statistic": r.statistic,
                "role": r.role.replace("_", " "),
                "alpha_beta": f"{r.alpha_beta:g}",
                "physical": num(r.cumulative.physical_gy),
                "eqd2": num(r.cumulative.eqd2_gy),
                "eqd2_no_recovery": num(r.cumulative.eqd2_no_recovery_gy),
                "bed": num(r.cumulative.bed_gy),
                "verdict": verdict,
                "courses": [num(v.effective_eqd2_gy) for v in r.courses],
                "approximate": any("approximation" in n for n in r.notes),
            }
        )
        for v in r.courses:
            per_course.append(
                {
                    "structure": r.structure,
                    "statistic": v.statistic,
                    "course": v.course,
                    "method": v.method,
                    "physical": num(v.physical_gy),
                    "dpf": num(v.dose_per_fraction_gy),
                    "eqd2": num(v.eqd2_gy),
                    "bed": num(v.bed_gy),
                    "interval": "–" if v.interval_days is None else f"{v.interval_days} d",
                    "recovered": _pct(v.recovered_fraction),
                    "effective": num(v.effective_eqd2_gy),
                }
            )
        for o in r.constraints:
            c = o.result.constraint
            limits.append(
                {
                    "structure": r.structure,
                    "id": c.id,
                    "limit": f"{c.metric} {c.comparator} {c.limit:g} Gy",
                    "quantity": o.quantity_text,
                    "value": num(o.result.value, unit="Gy"),
                    "margin": num(o.result.margin, unit="Gy"),
                    "verdict": o.result.status.upper(),
                    # the verdict changes within the case's alpha/beta x recovery scenarios
                    "depends": o.sensitivity is not None and o.sensitivity.status == "depends",
                    "range": (
                        f"{o.sensitivity.value_min:.2f}–{o.sensitivity.value_max:.2f} Gy"
                        if o.sensitivity is not None
                        else ""
                    ),
                    "flags": list(flags.get(r.structure, ())),
                    "endpoint": c.endpoint or "–",
                    "source": c.source,
                    "evidence": c.evidence,
                    "warnings": list(o.result.warnings),
                }
            )
    return summary, per_course, limits


def _prognosis_section(assessment: Assessment) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prognosis = assessment.prognosis
    li = prognosis.get("li2018")
    if li is None:
        out["li"] = {"unavailable": "the case has no recurrence section (Li 2018 inputs)"}
    elif isinstance(li, dict):
        out["li"] = {"unavailable": f"missing inputs: {', '.join(li.get('missing', []))}"}
    else:
        names = {
            "rgtv_ml": "recurrent GTV (mL)",
            "age_years": "age at recurrence (years)",
            "reirradiation_eqd2_ge_68gy": "re-irradiation EQD2 >= 68 Gy",
            "prior_grade3_toxicity": "prior grade >= 3 toxicity",
            "rt3_4": "rT3-4",
        }
        out["li"] = {
            "index": f"{li.index:.2f}",
            "group": li.group,
            "cutoff": f"{li.cutoff:g}",
            "terms": [
                {
                    "name": names.get(k, k),
                    "value": f"{li.covariates[k]:g}",
                    "term": f"{li.terms.get(k, 0.0):.2f}",
                }
                for k in li.covariates
            ],
            "note": li.note,
            "citation": li.citation,
            "assumptions": list(li.assumptions),
        }
        eqd2 = prognosis.get("li2018_reirradiation_eqd2")
        if isinstance(eqd2, Mapping):
            out["li"]["eqd2"] = (
                f"re-irradiation EQD2 {eqd2['eqd2_gy']:.2f} Gy ({eqd2['prescription']}, "
                f"alpha/beta {eqd2['alpha_beta_gy']:g} Gy): {eqd2['note']}"
            )
    stage = prognosis.get("stage")
    if stage:
        out["stage"] = {
            "edition": stage["edition"],
            "tnm": stage["tnm"],
            "group": stage.get("group") or "n/a",
            "source": stage.get("source") or stage.get("note", ""),
        }
    else:
        out["stage"] = {"unavailable": "no AJCC/UICC stage in the case file"}
    return out


# --------------------------------------------------------------------------------------
# Fractionation explorer (structure level, from the case's exploration section)
# --------------------------------------------------------------------------------------


def _structure_colours(run: CaseRun):
    """The structures' colours of the voxel-wise figures (None without a voxel-wise run)."""
    from reirrad.present.colours import of_structures

    return None if run.voxel is None else of_structures(run.voxel.structures)


def _explorer_section(run: CaseRun) -> tuple[dict[str, Any], list[ReportFigure]]:
    case = run.case
    if case.exploration is None:
        return {
            "unavailable": "the case has no 'exploration' section (target, and new_course or "
            "start with relative_doses); see docs/case-format.md"
        }, []
    outcome = run.exploration
    if outcome is None:
        return {"unavailable": run.exploration_unavailable or "the explorer did not run"}, []
    result = outcome.result
    rows = []
    for row in result.rows:
        d = row.dose_per_fraction_gy
        rows.append(
            {
                "fractions": f"{row.fractions:g}",
                "dpf": num(d) if math.isfinite(d) else "unlimited",
                "total": num(row.total_dose_gy) if math.isfinite(d) else "–",
                "eqd2_new": num(row.eqd2_new_gy),
                "eqd2_cum": num(row.eqd2_cumulative_gy),
                "bed_new": num(row.bed_new_gy),
                "window": "yes" if row.in_window else "",
                "curative": "yes" if row.curative else "",
                "feasible": row.feasible,
                "binding": "–" if row.binding is None else row.binding,
            }
        )
    from reirrad.present.plots import no_feasible_scheme, plot_feasible_region

    figure = ReportFigure(
        "Feasible re-irradiation schemes",
        figure_svg(plot_feasible_region(result, colours=_structure_colours(run))),
        "Highest prescription dose per fraction for each number of fractions, coloured by the "
        "binding constraint; dashed box: published hypofractionated re-irradiation window."
        if not no_feasible_scheme(result)
        else "No number of fractions keeps every limit: the limits named in the figure are "
        "already exceeded by the earlier courses.",
    )
    feasible = [row for row in result.rows if row.feasible]
    fractions = [row.fractions for row in result.rows]
    binding = list(dict.fromkeys(row.binding for row in result.rows if row.binding))
    section = {
        "rows": rows,
        "none_feasible": not feasible,
        "fraction_range": f"{min(fractions):g} to {max(fractions):g}" if fractions else "",
        "binding": binding,
        "history": ", ".join(outcome.history),
        "start": str(outcome.start),
        "new_course": outcome.new_course or "a new course",
        "exceeded": list(outcome.exceeded),
        "not_explored": list(outcome.not_explored),
        "sources": _group_sources(list(result.sources)),
        "assumptions": _group_by_limit(
            list(outcome.assumptions) + list(result.assumptions), [s.name for s in case.structures]
        ),
        "target": case.exploration.target,
    }
    return section, [figure]


def _group_by_limit(messages: list[str], names: list[str]) -> list[str]:
    """Notes of the form ``"<structure>: <limit id>: <text>"`` with the same text shown once,
    naming every structure (other messages unchanged, order kept)."""
    groups: dict[str, list[str]] = {}
    for message in messages:
        name = next((n for n in names if message.startswith(f"{n}: ")), None)
        rest = message if name is None else message[len(name) + 2 :]
        head, sep, text = rest.partition(": ")
        if name is None or not sep or " " in head:
            groups.setdefault(message, [])
            continue
        groups.setdefault(text, []).append(name)
    return [f"{', '.join(who)}: {text}" if who else text for text, who in groups.items()]


def _group_sources(sources: list[str]) -> list[str]:
    """``"<limit>: <citation>"`` lines sharing a citation shown once, listing their limits."""
    groups: dict[str, list[str]] = {}
    for source in sources:
        limit, sep, citation = source.partition(" EQD2: ")
        if not sep:
            groups.setdefault(source, [])
            continue
        groups.setdefault(citation, []).append(limit + " EQD2")
    return [
        f"{citation} — {'; '.join(limits)}" if limits else citation
        for citation, limits in groups.items()
    ]


# --------------------------------------------------------------------------------------
# Voxel-wise sections (DICOM cases)
# --------------------------------------------------------------------------------------


def _has_dicom(case: Case) -> bool:
    return any(course.dicom is not None for course in case.courses)


def _voxel_sections(run: CaseRun) -> tuple[dict[str, Any], dict[str, list]]:
    """DVH plots, orthogonal images, NTCP, sensitivity and re-irradiation type.

    Filled from the run's voxel-wise result when every course gives DICOM doses.
    """
    keys = ("dvh", "images", "ntcp", "sensitivity", "reirradiation_type")
    case = run.case
    if not _has_dicom(case):
        sections = {key: {"unavailable": NO_DICOM} for key in keys}
        sections["ntcp"] = {
            "unavailable": "NTCP needs a dose-volume histogram of the cumulative EQD2; "
            "this structure-level case has none (" + NO_DICOM + ")"
        }
        return sections, {}
    if run.voxel is None:
        typed = ", ".join(c.id for c in case.courses if c.dicom is None)
        reason = (
            "not available: the voxel-wise accumulation could not run (it needs DICOM doses "
            f"for every course; typed-in statistics for: {typed})"
        )
        sections = {key: {"unavailable": reason} for key in keys}
        sections["voxel_warnings"] = [reason]
        return sections, {}
    from reirrad.present.report_voxel import voxel_sections

    return voxel_sections(run)


# --------------------------------------------------------------------------------------
# ESTRO-EORTC reporting items
# --------------------------------------------------------------------------------------


def _estro_items(case: Case, assessment: Assessment, sections: Mapping[str, Any]) -> dict[str, Any]:
    """The ESTRO-EORTC reporting items filled from the case, then reirrad's further items."""
    return {
        "items": _consensus_items(case, assessment, sections),
        "further": _further_items(case, sections),
        "references": [
            f"[1] {ESTRO_EORTC_SOURCES['consensus']}",
            f"[2] {ESTRO_EORTC_SOURCES['summary']}",
        ],
        "note": "The consensus paper's own list of reporting items could not be read; the "
        "items below are those its verified summary [2] names. The further items are what "
        "reirrad reports in addition; they were not verified as consensus items.",
    }


def _patient_text(case: Case) -> str:
    """Patient, diagnosis, stage and recurrence in one line."""
    patient = case.patient
    parts = [f"patient {patient.id}", f"sex {patient.sex}"]
    if patient.age_at_diagnosis is not None:
        parts.append(f"age at diagnosis {patient.age_at_diagnosis:g}")
    if case.diagnosis is not None:
        d = case.diagnosis
        parts.append(f"{d.site}" + (f", {d.histology}" if d.histology else ""))
        if d.stage is not None:
            parts.append(f"{d.stage.edition} {d.stage.t} {d.stage.n} {d.stage.m}")
    if case.recurrence is not None:
        r = case.recurrence
        bits = [
            f"{name} {value}"
            for name, value in (
                ("date", r.date),
                ("rGTV", f"{r.volume_ml:g} mL" if r.volume_ml else None),
                ("category", r.rt_category),
            )
            if value
        ]
        parts.append("recurrence: " + ", ".join(bits))
    return "; ".join(parts)


def _courses_text(case: Case) -> str:
    """Each course's dates, fractions, prescriptions and technique."""
    return "; ".join(
        f"{c.id} {c.start}–{c.end}, {c.fractions} fx"
        + (
            " (" + ", ".join(f"{p.dose_gy:g} Gy/{p.fractions} fx" for p in c.prescriptions) + ")"
            if c.prescriptions
            else ""
        )
        + (f", {c.technique}" if c.technique else "")
        for c in case.courses
    )


def _dose_volume_text(assessment: Assessment) -> str:
    """Where the report gives the cumulative dose-volume parameters, and at which alpha/beta."""
    abs_ = ", ".join(sorted({f"{r.alpha_beta:g} Gy" for r in assessment.results}))
    if assessment.voxel is not None:
        return (
            f"section 3: voxel-wise cumulative EQD2 (alpha/beta {abs_}; with and without "
            "recovery), the structure-level approximation for comparison; section 4: each "
            "course's contribution and the DVHs; section 8: sensitivity"
        )
    methods = ", ".join(f"{k}={v}" for k, v in assessment.methods.items())
    return (
        f"section 3, structure level (EQD2 at alpha/beta {abs_}; method per course: {methods}; "
        "with and without recovery)"
    )


def _consensus_items(
    case: Case, assessment: Assessment, sections: Mapping[str, Any]
) -> list[dict[str, str]]:
    # [1] the consensus, [2] its verified summary (see ESTRO_EORTC_SOURCES)
    abstract = "[2], abstract"
    review = "[2], article text: the systematic review of [1] found these inconsistently reported"
    rtype = sections.get("reirradiation_type", {})
    type_text = rtype.get("text") if "text" in rtype else rtype.get("unavailable", "")
    li = sections["prognosis"]["li"]
    survival = (
        f"Li 2018 prognostic index {li['index']} ({li['group']} risk); performance status: "
        "to be completed"
        if "index" in li
        else "performance status and survival estimate: to be completed"
    )
    schedule = follow_up_schedule(case)
    return [
        {
            "item": "Re-irradiation type (Type 1: overlapping irradiated volumes; Type 2: no "
            "overlap but concern about cumulative dose; otherwise repeat organ irradiation / "
            "repeat irradiation)",
            "case": type_text or "to be completed by the physician",
            "source": f"{abstract}: types by geometric overlap of irradiated volumes and "
            "concern for cumulative-dose toxicity",
        },
        {
            "item": "Patient and tumour characteristics",
            "case": _patient_text(case),
            "source": abstract,
        },  # fmt: skip
        {
            "item": "Treatment planning and delivery details of every course",
            "case": _courses_text(case),
            "source": abstract,
        },  # fmt: skip
        {
            "item": "Cumulative dose-volume parameters for target volumes and organs at risk",
            "case": _dose_volume_text(assessment),
            "source": review,
        },  # fmt: skip
        {
            "item": "Indication for re-irradiation and treatment intent",
            "case": "to be completed by the physician",
            "source": review,
        },  # fmt: skip
        {
            "item": "Decision-making factors: performance status, survival estimate, response "
            "to the initial radiotherapy",
            "case": survival
            + "; response to the initial radiotherapy: "
            + (response_to_initial_course(case) or "to be completed"),
            "source": abstract,
        },
        {
            "item": "Follow-up protocol",
            "case": "done so far (from the follow-up record): " + schedule
            if schedule
            else "to be completed by the physician",
            "source": abstract,
        },
    ]


def _further_items(case: Case, sections: Mapping[str, Any]) -> list[dict[str, str]]:
    newest = case.courses[-1]
    intervals = ", ".join(
        f"{c.id} to {newest.id}: {_months((newest.start - c.end).days)}" for c in case.courses[:-1]
    )
    return [
        {"item": "Interval between courses", "case": intervals or "single course"},
        {
            "item": "Observed toxicity, worst grade per CTCAE v5.0 term",
            "case": toxicity_summary(case) or "none recorded",
        },
        {"item": "alpha/beta per tissue", "case": "section 2, tissue table"},
        {"item": "Recovery assumption", "case": "section 2, tissue table (model and citation)"},
        {"item": "Dose summation method and registration", "case": sections["registration"]},
    ]


# --------------------------------------------------------------------------------------
# Building, rendering, writing
# --------------------------------------------------------------------------------------


def _registration_text(case: Case, voxel: Mapping[str, Any]) -> str:
    if "registration" in voxel:
        return str(voxel["registration"])
    if _has_dicom(case):
        return (
            "none: structure statistics are read from each course's own DVH and added "
            "structure by structure (no voxel-wise registration)"
        )
    return (
        "none: structure-level assessment; the statistics typed into the case file are added "
        "structure by structure (no images, no registration)"
    )


def _not_in_tables(assumptions: Iterable[str], case: Case) -> list[str]:
    """The stated assumptions without those the tissue table and the conversion lines of
    section 2 already show (one line per structure: alpha/beta and recovery model; one per
    course: its conversion method)."""
    names = [spec.name for spec in case.structures]
    courses = [f"course {c.id}: method " for c in case.courses]
    return [
        a
        for a in assumptions
        if not any(a.startswith(f"{n} (") for n in names)
        and not any(a.startswith(c) for c in courses)
    ]


def _group_by_structure(messages: list[str], names: list[str]) -> list[str]:
    """Messages that differ only by the structure they start with (``"<structure>: ..."``)
    shown once, naming every structure (order kept; other messages unchanged)."""
    groups: dict[str, list[str]] = {}
    for message in messages:
        name = next((n for n in names if message.startswith(f"{n}: ")), None)
        key = message if name is None else message[len(name) + 2 :]
        who = groups.setdefault(key, [])
        if name is not None:
            who.append(name)
    return [f"{'; '.join(who)}: {text}" if who else text for text, who in groups.items()]


def _overview(
    limits: list[dict[str, Any]], not_evaluable: list[str], run: CaseRun
) -> dict[str, Any]:
    """The summary boxes, counted from the rows of the limits table the report shows (so
    that the boxes and the table cannot disagree)."""
    flagged = list(
        dict.fromkeys(f"{row['structure']}: {flag}" for row in limits for flag in row["flags"])
    )
    depends = [
        f"{row['structure']}: {row['id']}"
        + (f" ({row['range']} in the scenarios)" if row.get("range") else "")
        for row in limits
        if row.get("depends", False)
    ]
    structures = {row["structure"] for row in limits}
    recovery = _recovery_outside_evidence(run.case)
    if run.voxel is not None:
        basis = (
            "Verdicts from the voxel-wise cumulative EQD2 (every course from DICOM, summed "
            "voxel by voxel on the reference dose grid); the structure-level approximation is "
            "shown for comparison in section 3."
        )
    else:
        basis = (
            "Verdicts from the structure-level assessment (per-course structure statistics "
            "converted to EQD2 and added); no voxel-wise sum"
            + (": not every course has DICOM doses." if _has_dicom(run.case) else ".")
        )
    return {
        "basis": basis,
        "structures": len({r.structure for r in run.assessment.results}),
        "with_limits": len(structures),
        "constraints": len(limits),
        "passing": sum(row["verdict"] == "PASS" for row in limits),
        "failing": sum(row["verdict"] == "FAIL" for row in limits),
        "failing_list": [
            f"{row['structure']}: {row['limit']} ({row['value']})"
            for row in limits
            if row["verdict"] == "FAIL"
        ],
        "not_evaluable": not_evaluable,
        "flagged": flagged,
        "depends": depends,
        "recovery": recovery,
        "to_check": len(flagged) + len(depends) + len(recovery),
    }


def _recovery_outside_evidence(case: Case) -> list[str]:
    """Recovery credited at an interval its source does not support (the model's own
    :meth:`~reirrad.core.recovery.RecoveryModel.evidence_warning`), one line per model and
    course, naming the structures it applies to."""
    newest = case.courses[-1]
    found: dict[tuple[str, str, int], list[str]] = {}
    for spec in case.structures:
        _, model = case.tissue(spec)
        for course in case.courses[:-1]:
            days = (newest.start - course.end).days
            if model.evidence_warning(days) is not None:
                found.setdefault((model.name, course.id, days), []).append(spec.name)
    everyone = len(case.structures)
    return [
        ("all structures" if len(names) == everyone > 1 else ", ".join(names))
        + f": recovery after {course} ({days} d) credited with {name} outside the intervals "
        "its source supports (extrapolation; see the values without recovery)"
        for (name, course, days), names in found.items()
    ]


def build_report(run: CaseRun, *, now: dt.datetime | None = None) -> ReportData:
    """Collect everything the report shows from one run of a case.

    Parameters
    ----------
    run
        The case run once (:func:`reirrad.pipelines.run.run_case`); nothing is recomputed.
    now
        Time stamp printed on the report (default: now, UTC).
    """
    if isinstance(run, str | Path):
        # the former API took the case file: the report no longer runs the case itself
        raise TypeError("build_report takes a CaseRun: reirrad.pipelines.run.run_case(path) first")
    case, assessment = run.case, run.assessment
    now = now or dt.datetime.now(dt.UTC)
    flags = {s.name: s.flags for s in run.voxel.structures} if run.voxel is not None else {}

    summary, per_course, limits = _result_tables(assessment, flags)
    files = _input_files(case, run.case_path, run.base)
    voxel, voxel_figures = _voxel_sections(run)
    explorer, explorer_figures = _explorer_section(run)
    sections: dict[str, Any] = {
        "patient": _patient_rows(case),
        "courses": _courses_section(case, assessment),
        "tissues": _tissue_rows(case),
        "methods": [
            {"course": k, "method": v, "text": METHOD_TEXT[v]}
            for k, v in assessment.methods.items()
        ],
        "files": files,
        "provenance": {
            "series": _series_rows(files),
            "definition": SERIES_HASH_DEFINITION,
            "total_files": len(files),
            "appendix": None,
        },
        "summary": summary,
        "course_ids": [c.id for c in case.courses],
        "per_course": per_course,
        "limits": limits,
        "not_evaluated": [
            f"{n.constraint.id} on {n.structure}: {n.reason}" for n in assessment.not_evaluated
        ],
        "assumptions": _not_in_tables(assessment.assumptions, case),
        "warnings": _group_by_structure(
            [*assessment.warnings, *voxel.get("voxel_warnings", [])],
            [spec.name for spec in case.structures],
        ),
        "notes": sorted({n for r in assessment.results for n in r.notes}),
        "prognosis": _prognosis_section(assessment),
        "explorer": explorer,
        **{k: v for k, v in voxel.items() if k != "registration"},
    }
    if "voxel_assumptions" in sections:
        sections["voxel_assumptions"] = _not_in_tables(sections["voxel_assumptions"], case)
    if "assumptions" in explorer:
        # what section 2 already states is not repeated under the explorer
        stated = {*sections["assumptions"], *sections.get("voxel_assumptions", [])}
        explorer["assumptions"] = [
            a for a in _not_in_tables(explorer["assumptions"], case) if a not in stated
        ]
    if run.voxel is not None:
        rois = {s.name: s.roi for s in run.voxel.structures}
        for row in sections["tissues"]:
            row["roi"] = rois.get(row["structure"], "–")
    sections["registration"] = _registration_text(case, voxel)
    sections["estro"] = _estro_items(case, assessment, sections)
    if run.voxel is not None:
        from reirrad.present.report_voxel import voxel_results

        primary = voxel_results(
            run.voxel, {(row["structure"], row["statistic"]): row["eqd2"] for row in summary}
        )
        sections["comparison"] = {"summary": summary, "limits": limits}
        sections["summary"], sections["limits"] = primary["summary"], primary["limits"]
        sections["basis"] = "voxel"
        # the structure-level gaps do not apply to the voxel-wise result
        not_evaluable: list[str] = []
    else:
        sections["comparison"] = None
        sections["basis"] = "structure"
        not_evaluable = [
            f"{n.structure}: {n.constraint.metric} {n.constraint.comparator} "
            f"{n.constraint.limit:g} Gy — {n.reason}"
            for n in assessment.not_evaluated
        ]
    sections["overview"] = _overview(sections["limits"], not_evaluable, run)
    sections["outcomes"] = _add_outcomes(case, sections)
    figures = {
        "timeline": (_timeline_figure(case),),
        "explorer": tuple(explorer_figures),
        **{k: tuple(v) for k, v in voxel_figures.items()},
    }
    return ReportData(
        title="Re-irradiation dose assessment",
        patient_id=case.patient.id,
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        software=f"reirrad {__version__} (Python {platform.python_version()})",
        banner=NOT_A_MEDICAL_DEVICE,
        sections=sections,
        figures=figures,
    )


def _add_outcomes(case: Case, sections: dict[str, Any]) -> bool:
    """Put each organ's observed toxicities on its first row of the cumulative tables (the
    case report's last column); True when there is any."""
    outcomes = structure_outcomes(case)
    comparison = sections.get("comparison") or {}
    for rows in (sections["summary"], comparison.get("summary", [])):
        seen: set[str] = set()
        for row in rows:
            first = row["structure"] not in seen
            seen.add(row["structure"])
            row["outcome"] = outcomes.get(row["structure"], "") if first else ""
    return bool(outcomes)


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML document (inline CSS, base64 images)."""
    try:
        import jinja2
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError(
            "the report needs the Python package jinja2 (pip install jinja2)"
        ) from None
    from reirrad.present.report_template import CSS, TEMPLATE

    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return environment.from_string(TEMPLATE).render(data=data, s=data.sections, css=CSS)


def find_chromium() -> str | None:
    """Path of a headless-capable Chromium (``REIRRAD_CHROMIUM`` first), or ``None``."""
    configured = os.environ.get("REIRRAD_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(chromium: str, user_data_dir: str, *extra: str) -> list[str]:
    """Chromium headless command line with networking and background services off."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data_dir}",
        *extra,
    ]


def html_to_pdf(html_path: str | Path, pdf_path: str | Path, *, timeout_s: float = 120) -> Path:
    """Print an HTML file to PDF (A4, the page CSS decides margins) with headless Chromium."""
    chromium = find_chromium()
    if chromium is None:
        raise InputError(CHROMIUM_INSTALL_HINT, source="--pdf")
    html = Path(html_path).resolve()
    pdf = Path(pdf_path).resolve()
    if pdf.exists():
        pdf.unlink()
    with tempfile.TemporaryDirectory(prefix="reirrad-chromium-") as profile:
        command = chromium_command(
            chromium,
            profile,
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            html.as_uri(),
        )
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise InputError(
                f"Chromium did not finish printing within {timeout_s:g} s", source="--pdf"
            ) from None
    if not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise InputError(
            f"Chromium could not write the PDF (exit {done.returncode}: {tail[0]})",
            source=str(pdf_path),
        )
    return pdf


def check_outputs(out: str | Path, pdf: str | Path | None = None) -> None:
    """Refuse output names the report cannot be written to, and ``--pdf`` without Chromium
    (call before running the case: fail fast with the installation hint)."""
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise InputError("the report is HTML: give a file ending in .html", source="--out")
    if pdf is not None and Path(pdf).suffix.lower() != ".pdf":
        raise InputError("give a file ending in .pdf", source="--pdf")
    if pdf is not None and find_chromium() is None:
        raise InputError(CHROMIUM_INSTALL_HINT, source="--pdf")


@dataclass(frozen=True)
class WrittenReport:
    """Where :func:`write_report` wrote the report and its provenance appendix, and what the
    report contains."""

    html: Path
    pdf: Path | None
    data: ReportData
    provenance: Path | None = None


def provenance_path(out: str | Path) -> Path:
    """The provenance appendix written beside a report: ``report.html`` ->
    ``report.provenance.json``."""
    out = Path(out)
    return out.with_name(out.stem + ".provenance.json")


def write_report(
    run: CaseRun,
    out: str | Path,
    *,
    pdf: str | Path | None = None,
    now: dt.datetime | None = None,
) -> WrittenReport:
    """Write the HTML report of a run, its provenance appendix (every input file with its
    SHA-256, :func:`provenance_path`) and the PDF, if asked; returns the paths and the
    content.  Check the output names first with :func:`check_outputs` to fail before the
    run."""
    check_outputs(out, pdf)
    out_path = Path(out)
    appendix_path = provenance_path(out_path)
    data = build_report(run, now=now)
    appendix = provenance_appendix(data)
    provenance = {
        **data.sections["provenance"],
        "appendix": {"name": appendix_path.name, "sha256": hashlib.sha256(appendix).hexdigest()},
    }
    data = replace(data, sections={**data.sections, "provenance": provenance})
    html = render_html(data)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        appendix_path.write_bytes(appendix)
        out_path.write_text(html, encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot write the report ({error.strerror})", source=str(out)) from None
    pdf_path = html_to_pdf(out_path, pdf) if pdf is not None else None
    return WrittenReport(html=out_path, pdf=pdf_path, data=data, provenance=appendix_path)


def unavailable_sections(sections: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Sections that could not be shown, and why (for the command's summary line)."""
    for key, value in sections.items():
        if isinstance(value, Mapping) and "unavailable" in value:
            yield key, str(value["unavailable"])
