"""Uploads of DICOM files or a zip: each file validated, stored, grouped; refusals one line
each.

A zip member is refused when its name is absolute or climbs out of the archive (``..``: a
"zip slip"), when it is larger than :data:`MAX_FILE_BYTES` or compressed more than
:data:`MAX_COMPRESSION_RATIO` times (a "zip bomb"), and the whole upload stops at
:data:`MAX_TOTAL_BYTES` or :data:`MAX_FILES`. Sizes are counted while reading, not taken from
the archive's directory, which can lie. A file must be DICOM (a Part 10 file) of a modality
the assessments use. Nothing is unpacked onto disk under the uploaded names: each file goes
to a temporary file in the store, then into the content-addressed store.
"""

from __future__ import annotations

import posixpath
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import transaction

from reirrad.errors import InputError
from reirrad.web.registry import audit, store
from reirrad.web.registry.casefile import dicom_identity
from reirrad.web.registry.models import (
    Course,
    CourseFile,
    Patient,
    Prescription,
    StoredObject,
    Upload,
    UploadItem,
)

#: Largest single file (bytes): a CT slice is ~0.5 MB, a fine RTDOSE a few hundred MB.
MAX_FILE_BYTES = 1 << 30
#: Largest upload in total (bytes, uncompressed).
MAX_TOTAL_BYTES = 4 << 30
#: Most files in one upload (a CT series has a few hundred slices).
MAX_FILES = 10_000
#: Highest compression ratio of a zip member; DICOM compresses ~2-10x, a zip bomb 1000x.
MAX_COMPRESSION_RATIO = 200
#: Modalities a course can use (images, structure set, plan, dose, registration).
MODALITIES = ("CT", "MR", "PT", "RTSTRUCT", "RTPLAN", "RTDOSE", "REG")
_CHUNK = 1 << 20


class _TooLarge(Exception):
    pass


@dataclass
class IngestResult:
    stored: list[tuple[str, StoredObject]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, name: str, reason: str) -> None:
        self.refused.append({"name": name, "reason": reason})


def _safe_member(name: str) -> str | None:
    """The member's normalised name, or ``None`` when it would leave the archive."""
    text = name.replace("\\", "/")
    normal = posixpath.normpath(text)
    if text.startswith("/") or normal.startswith("../") or normal == ".." or ":" in normal:
        return None
    return normal


def _copy_limited(chunks: Iterable[bytes], handle: IO[bytes], limit: int) -> int:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        handle.write(chunk)
    handle.flush()
    return size


def _read(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _members(upload: Any, name: str, result: IngestResult) -> Iterator[tuple[str, IO[bytes], int]]:
    """``(name, stream, compressed size)`` of a zip's files, refusing unsafe members."""
    try:
        archive = zipfile.ZipFile(upload)
    except zipfile.BadZipFile:
        result.refuse(name, "not a readable zip file")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = f"{name}/{info.filename}"
            safe = _safe_member(info.filename)
            if safe is None:
                result.refuse(member, "its path leaves the archive (absolute or '..'); refused")
                continue
            if info.flag_bits & 0x1:
                result.refuse(member, "encrypted; upload it unencrypted")
                continue
            if info.file_size > MAX_FILE_BYTES:
                result.refuse(member, f"larger than {MAX_FILE_BYTES >> 20} MiB")
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > MAX_COMPRESSION_RATIO:
                result.refuse(member, f"compressed {ratio:.0f} times; refused as a zip bomb")
                continue
            with archive.open(info) as stream:
                yield f"{name}/{safe}", stream, info.compress_size


def _files(
    uploads: Iterable[tuple[str, IO[bytes]]], result: IngestResult
) -> Iterator[tuple[str, IO[bytes], int]]:
    for name, handle in uploads:
        head = handle.read(4)
        handle.seek(0)
        if head == b"PK\x03\x04":
            yield from _members(handle, name, result)
        else:
            yield name, handle, 0


def register_dicom_file(
    path: str | Path,
    name: str,
    *,
    user: Any = None,
    modalities: tuple[str, ...] = MODALITIES,
    link: bool = False,
) -> StoredObject:
    """Store one DICOM file in the content-addressed store and return its row.

    The one way a DICOM object enters the registry (uploads and the DICOM node): the
    header is read, the modality checked, the bytes stored under their hash, the row made
    once (a second registration of the same bytes returns the first row). ``link``: the
    file is never rewritten (the DICOM node's spool) and is hard-linked into the store.

    Raises
    ------
    InputError
        Not DICOM, no SOP Instance UID, or a modality not in ``modalities``.
    """
    identity = dicom_identity(Path(path))
    if not identity or not identity.get("sop_instance_uid"):
        raise InputError("not a DICOM file (no DICOM header with a SOP Instance UID)", source=name)
    if identity["modality"] not in modalities:
        raise InputError(
            f"modality {identity['modality'] or 'missing'} is not used by "
            f"assessments ({', '.join(modalities)})", source=name,
        )  # fmt: skip
    make = StoredObject.from_linked_path if link else StoredObject.from_path
    return make(
        path, kind=StoredObject.Kind.DICOM, media_type="application/dicom",
        created_by=user, **(identity | {"original_name": Path(name).name[:255]}),
    )  # fmt: skip


def ingest(
    patient: Patient,
    uploads: Iterable[tuple[str, IO[bytes]]],
    *,
    user: Any = None,
    request: Any = None,
) -> Upload:
    """Validate and store uploaded files (and zip members) as DICOM objects of an upload."""
    result = IngestResult()
    total = 0
    tmp_dir = store.store_root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for count, (name, stream, compressed) in enumerate(_files(uploads, result), start=1):
        if count > MAX_FILES:
            result.refuse(
                name, f"more than {MAX_FILES} files in one upload; upload the rest separately"
            )
            break
        with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="ingest-") as temp:
            limit = min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - total)
            if compressed:
                limit = min(limit, compressed * MAX_COMPRESSION_RATIO)
            try:
                size = _copy_limited(_read(stream), temp, limit)
            except _TooLarge:
                result.refuse(name, "too large (file, upload total or compression limit)")
                if total + limit >= MAX_TOTAL_BYTES:
                    break
                continue
            total += size
            try:
                stored = register_dicom_file(temp.name, name, user=user)
            except InputError as error:
                result.refuse(name, error.problem)
                continue
            result.stored.append((name, stored))
    with transaction.atomic():
        upload = Upload.objects.create(patient=patient, created_by=user, refused=result.refused)
        UploadItem.objects.bulk_create(
            UploadItem(upload=upload, stored=stored, name=name[:500])
            for name, stored in result.stored
        )
        audit.record(
            "create", request=request, user=user, obj=upload, patient=patient,
            stored=len(result.stored), refused=len(result.refused),
        )  # fmt: skip
    return upload


@dataclass(frozen=True)
class Series:
    study_uid: str
    series_uid: str
    modality: str
    description: str
    frame_of_reference_uid: str
    items: tuple[UploadItem, ...]


def grouped(upload: Upload) -> dict[str, list[Series]]:
    """The upload's objects by study, then series (modality, description, frame)."""
    series: dict[tuple[str, str, str], list[UploadItem]] = {}
    for item in upload.items.select_related("stored"):
        s = item.stored
        series.setdefault((s.study_instance_uid, s.series_instance_uid, s.modality), []).append(
            item
        )
    studies: dict[str, list[Series]] = {}
    for (study, uid, modality), items in sorted(series.items()):
        first = items[0].stored
        studies.setdefault(study, []).append(
            Series(study, uid, modality, first.series_description,
                   first.frame_of_reference_uid, tuple(items))
        )  # fmt: skip
    return studies


@dataclass(frozen=True)
class DicomSelection:
    """Which uploaded objects make the course (stored-object ids)."""

    rtstruct: int
    rtdose: tuple[int, ...]
    rtplan: int | None = None
    ct: tuple[int, ...] = ()
    registration: int | None = None


def _path_component(course_id: str, index: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", course_id).strip("._")
    return safe or f"course{index}"


def create_dicom_course(
    patient: Patient,
    upload: Upload,
    entry: Any,
    selection: DicomSelection,
    *,
    user: Any = None,
    request: Any = None,
) -> Course:
    """A course whose doses come from uploaded DICOM objects (checked as a case file is).

    ``entry`` is a :class:`~reirrad.web.registry.summary.SummaryCourse` (its statistics
    unused). The files are filed under ``<course>/RS.dcm``, ``RD_<n>.dcm``, ``RP.dcm``,
    ``CT/<n>.dcm`` and ``REG.dcm``; with a REG object the course is mapped through it,
    otherwise it must share the reference course's frame of reference (checked at the run).
    """
    from reirrad.io.casefile import parse_case
    from reirrad.web.registry.casefile import case_data

    objects = {item.stored_id: item.stored for item in upload.items.select_related("stored")}
    wanted = [selection.rtstruct, *selection.rtdose, *selection.ct]
    wanted += [x for x in (selection.rtplan, selection.registration) if x is not None]
    missing = [x for x in wanted if x not in objects]
    if missing:
        raise InputError("a chosen object is not in this upload", field="objects")
    expected = [(selection.rtstruct, "RTSTRUCT"), (selection.rtplan, "RTPLAN")]
    expected += [(selection.registration, "REG")]
    expected += [(x, "RTDOSE") for x in selection.rtdose] + [(x, "CT") for x in selection.ct]
    for pk, modality in expected:
        if pk is not None and objects[pk].modality != modality:
            raise InputError(
                f"{objects[pk].original_name} is {objects[pk].modality}, not {modality}",
                field=modality.lower(),
            )
    if not selection.rtdose:
        raise InputError("choose at least one RTDOSE", field="rtdose")
    if patient.courses.filter(course_id=entry.course_id).exists():
        raise InputError(f"the patient already has a course {entry.course_id!r}", field="course_id")
    folder = _path_component(entry.course_id, patient.courses.count() + 1)
    files = {f"{folder}/RS.dcm": selection.rtstruct}
    files |= {f"{folder}/RD_{n}.dcm": pk for n, pk in enumerate(selection.rtdose, start=1)}
    dicom: dict[str, Any] = {
        "rtdose": [p for p in files if "/RD_" in p],
        "rtstruct": f"{folder}/RS.dcm",
    }
    if selection.rtplan is not None:
        files[f"{folder}/RP.dcm"] = selection.rtplan
        dicom["rtplan"] = f"{folder}/RP.dcm"
    if selection.ct:
        files |= {f"{folder}/CT/{n:04d}.dcm": pk for n, pk in enumerate(selection.ct, start=1)}
        dicom["ct"] = f"{folder}/CT"
    if selection.registration is not None:
        files[f"{folder}/REG.dcm"] = selection.registration
        dicom["registration"] = {"method": "reg", "file": f"{folder}/REG.dcm"}
    spec = {"id": entry.course_id, "start": entry.start, "end": entry.end,
            "fractions": entry.fractions, "dicom": dicom}  # fmt: skip
    for key in ("label", "technique", "systemic_therapy"):
        if getattr(entry, key):
            spec[key] = getattr(entry, key)
    if entry.prescriptions:
        spec["prescriptions"] = [
            {"target": t, "dose_gy": d, "fractions": n} | ({"primary": True} if p else {})
            for t, d, n, p in entry.prescriptions
        ]
    data = case_data(patient)
    data["courses"] = sorted([*data["courses"], spec], key=lambda c: c["start"])
    taken = set(CourseFile.objects.filter(course__patient=patient).values_list("path", flat=True))
    if taken & set(files):
        raise InputError(f"the file names {sorted(taken & set(files))[:3]} are taken; "
                         "choose another course id", field="course_id")  # fmt: skip
    parse_case(data, source=f"new course {entry.course_id}")
    with transaction.atomic():
        course = Course.objects.create(
            patient=patient, position=patient.courses.count(), course_id=entry.course_id,
            label=entry.label, institution=entry.institution, start=entry.start,
            end=entry.end, fractions=entry.fractions, technique=entry.technique,
            systemic_therapy=entry.systemic_therapy, status=entry.status,
            source=Course.Source.DICOM, data_quality=entry.data_quality,
            data_quality_note=entry.data_quality_note, dicom=dicom,
        )  # fmt: skip
        Prescription.objects.bulk_create(
            Prescription(course=course, position=i, target=t, dose_gy=d, fractions=n, primary=p)
            for i, (t, d, n, p) in enumerate(entry.prescriptions)
        )
        CourseFile.objects.bulk_create(
            CourseFile(course=course, path=path, stored=objects[pk]) for path, pk in files.items()
        )
        audit.record("create", request=request, user=user, obj=course, source="dicom",
                     upload=upload.pk, files=len(files))  # fmt: skip
    return course


#: Largest case file upload (bytes): a YAML case, or a zip of the case and its DICOM files.
MAX_CASE_UPLOAD_BYTES = MAX_TOTAL_BYTES


def unpack_case(name: str, handle: IO[bytes], folder: Path) -> Path:
    """Write an uploaded case (a YAML file, or a zip with ``case.yaml`` or one ``.yaml`` at its
    top and the files it names) into ``folder``; return the case file's path.

    Zip members are checked as in :func:`ingest` (no path out of the archive, size and
    compression limits counted while reading); a refused member refuses the whole case.
    """
    head = handle.read(4)
    handle.seek(0)
    if head != b"PK\x03\x04":
        target = folder / "case.yaml"
        with open(target, "wb") as out:
            try:
                _copy_limited(_read(handle), out, 1 << 20)
            except _TooLarge:
                raise InputError("larger than 1 MiB; not a YAML case file", source=name) from None
        return target
    result = IngestResult()
    total = 0
    for member, stream, compressed in _members(handle, name, result):
        relative = member.split("/", 1)[1]
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        limit = min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - total, compressed * MAX_COMPRESSION_RATIO)
        with open(target, "wb") as out:
            try:
                total += _copy_limited(_read(stream), out, limit)
            except _TooLarge:
                result.refuse(member, "too large (file, upload total or compression limit)")
    if result.refused:
        first = result.refused[0]
        raise InputError(
            f"{first['name']}: {first['reason']}"
            + (f" (and {len(result.refused) - 1} more)" if len(result.refused) > 1 else ""),
            source=name,
        )
    if (folder / "case.yaml").is_file():
        return folder / "case.yaml"
    found = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if len(found) != 1:
        raise InputError(
            "the zip needs case.yaml (or exactly one .yaml file) at its top level", source=name
        )
    return found[0]
