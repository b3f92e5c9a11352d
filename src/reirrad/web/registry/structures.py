"""Which ROI of a course's RTSTRUCT is which case structure: the mapping kept, and
suggestions from the names (shown to the user, never applied without them)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from reirrad.web.registry.models import Course, StructureMapping

#: Lowest similarity (difflib ratio of the normalised names) worth suggesting.
SUGGESTION_CUTOFF = 0.6


@dataclass(frozen=True)
class MappingRow:
    structure: str
    role: str
    roi: str | None
    how: str  # "mapped", "same name", "" (not found)
    suggestions: tuple[str, ...]


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def rtstruct_roi_names(course: Course) -> list[str]:
    """ROI names of the course's RTSTRUCT file(s) in the store."""
    import pydicom

    names: list[str] = []
    for item in course.files.select_related("stored").filter(stored__modality="RTSTRUCT"):
        ds = pydicom.dcmread(item.stored.path, stop_before_pixels=True)
        names += [str(roi.ROIName) for roi in ds.get("StructureSetROISequence", [])]
    return sorted(set(names))


def mapping_rows(course: Course) -> list[MappingRow]:
    """Every case structure of the patient with the ROI it maps to in this course."""
    rois = rtstruct_roi_names(course)
    by_normal = {_normal(r): r for r in rois}
    mapped = {m.structure_id: m.roi_name for m in StructureMapping.objects.filter(course=course)}
    typed_in = set(course.dose_statistics.values_list("structure_id", flat=True))
    rows = []
    for structure in course.patient.structures.order_by("position"):
        if structure.pk in typed_in:
            continue  # its dose in this course is typed in, not read from DICOM
        if structure.pk in mapped:
            roi, how = mapped[structure.pk], "mapped"
        elif structure.name in rois:
            roi, how = structure.name, "same name"
        else:
            roi, how = None, ""
        suggestions: tuple[str, ...] = ()
        if roi is None:
            exact = by_normal.get(_normal(structure.name))
            close = difflib.get_close_matches(
                _normal(structure.name), list(by_normal), n=3, cutoff=SUGGESTION_CUTOFF
            )
            suggestions = tuple(
                dict.fromkeys([*([exact] if exact else []), *(by_normal[c] for c in close)])
            )
        rows.append(MappingRow(structure.name, structure.role, roi, how, suggestions))
    return rows
