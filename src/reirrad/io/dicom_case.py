"""Structure statistics for a case's courses from their DICOM RT files.

A course's ``dicom`` section names its RTDOSE file(s), RTSTRUCT and optionally RTPLAN.  For
every case structure that the course does not give typed-in doses for, the structure's DVH is
computed with :func:`reirrad.core.dvh.compute_dvh` and the requested statistics are read off it.
Typed-in doses of a course always take precedence over DICOM for that structure.

Refusals (never guessed):

* RTDOSE of DoseSummationType BEAM: a beam dose is only part of a plan.
* RTDOSE of DoseSummationType FRACTION is multiplied by the course's number of fractions, which
  the case file states; this is said in the assumptions.
* several RTDOSE files must share one grid (phases of one course); on different grids use the
  voxel-wise accumulation (``reirrad accumulate``).
* an RTPLAN whose planned fractions differ from the course's ``fractions``.
* a structure partly outside the dose grid, unless ``allow_partial_coverage: true``.
* EFFECTIVE (already EQD2/BED) doses: converting twice is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reirrad.core.case import Case, Course
from reirrad.core.dvh import compute_dvh
from reirrad.core.geometry import Dose, DoseKind
from reirrad.core.metrics import parse_metric
from reirrad.errors import InputError
from reirrad.io.dicom import read_rtdose, read_rtplan, read_rtstruct

__all__ = ["course_dose", "dicom_statistics"]

#: Minimum covered fraction counted as "fully inside" (rounding of contour end caps).
FULL_COVERAGE = 0.999


def _path(base: Path | None, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() or base is None else base / path


def course_dose(course: Course, *, base: Path | None = None) -> tuple[Dose, list[str]]:
    """The course's total physical dose (Gy) from its RTDOSE file(s), and what was assumed."""
    field = f"courses[{course.id}].dicom.rtdose"
    notes: list[str] = []
    doses = []
    for name in course.dicom.rtdose:
        path = _path(base, name)
        dose = read_rtdose(path)
        summation = str(dose.provenance.get("summation_type", "")).upper()
        if dose.kind is DoseKind.EFFECTIVE:
            raise InputError(
                "this RTDOSE is already an EFFECTIVE (EQD2/BED) dose; give the physical dose, "
                "converting twice would be wrong",
                source=str(path),
                field=field,
            )
        if summation == "BEAM":
            raise InputError(
                "DoseSummationType BEAM is the dose of one beam, not of the plan; export the "
                "plan dose (PLAN) instead",
                source=str(path),
                field=field,
            )
        if summation == "FRACTION":
            dose = Dose(
                grid=dose.grid,
                values=dose.values * course.fractions,
                kind=dose.kind,
                fractions=course.fractions,
                provenance={**dose.provenance, "scaled_by_fractions": course.fractions},
            )
            notes.append(
                f"course {course.id}: {path.name} holds the dose of one fraction "
                f"(DoseSummationType FRACTION); multiplied by the case's {course.fractions} fractions"
            )
        doses.append((path, dose))
    first_path, total = doses[0]
    for path, dose in doses[1:]:
        same = dose.grid.shape == total.grid.shape and np.allclose(
            dose.grid.affine, total.grid.affine, atol=1e-3
        )
        if not same:
            raise InputError(
                f"dose grid differs from {first_path.name}; phases on different grids need the "
                "voxel-wise accumulation (reirrad accumulate)",
                source=str(path),
                field=field,
            )
        total = Dose(
            grid=total.grid,
            values=total.values + dose.values,
            kind=DoseKind.PHYSICAL,
            fractions=course.fractions,
            provenance={**total.provenance, "summed_with": [str(p) for p, _ in doses[1:]]},
        )
    if len(doses) > 1:
        notes.append(f"course {course.id}: {len(doses)} RTDOSE files summed on one grid")
    if course.dicom.rtplan:
        plan_path = _path(base, course.dicom.rtplan)
        plan = read_rtplan(plan_path)
        if plan.fractions_planned is not None and plan.fractions_planned != course.fractions:
            raise InputError(
                f"the plan has {plan.fractions_planned} fractions planned but the case says "
                f"{course.fractions}; correct courses[{course.id}].fractions or the plan",
                source=str(plan_path),
                field=f"courses[{course.id}].fractions",
            )
    return total, notes


def _roi_name(course: Course, structure: str, available: list[str]) -> str:
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
        struct_path = _path(base, course.dicom.rtstruct)
        structure_set = read_rtstruct(struct_path)
        available = list(structure_set.structures)
        for name in case.dicom_structures(course):
            try:
                roi = _roi_name(course, name, available)
            except InputError as error:
                raise error.located(source=str(struct_path)) from None
            structure = structure_set.structures[roi]
            if structure.is_empty:
                raise InputError(
                    f"ROI {roi!r} has no contours", source=str(struct_path), field=name
                )
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
                        source=str(course.dicom.rtdose[0]),
                        field=f"courses[{course.id}].dicom",
                    )
                notes.append(f"course {course.id}: {message}; the outside part counted as 0 Gy")
            merged[name] = {
                statistic: _statistic(dvh, statistic) for statistic in course.dicom.statistics
            }
            notes.append(
                f"course {course.id}: {name} statistics from the DVH of ROI {roi!r} "
                f"({dvh.volume_cc:.2f} cc) in {Path(course.dicom.rtdose[0]).name}"
            )
    return doses, notes


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
