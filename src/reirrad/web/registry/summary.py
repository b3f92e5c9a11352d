"""A course from a summary document: the numbers typed in from another hospital's treatment
summary (dates, fractions, prescriptions, dose statistics, as the case file allows), with the
document itself kept in the store.

The new course is validated by the library together with the patient's other courses (the
case model's rules: dates in order and not overlapping, plausibility limits, the metric
grammar, ordered statistics), so a refusal names the field and says what to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.db import transaction

from reirrad.errors import InputError
from reirrad.io.casefile import parse_case
from reirrad.web.registry import audit
from reirrad.web.registry.casefile import case_data
from reirrad.web.registry.models import (
    Course,
    DoseStatistic,
    Patient,
    Prescription,
    StoredObject,
)

#: Largest source document accepted (bytes): a scanned multi-page summary fits easily.
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
#: Document types accepted, recognised by their first bytes (not by the name the browser sends).
DOCUMENT_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


@dataclass(frozen=True)
class SummaryCourse:
    """What the form gives (already typed: dates, numbers)."""

    course_id: str
    start: dt.date
    end: dt.date
    fractions: int
    label: str = ""
    institution: str = ""
    technique: str = ""
    systemic_therapy: str = ""
    status: str = Course.Status.DELIVERED
    data_quality: str = Course.Quality.UNVERIFIED
    data_quality_note: str = ""
    #: ``(target, dose Gy, fractions, primary)``
    prescriptions: Sequence[tuple[str, float, int, bool]] = ()
    #: ``(structure, statistic, dose Gy)``
    statistics: Sequence[tuple[str, str, float]] = ()


def parse_statistics(text: str) -> list[tuple[str, str, float]]:
    """Lines ``structure | statistic | Gy`` (e.g. ``Right parotid gland | Dmean | 29.9``)."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise InputError(
                f"line {number}: write 'structure | statistic | dose in Gy', e.g. "
                "'Right parotid gland | Dmean | 29.9'",
                field="statistics",
            )
        try:
            value = float(parts[2])
        except ValueError:
            raise InputError(
                f"line {number}: {parts[2]!r} is not a number (dose in Gy)", field="statistics"
            ) from None
        rows.append((parts[0], parts[1], value))
    return rows


def document_type(head: bytes) -> str:
    """The media type of a source document from its first bytes; refuses other files."""
    for magic, media in DOCUMENT_MAGIC:
        if head.startswith(magic):
            return media
    raise InputError("the summary document must be a PDF, PNG, JPEG or TIFF file", field="document")


def _course_spec(entry: SummaryCourse) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": entry.course_id,
        "start": entry.start,
        "end": entry.end,
        "fractions": entry.fractions,
    }
    for key in ("label", "technique", "systemic_therapy"):
        if getattr(entry, key):
            spec[key] = getattr(entry, key)
    if entry.prescriptions:
        spec["prescriptions"] = [
            {"target": t, "dose_gy": d, "fractions": n} | ({"primary": True} if p else {})
            for t, d, n, p in entry.prescriptions
        ]
    doses: dict[str, dict[str, float]] = {}
    for structure, metric, value in entry.statistics:
        if metric in doses.get(structure, {}):
            raise InputError(f"{structure} {metric} is given twice", field="statistics")
        doses.setdefault(structure, {})[metric] = value
    if doses:
        spec["doses"] = doses
    return spec


def validate(patient: Patient, entry: SummaryCourse) -> None:
    """Check the new course with the patient's case as the library checks a case file."""
    if patient.courses.filter(course_id=entry.course_id).exists():
        raise InputError(f"the patient already has a course {entry.course_id!r}", field="course_id")
    declared = set(patient.structures.values_list("name", flat=True))
    unknown = sorted({s for s, _, _ in entry.statistics} - declared)
    if unknown:
        raise InputError(
            f"unknown structure(s) {unknown}; the patient's structures are {sorted(declared)}",
            field="statistics",
        )
    data = case_data(patient)
    data["courses"] = sorted([*data["courses"], _course_spec(entry)], key=lambda c: c["start"])
    parse_case(data, source=f"new course {entry.course_id}")


@transaction.atomic
def add_summary_course(
    patient: Patient,
    entry: SummaryCourse,
    *,
    document: IO[bytes] | None = None,
    document_name: str = "",
    user: Any = None,
    request: Any = None,
) -> Course:
    """Validate and save a course from a summary document (and store the document)."""
    validate(patient, entry)
    stored = None
    if document is not None:
        head = document.read(16)
        media = document_type(head)
        document.seek(0)
        stored = StoredObject.from_chunks(
            iter(lambda: document.read(1 << 20), b""),
            kind=StoredObject.Kind.DOCUMENT,
            media_type=media,
            original_name=document_name[:255],
            created_by=user,
        )
    course = Course.objects.create(
        patient=patient,
        position=patient.courses.count(),
        course_id=entry.course_id,
        label=entry.label,
        institution=entry.institution,
        start=entry.start,
        end=entry.end,
        fractions=entry.fractions,
        technique=entry.technique,
        systemic_therapy=entry.systemic_therapy,
        status=entry.status,
        source=Course.Source.SUMMARY,
        source_document=stored,
        data_quality=entry.data_quality,
        data_quality_note=entry.data_quality_note,
    )
    Prescription.objects.bulk_create(
        Prescription(course=course, position=i, target=t, dose_gy=d, fractions=n, primary=p)
        for i, (t, d, n, p) in enumerate(entry.prescriptions)
    )
    structures = {s.name: s for s in patient.structures.all()}
    DoseStatistic.objects.bulk_create(
        DoseStatistic(course=course, structure=structures[s], position=i, metric=m, value_gy=v)
        for i, (s, m, v) in enumerate(entry.statistics)
    )
    audit.record(
        "create", request=request, user=user, obj=course, source="summary document",
        document_sha256=stored.sha256 if stored else None,
    )  # fmt: skip
    return course
