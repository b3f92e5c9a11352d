"""Structure statistics for a case's courses from their DICOM RT files.

A course's ``dicom`` section names its RTDOSE file(s), RTSTRUCT and optionally RTPLAN.  For
every case structure that the course does not give typed-in doses for, the structure's DVH is
computed with :func:`reirrad.core.dvh.compute_dvh` and the requested statistics are read off it.
Typed-in doses of a course always take precedence over DICOM for that structure.

Refusals (never guessed):

* RTDOSE of DoseSummationType BEAM, unless the phase says ``beams_summed: true`` (the file
  holds the sum of all beams of one fraction); then it is multiplied like FRACTION.
* RTDOSE of DoseSummationType FRACTION is multiplied by the phase's number of fractions (from
  its RTPLAN, its ``fractions``, or the course's for a single phase); stated nowhere: refused.
* several RTDOSE files of one phase must share one grid; phases on different grids need the
  voxel-wise accumulation (``reirrad accumulate``).
* an RTPLAN whose planned fractions differ from the phase's or course's ``fractions``.
* a structure partly outside the dose grid, unless ``allow_partial_coverage: true``.
* EFFECTIVE (already EQD2/BED) doses: converting twice is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reirrad.core.accumulate import phase_total_dose
from reirrad.core.case import Case, Course
from reirrad.core.dvh import compute_dvh
from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.metrics import parse_metric
from reirrad.core.structures import Structure, StructureSet
from reirrad.errors import InputError
from reirrad.io.dicom import check_frame_of_reference, read_rtdose, read_rtplan, read_rtstruct

__all__ = [
    "PhaseDose",
    "course_dose",
    "course_phases",
    "dicom_statistics",
    "roi_name",
    "structure_outside_grid",
]

#: Minimum covered fraction counted as "fully inside" (rounding of contour end caps).
FULL_COVERAGE = 0.999


def _path(base: Path | None, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() or base is None else base / path


@dataclass(frozen=True)
class PhaseDose:
    """One phase of a course read from DICOM: total physical dose and its fractions.

    Attributes
    ----------
    dose
        Total physical dose of the phase (all its fractions), kind PHYSICAL, on its grid.
    fractions
        Number of fractions of the phase.
    fractions_source
        Where the number came from (``RTPLAN``, ``phase``, ``course``).
    plan_uid
        SOP Instance UID of the phase's RTPLAN (or the one the RTDOSE references), if known.
    dose_uids
        SOP Instance UIDs of the RTDOSE objects summed into ``dose`` (those that have one).
    frame_of_reference_uid
        Frame of Reference UID of the dose grid.
    notes
        Assumptions made reading it.
    """

    dose: Dose
    fractions: int
    fractions_source: str
    label: str
    plan_uid: str | None = None
    frame_of_reference_uid: str | None = None
    prescribed_dose_gy: float | None = None
    notes: tuple[str, ...] = ()
    dose_uids: tuple[str, ...] = ()


def _same_grid(a, b) -> bool:
    return a.shape == b.shape and np.allclose(a.affine, b.affine, atol=1e-3)


def course_phases(course: Course, *, base: Path | None = None) -> list[PhaseDose]:
    """Every phase of a course's ``dicom`` section as a total physical dose with fractions.

    Rules (refused rather than guessed): an EFFECTIVE RTDOSE; an RTPLAN whose fractions
    differ from the phase's or (single phase) the course's ``fractions``; an RTPLAN with
    several fraction groups and no stated number; a FRACTION dose whose number of fractions
    is stated nowhere; a BEAM dose without ``beams_summed: true``; several RTDOSE files of one
    phase on different grids.
    """
    phases = course.dicom.phase_list()
    out = []
    for index, phase in enumerate(phases):
        where = (
            f"courses[{course.id}].dicom"
            if not course.dicom.phases
            else f"courses[{course.id}].dicom.phases[{index}]"
        )
        plan = _phase_plan(course, phase, len(phases), base, where)
        total, dose_uids, notes = _phase_total(course, phase, plan, base, where)
        out.append(
            PhaseDose(
                dose=Dose.physical(
                    total.grid,
                    total.values,
                    fractions=plan.fractions,
                    provenance={**total.provenance, "fractions_source": plan.fractions_source},
                ),
                fractions=int(plan.fractions),
                fractions_source=plan.fractions_source,
                label=phase.label or Path(phase.rtdose[0]).name,
                plan_uid=plan.plan_uid or total.provenance.get("referenced_rtplan_uid"),
                frame_of_reference_uid=total.provenance.get("frame_of_reference_uid"),
                prescribed_dose_gy=plan.prescribed_dose_gy,
                notes=tuple(notes),
                dose_uids=dose_uids,
            )
        )
    if len(out) > 1 and sum(p.fractions for p in out) != course.fractions:
        counts = "+".join(str(p.fractions) for p in out)
        raise InputError(
            f"the phases have {counts} = {sum(p.fractions for p in out)} fractions but the "
            f"course says {course.fractions}; correct the phases or courses[{course.id}].fractions",
            field=f"courses[{course.id}].fractions",
        )
    return out


@dataclass(frozen=True)
class _PhasePlan:
    """What a phase's RTPLAN (or the case file) says: fractions and where they came from."""

    fractions: int | None
    fractions_source: str | None
    plan_uid: str | None = None
    prescribed_dose_gy: float | None = None


def _phase_plan(course: Course, phase, n_phases: int, base: Path | None, where: str) -> _PhasePlan:
    """The phase's fractions: the RTPLAN's (checked against the case file), else the
    phase's, else (single phase) the course's."""
    plan_uid, prescribed = None, None
    fractions, source = None, None
    if phase.rtplan:
        plan_path = _path(base, phase.rtplan)
        plan = read_rtplan(plan_path)
        plan_uid, prescribed = plan.sop_instance_uid, plan.prescribed_dose_gy
        stated = phase.fractions or (course.fractions if n_phases == 1 else None)
        stated_field = (
            f"{where}.fractions" if phase.fractions else f"courses[{course.id}].fractions"
        )
        if plan.fractions_planned is None and stated is None:
            raise InputError(
                "the plan has several fraction groups; state the phase's number of "
                "fractions under fractions",
                source=str(plan_path),
                field=f"{where}.fractions",
            )
        if plan.fractions_planned is not None and stated is not None:
            if plan.fractions_planned != stated:
                raise InputError(
                    f"the plan has {plan.fractions_planned} fractions planned but the case "
                    f"says {stated}; correct {stated_field} or the plan",
                    source=str(plan_path),
                    field=stated_field,
                )
        if plan.fractions_planned is not None:
            fractions, source = plan.fractions_planned, "RTPLAN"
    if fractions is None and phase.fractions is not None:
        fractions, source = phase.fractions, "phase"
    if fractions is None and n_phases == 1:
        fractions, source = course.fractions, "course"
    return _PhasePlan(fractions, source, plan_uid, prescribed)


def _phase_total(
    course: Course, phase, plan: _PhasePlan, base: Path | None, where: str
) -> tuple[Dose, tuple[str, ...], list[str]]:
    """The phase's RTDOSE files read, each made a total dose, summed on one grid; with the
    SOP Instance UIDs read and the notes of what was assumed."""
    fractions = plan.fractions
    notes: list[str] = []
    dose_uids: list[str] = []
    total, first_path = None, None
    for name in phase.rtdose:
        path = _path(base, name)
        dose = _read_phase_dose(path, phase, fractions, where)
        if dose.provenance.get("sop_instance_uid"):
            dose_uids.append(str(dose.provenance["sop_instance_uid"]))
        summation = str(dose.provenance.get("summation_type", "")).upper()
        try:
            dose = phase_total_dose(
                dose, summation, fractions=fractions, beams_summed=phase.beams_summed
            )
        except InputError as error:
            raise error.located(source=str(path)) from None
        if summation in ("FRACTION", "BEAM"):
            notes.append(
                f"course {course.id}: {path.name} holds the dose of one "
                f"{'fraction' if summation == 'FRACTION' else 'fraction (sum of all beams)'} "
                f"(DoseSummationType {summation}); multiplied by {fractions} fractions "
                f"(from the {plan.fractions_source})"
            )
        if total is None:
            total, first_path = dose, path
            continue
        if not _same_grid(dose.grid, total.grid):
            raise InputError(
                f"dose grid differs from {first_path.name}; give phases on different grids "
                "as separate phases (voxel-wise accumulation, reirrad accumulate)",
                source=str(path),
                field=f"{where}.rtdose",
            )
        total = Dose(
            grid=total.grid,
            values=total.values + dose.values,
            kind=DoseKind.PHYSICAL,
            fractions=fractions,
            quantity="physical",
            provenance={
                **total.provenance,
                "summed_with": [*total.provenance.get("summed_with", []), str(path)],
            },
        )
    if len(phase.rtdose) > 1:
        notes.append(f"course {course.id}: {len(phase.rtdose)} RTDOSE files summed on one grid")
    if fractions is None:
        raise InputError(
            "the number of fractions of this phase is stated nowhere; give its rtplan or fractions",
            field=f"{where}.fractions",
        )
    return total, tuple(dose_uids), notes


def _read_phase_dose(path: Path, phase, fractions: int | None, where: str) -> Dose:
    """One RTDOSE of a phase, refused when it cannot be a physical dose of the phase."""
    dose = read_rtdose(path)
    summation = str(dose.provenance.get("summation_type", "")).upper()
    if dose.kind is DoseKind.EFFECTIVE:
        raise InputError(
            "this RTDOSE is already an EFFECTIVE (EQD2/BED) dose; give the physical "
            "dose, converting twice would be wrong",
            source=str(path),
            field=f"{where}.rtdose",
        )
    if summation == "BEAM" and not phase.beams_summed:
        raise InputError(
            "DoseSummationType BEAM is the dose of one beam, not of the plan; export the "
            "plan dose (PLAN), or give the sum of all beams of one fraction and set "
            "beams_summed: true",
            source=str(path),
            field=f"{where}.rtdose",
        )
    if summation in ("FRACTION", "BEAM") and fractions is None:
        raise InputError(
            f"the dose is of one {summation.lower()} (DoseSummationType {summation}) and "
            "the number of fractions is stated nowhere; give the phase's rtplan or "
            "fractions (reirrad does not guess)",
            source=str(path),
            field=f"{where}.fractions",
        )
    return dose


def course_dose(course: Course, *, base: Path | None = None) -> tuple[Dose, list[str]]:
    """The course's total physical dose (Gy) from its RTDOSE file(s), and what was assumed.

    All phases must share one grid here (the structure-level path adds physical doses);
    phases on different grids need the voxel-wise accumulation.
    """
    phases = course_phases(course, base=base)
    notes = [note for phase in phases for note in phase.notes]
    total = phases[0].dose
    for phase in phases[1:]:
        if not _same_grid(phase.dose.grid, total.grid):
            raise InputError(
                f"phase {phase.label} is on another dose grid than {phases[0].label}; phases on "
                "different grids need the voxel-wise accumulation (reirrad accumulate)",
                field=f"courses[{course.id}].dicom.phases",
            )
        total = Dose.physical(
            total.grid,
            total.values + phase.dose.values,
            fractions=course.fractions,
            provenance={**total.provenance, "phases_summed": len(phases)},
        )
    if len(phases) > 1:
        notes.append(
            f"course {course.id}: {len(phases)} phases added as physical dose and converted with "
            f"the course's {course.fractions} fractions (structure level); the voxel-wise path "
            "converts each phase with its own fractions"
        )
    return total, notes


def read_course_structures(course: Course, base: Path | None) -> tuple[StructureSet, Path]:
    """The course's RTSTRUCT with the ROIs of its ``extra_rtstructs`` added.

    An extra file must be on the RTSTRUCT's frame of reference (the threshold ROI of
    ``reirrad pet --registration`` is written on the planning CT's), and an ROI name may occur
    once over all files, so which contour a structure means is never a guess.
    """
    where = f"courses[{course.id}].dicom.extra_rtstructs"
    path = _path(base, course.dicom.rtstruct)
    main = read_rtstruct(path)
    structures = dict(main.structures)
    warnings = list(main.warnings)
    for index, name in enumerate(course.dicom.extra_rtstructs):
        extra_path = _path(base, name)
        extra = read_rtstruct(extra_path)
        if extra.frame_of_reference_uid != main.frame_of_reference_uid:
            raise InputError(
                f"its ROIs are on frame of reference {extra.frame_of_reference_uid}, the "
                f"course's RTSTRUCT on {main.frame_of_reference_uid}; write them on the planning "
                "CT's frame (reirrad pet --registration REG.dcm)",
                source=str(extra_path), field=f"{where}[{index}]",
            )  # fmt: skip
        twice = sorted(set(structures) & set(extra.structures))
        if twice:
            raise InputError(
                f"ROI name(s) {', '.join(twice)} are also in another RTSTRUCT of the course; "
                "rename the ROI so each structure names one contour",
                source=str(extra_path), field=f"{where}[{index}]",
            )  # fmt: skip
        structures |= extra.structures
        warnings += [f"{extra_path.name}: {w}" for w in extra.warnings]
    if not course.dicom.extra_rtstructs:
        return main, path
    return replace(main, structures=structures, warnings=tuple(warnings)), path


def extra_rtstruct_notes(course: Course, base: Path | None) -> list[str]:
    """One assumption per extra RTSTRUCT: its file, ROIs and description, which for a file
    written by ``reirrad pet`` states the threshold rule and the region it was applied in."""
    import pydicom

    notes = []
    for name in course.dicom.extra_rtstructs if course.dicom is not None else ():
        ds = pydicom.dcmread(_path(base, name), stop_before_pixels=True)
        rois = ", ".join(str(r.ROIName) for r in ds.get("StructureSetROISequence", []))
        described = str(ds.get("StructureSetDescription", "")) or "no description"
        notes.append(f"course {course.id}: ROIs {rois} from {name} ({described})")
    return notes


def roi_name(course: Course, structure: str, available: list[str]) -> str:
    mapped = course.dicom.structure_map.get(structure)
    if mapped is not None:
        if mapped not in available:
            raise InputError(
                f"ROI {mapped!r} (mapped from {structure!r}) is not in the RTSTRUCT; "
                f"ROIs: {', '.join(available)}",
                field=f"courses[{course.id}].dicom.structure_map",
            )
        return mapped
    if structure in available:
        return structure
    folded = [name for name in available if name.lower() == structure.lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"structure {structure!r} is not in the RTSTRUCT; map it under structure_map "
        f"(ROIs: {', '.join(available)}) or type its doses under courses[{course.id}].doses",
        field=f"courses[{course.id}].dicom",
    )


def dicom_statistics(
    case: Case, *, base: Path | None = None
) -> tuple[dict[str, dict[str, dict[str, float]]], list[str]]:
    """Per course, per structure, per statistic physical doses: typed-in values plus DVHs.

    Returns the merged doses and the assumptions/notes to report.
    """
    doses: dict[str, dict[str, dict[str, float]]] = {}
    notes: list[str] = []
    for course in case.courses:
        merged = {name: dict(stats) for name, stats in course.doses.items()}
        doses[course.id] = merged
        if course.dicom is None:
            continue
        dose, dose_notes = course_dose(course, base=base)
        notes += dose_notes
        # The phases' first RTDOSE names the dose in messages (the shorthand ``rtdose`` is
        # empty when the course is given as ``phases``).
        dose_path = Path(str(dose.provenance.get("source", "")))
        structure_set, struct_path = read_course_structures(course, base)
        check_frame_of_reference(dose, structure_set)
        available = list(structure_set.structures)
        used = []
        for name in case.dicom_structures(course):
            try:
                roi = roi_name(course, name, available)
            except InputError as error:
                raise error.located(source=str(struct_path)) from None
            used.append(roi)
            merged[name] = _structure_statistics(
                course, name, roi, structure_set.structures[roi], dose, struct_path, notes
            )
        notes += _structure_set_notes(course, structure_set.warnings, used, dose_path)
    return doses, notes


def _structure_statistics(
    course: Course,
    name: str,
    roi: str,
    structure: Structure,
    dose: Dose,
    struct_path: Path,
    notes: list[str],
) -> dict[str, float]:
    """The course's statistics of one ROI from its DVH, refusing partial coverage unless
    the case allows it (the outside part then counts as 0 Gy)."""
    dose_path = Path(str(dose.provenance.get("source", "")))
    where = f"courses[{course.id}].dicom"
    if structure.is_empty:
        raise InputError(f"ROI {roi!r} has no contours", source=str(struct_path), field=name)
    if structure_outside_grid(structure, dose.grid):
        message = f"ROI {roi!r} lies entirely outside the dose grid"
        if not course.dicom.allow_partial_coverage:
            raise InputError(
                message + "; extend the dose grid, or set allow_partial_coverage: true to "
                "count it as 0 Gy",
                source=str(dose_path),
                field=where,
            )
        notes.append(f"course {course.id}: {message}; counted as 0 Gy")
        return {statistic: 0.0 for statistic in course.dicom.statistics}
    dvh = compute_dvh(dose, structure)
    if dvh.covered_fraction < FULL_COVERAGE:
        message = (
            f"the dose grid covers only {100 * dvh.covered_fraction:.1f} % of {roi!r} "
            f"({dvh.volume_cc:.2f} cc)"
        )
        if not course.dicom.allow_partial_coverage:
            raise InputError(
                message + "; extend the dose grid, or set allow_partial_coverage: true "
                "to count the outside part as 0 Gy",
                source=str(dose_path),
                field=where,
            )
        notes.append(f"course {course.id}: {message}; the outside part counted as 0 Gy")
    notes.append(
        f"course {course.id}: {name} statistics from the DVH of ROI {roi!r} "
        f"({dvh.volume_cc:.2f} cc) in {dose_path.name}"
    )
    return {statistic: _statistic(dvh, statistic) for statistic in course.dicom.statistics}


def _structure_set_notes(
    course: Course, warnings: tuple[str, ...], used: list[str], dose_path: Path
) -> list[str]:
    """The structure set's reading warnings that concern the ROIs used (or no ROI)."""
    relevant = [
        w for w in warnings if not w.startswith("ROI '") or any(f"ROI {r!r}" in w for r in used)
    ]
    return [f"course {course.id}: structure set: {w}" for w in relevant]


def structure_outside_grid(structure: Structure, grid: Grid) -> bool:
    """Whether the bounding box of a structure's vertices misses the grid entirely.

    Compared in index space (exact for oblique grids), voxels reaching half a voxel
    beyond their centres; a structure that merely touches the grid is not outside.
    """
    if structure.is_empty:
        return False
    points = np.concatenate(structure.contours, axis=0)
    index = grid.patient_to_index(points)  # (N, 3) as i, j, k
    low, high = index.min(axis=0), index.max(axis=0)
    size = np.array(grid.shape[::-1], dtype=float)  # (ni, nj, nk)
    return bool(np.any(high < -0.5) or np.any(low > size - 0.5))


def _statistic(dvh, statistic: str) -> float:
    """A statistic of the *whole* structure; any part outside the grid counts as 0 Gy."""
    metric = parse_metric(statistic)
    covered = dvh.covered_fraction
    if covered >= FULL_COVERAGE:
        return float(dvh.metric(metric))
    if metric.kind == "mean":
        return dvh.dmean * covered
    if metric.kind == "max":
        return dvh.dmax
    if metric.kind == "min":
        return 0.0
    volume = metric.value / 100.0 * dvh.volume_cc if metric.unit == "%" else metric.value
    return dvh.dose_at_volume(volume) if volume < dvh.covered_volume_cc else 0.0
