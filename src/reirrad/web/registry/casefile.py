"""The case YAML as the registry's import and export format.

:func:`import_case` reads a case file (validated by :func:`reirrad.io.casefile.load_case`)
into a :class:`Patient` with its structures, courses, prescriptions, typed-in dose
statistics, structure mappings and DICOM files (into the content-addressed store, under the
relative paths the case file uses). :func:`case_data` builds the case mapping back from the
registry and :func:`export_case` writes it with the files, so that ``load_case`` of the
export gives a case equal to the imported one.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from reirrad.core.case import Case, DicomSource
from reirrad.errors import InputError
from reirrad.io.casefile import load_case, parse_case
from reirrad.web.registry import audit, store
from reirrad.web.registry.models import (
    Course,
    CourseFile,
    Department,
    DoseStatistic,
    Patient,
    Prescription,
    ResponseObservation,
    StoredObject,
    Structure,
    StructureMapping,
    ToxicityObservation,
)

#: Case sections the registry holds in its own columns and tables; every other case-level
#: section (tissue_defaults, analysis, constraints, exploration, and any the case format
#: gains) is kept as written on the patient, so that an export gives the same case.
MODELLED_SECTIONS = (
    "reirrad_case", "patient", "diagnosis", "recurrence", "structures", "courses", "follow_up",
)  # fmt: skip


def _dump(model: Any) -> Any:
    """A pydantic model as JSON-compatible data, with what its file set (defaults it left
    out stay out: an explicit default is kept, an implicit one is not invented)."""
    if model is None:
        return None
    return model.model_dump(mode="json", exclude_unset=True)


def safe_relative(written: str, *, source: str, field: str) -> str:
    """A path of the case file as a normalised relative path inside the case's folder.

    The registry keeps files under the names the case file gives them and writes them back
    there on export, so a name must not leave the folder.
    """
    text = written.replace("\\", "/")
    normal = posixpath.normpath(text)
    if text.startswith("/") or normal == ".." or normal.startswith("../") or ":" in normal:
        raise InputError(
            f"{written!r} is outside the case file's folder; the registry imports files "
            "inside it only (copy them next to the case file and use relative paths)",
            source=source,
            field=field,
        )
    return normal


def _dicom_paths(course: Any) -> list[tuple[str, str]]:
    """``(field, path)`` of every file or folder a course's ``dicom`` section names."""
    dicom: DicomSource = course.dicom
    where = f"courses[{course.id}].dicom"
    paths = [(f"{where}.rtstruct", dicom.rtstruct)]
    paths += [(f"{where}.extra_rtstructs", p) for p in dicom.extra_rtstructs]
    paths += [(f"{where}.rtdose", p) for p in dicom.rtdose]
    if dicom.rtplan:
        paths.append((f"{where}.rtplan", dicom.rtplan))
    for index, phase in enumerate(dicom.phases):
        paths += [(f"{where}.phases[{index}].rtdose", p) for p in phase.rtdose]
        if phase.rtplan:
            paths.append((f"{where}.phases[{index}].rtplan", phase.rtplan))
    if isinstance(dicom.ct, str):
        paths.append((f"{where}.ct", dicom.ct))
    elif dicom.ct:
        paths += [(f"{where}.ct", p) for p in dicom.ct]
    if dicom.registration is not None and dicom.registration.file:
        paths.append((f"{where}.registration.file", dicom.registration.file))
    return paths


def _files_of(base: Path, written: str, *, source: str, field: str) -> list[tuple[str, Path]]:
    """The regular files a written path stands for (a folder: the files directly in it)."""
    relative = safe_relative(written, source=source, field=field)
    full = base / relative
    if full.is_dir():
        files = sorted(p for p in full.iterdir() if p.is_file())
        if not files:
            raise InputError("the folder is empty", source=str(full), field=field)
        return [(f"{relative}/{p.name}", p) for p in files]
    if not full.is_file():
        raise InputError("file not found", source=str(full), field=field)
    return [(relative, full)]


def dicom_identity(path: Path) -> dict[str, str]:
    """UIDs, modality and frame of reference of a DICOM file (empty when it is not DICOM)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return {}
    frame = str(ds.get("FrameOfReferenceUID", ""))
    if not frame and "ReferencedFrameOfReferenceSequence" in ds:
        items = ds.ReferencedFrameOfReferenceSequence
        frame = str(items[0].get("FrameOfReferenceUID", "")) if len(items) else ""
    return {
        "modality": str(ds.get("Modality", ""))[:16],
        "sop_class_uid": str(ds.get("SOPClassUID", "")),
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "frame_of_reference_uid": frame,
        "series_description": str(ds.get("SeriesDescription", ""))[:200],
    }


def store_dicom_file(path: Path, user: Any = None) -> StoredObject:
    """Store a file of a course; a DICOM file's identity goes into its row."""
    identity = dicom_identity(path)
    kind = StoredObject.Kind.DICOM if identity else StoredObject.Kind.DOCUMENT
    media = "application/dicom" if identity else "application/octet-stream"
    return StoredObject.from_path(path, kind=kind, media_type=media, created_by=user, **identity)


@transaction.atomic
def import_case(
    path: str | Path,
    department: Department,
    *,
    user: Any = None,
    request: Any = None,
    status: str = Course.Status.DELIVERED,
    data_quality: str = Course.Quality.UNVERIFIED,
) -> Patient:
    """Import a case file as a new patient of ``department`` (its DICOM files stored)."""
    path = Path(path)
    case = load_case(path)
    source = str(path)
    base = path.resolve().parent
    if Patient.objects.filter(department=department, identifier=case.patient.id).exists():
        raise InputError(
            f"patient {case.patient.id!r} is already in {department}; import a case of a "
            "new patient, or add its courses on the patient's page",
            source=source,
            field="patient.id",
        )
    # every path is checked before anything is stored
    files_by_course = {
        course.id: [
            item
            for field, written in _dicom_paths(course)
            for item in _files_of(base, written, source=source, field=field)
        ]
        for course in case.courses
        if course.dicom is not None
    }
    dumped = _dump(case)
    patient = Patient.objects.create(
        department=department,
        identifier=case.patient.id,
        sex=case.patient.sex,
        birth_date=case.patient.birth_date,
        age_at_diagnosis=case.patient.age_at_diagnosis,
        diagnosis=dumped.get("diagnosis"),
        recurrence=dumped.get("recurrence"),
        case_options={k: v for k, v in dumped.items() if k not in MODELLED_SECTIONS},
        created_by=user,
    )
    structures = {}
    for position, spec in enumerate(case.structures):
        structures[spec.name] = Structure.objects.create(
            patient=patient,
            position=position,
            name=spec.name,
            role=spec.role,
            organ=spec.organ or "",
            alpha_beta=spec.alpha_beta,
            recovery=spec.recovery,
            note=spec.note or "",
        )
    for position, spec in enumerate(case.courses):
        _import_course(
            patient, spec, position, structures, files_by_course.get(spec.id, []),
            user=user, status=status, data_quality=data_quality,
        )  # fmt: skip
    if case.follow_up is not None:
        import_follow_up(patient, _dump(case.follow_up), structures)
    case_object = StoredObject.from_path(
        path, kind=StoredObject.Kind.CASE, media_type="application/yaml", created_by=user
    )
    audit.record(
        "import", request=request, user=user, obj=patient,
        case_file=path.name, case_sha256=case_object.sha256,
    )  # fmt: skip
    return patient


def _import_course(
    patient: Patient,
    spec: Any,
    position: int,
    structures: dict[str, Structure],
    files: Sequence[tuple[str, Path]],
    *,
    user: Any,
    status: str,
    data_quality: str,
) -> Course:
    dicom = None
    if spec.dicom is not None:
        dicom = _dump(spec.dicom)
        dicom.pop("structure_map", None)
    course = Course.objects.create(
        patient=patient,
        position=position,
        course_id=spec.id,
        label=spec.label or "",
        start=spec.start,
        end=spec.end,
        fractions=spec.fractions,
        technique=spec.technique or "",
        systemic_therapy=spec.systemic_therapy or "",
        status=status,
        source=Course.Source.DICOM if spec.dicom is not None else Course.Source.SUMMARY,
        data_quality=data_quality,
        dicom=dicom,
    )
    Prescription.objects.bulk_create(
        Prescription(
            course=course,
            position=i,
            target=rx.target,
            dose_gy=rx.dose_gy,
            fractions=rx.fractions,
            primary=rx.primary,
        )  # fmt: skip
        for i, rx in enumerate(spec.prescriptions)
    )
    statistics = [
        (name, metric, value)
        for name, stats in spec.doses.items()
        for metric, value in stats.items()
    ]
    DoseStatistic.objects.bulk_create(
        DoseStatistic(
            course=course, structure=structures[name], position=i, metric=metric, value_gy=value
        )
        for i, (name, metric, value) in enumerate(statistics)
    )
    if spec.dicom is not None:
        StructureMapping.objects.bulk_create(
            StructureMapping(course=course, structure=structures[name], roi_name=roi)
            for name, roi in spec.dicom.structure_map.items()
        )
    for relative, full in files:
        CourseFile.objects.get_or_create(
            course=course, path=relative, defaults={"stored": store_dicom_file(full, user)}
        )
    return course


def response_row(patient: Patient, item: dict[str, Any], position: int = 0) -> ResponseObservation:
    """An unsaved response row from a validated ``follow_up.response`` item (JSON data)."""
    return ResponseObservation(
        patient=patient,
        position=position,
        date=item["date"],
        modality=item["modality"],
        site=item.get("site", "local"),
        size_mm=item.get("size_mm"),
        suv_max=item.get("suv_max"),
        recist=item.get("recist") or "",
        percist=item.get("percist") or "",
        reported=item.get("reported") or "",
        note=item.get("note") or "",
    )


def toxicity_row(
    patient: Patient, item: dict[str, Any], structures: dict[str, Structure], position: int = 0
) -> ToxicityObservation:
    """An unsaved toxicity row from a validated ``follow_up.toxicity`` item (JSON data)."""
    return ToxicityObservation(
        patient=patient,
        position=position,
        date=item["date"],
        term=item["term"],
        grade=item.get("grade"),
        structure=structures[item["structure"]] if item.get("structure") else None,
        attribution=item.get("attribution") or "",
        onset=item.get("onset") or "",
        note=item.get("note") or "",
    )


def import_follow_up(
    patient: Patient, follow_up: dict[str, Any], structures: dict[str, Structure]
) -> None:
    """Rows of a validated ``follow_up`` section (``load_case`` checked its structures and
    dates), in the order written."""
    ResponseObservation.objects.bulk_create(
        response_row(patient, item, i) for i, item in enumerate(follow_up.get("response", []))
    )
    ToxicityObservation.objects.bulk_create(
        toxicity_row(patient, item, structures, i)
        for i, item in enumerate(follow_up.get("toxicity", []))
    )


# --- export -----------------------------------------------------------------------------


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None and v != ""}


def response_data(row: ResponseObservation) -> dict[str, Any]:
    """A response row as a ``follow_up.response`` item (the default site is written, since
    the form always sets it)."""
    return _drop_none(
        {
            "date": row.date,
            "modality": row.modality,
            "site": row.site,
            "size_mm": list(row.size_mm) if row.size_mm else None,
            "suv_max": row.suv_max,
            "recist": row.recist,
            "percist": row.percist,
            "reported": row.reported,
            "note": row.note,
        }
    )


def toxicity_data(row: ToxicityObservation) -> dict[str, Any]:
    """A toxicity row as a ``follow_up.toxicity`` item."""
    return _drop_none(
        {
            "date": row.date,
            "term": row.term,
            "grade": row.grade,
            "structure": row.structure.name if row.structure_id else None,
            "attribution": row.attribution,
            "onset": row.onset,
            "note": row.note,
        }
    )


def follow_up_data(patient: Patient) -> dict[str, list[dict[str, Any]]] | None:
    """The patient's ``follow_up`` section (None when nothing was observed)."""
    response = [response_data(r) for r in patient.responses.order_by("position", "pk")]
    toxicity = [
        toxicity_data(t)
        for t in patient.toxicities.select_related("structure").order_by("position", "pk")
    ]
    if not response and not toxicity:
        return None
    return {"response": response, "toxicity": toxicity}


def _course_data(course: Course) -> dict[str, Any]:
    doses: dict[str, dict[str, float]] = {}
    for stat in course.dose_statistics.select_related("structure").order_by("position"):
        doses.setdefault(stat.structure.name, {})[stat.metric] = stat.value_gy
    data: dict[str, Any] = _drop_none(
        {
            "id": course.course_id,
            "label": course.label,
            "start": course.start,
            "end": course.end,
            "fractions": course.fractions,
            "technique": course.technique,
            "systemic_therapy": course.systemic_therapy,
        }
    )
    prescriptions = [
        {"target": rx.target, "dose_gy": rx.dose_gy, "fractions": rx.fractions}
        | ({"primary": True} if rx.primary else {})
        for rx in course.prescriptions.order_by("position")
    ]
    if prescriptions:
        data["prescriptions"] = prescriptions
    if doses:
        data["doses"] = doses
    if course.dicom is not None:
        dicom = dict(course.dicom)
        mapping = {
            m.structure.name: m.roi_name for m in course.structure_maps.select_related("structure")
        }
        if mapping:
            dicom["structure_map"] = mapping
        data["dicom"] = dicom
    return data


def case_data(patient: Patient, courses: Iterable[Course] | None = None) -> dict[str, Any]:
    """The case mapping of a patient (all courses, or those given, in time order)."""
    chosen = list(courses) if courses is not None else list(patient.courses.all())
    chosen.sort(key=lambda c: (c.start, c.position))
    data: dict[str, Any] = {
        "reirrad_case": 1,
        "patient": _drop_none(
            {
                "id": patient.identifier,
                "sex": patient.sex,
                "birth_date": patient.birth_date,
                "age_at_diagnosis": patient.age_at_diagnosis,
            }
        ),
    }
    if patient.diagnosis is not None:
        data["diagnosis"] = patient.diagnosis
    if patient.recurrence is not None:
        data["recurrence"] = patient.recurrence
    options = patient.case_options or {}
    if "tissue_defaults" in options:
        data["tissue_defaults"] = options["tissue_defaults"]
    data["structures"] = [
        _drop_none(
            {
                "name": s.name,
                "role": s.role,
                "organ": s.organ,
                "alpha_beta": s.alpha_beta,
                "recovery": s.recovery,
                "note": s.note,
            }
        )
        for s in patient.structures.order_by("position")
    ]
    data["courses"] = [_course_data(c) for c in chosen]
    if (follow_up := follow_up_data(patient)) is not None:
        data["follow_up"] = follow_up
    data |= {k: v for k, v in options.items() if k != "tissue_defaults"}
    return data


def case_yaml(data: dict[str, Any]) -> str:
    """The case mapping as YAML text (dates as YAML dates, keys in the case file's order)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def validated_case(
    patient: Patient,
    courses: Iterable[Course] | None = None,
    analysis: Mapping[str, Any] | None = None,
) -> tuple[Case, str]:
    """The registry's case of a patient, validated as a case file is, and its YAML text.

    ``analysis`` replaces entries of the case's analysis section for this case only (an
    assessment's choice, e.g. ``{"overlap_rule": "most_conservative"}``), so the frozen case
    file states what the run used.
    """
    data = case_data(patient, courses)
    if analysis:
        data["analysis"] = {**(data.get("analysis") or {}), **analysis}
    text = case_yaml(data)
    from reirrad.io.casefile import parse_yaml

    source = f"registry patient {patient.identifier}"
    return parse_case(parse_yaml(text, source=source), source=source), text


def registry_case(patient: Patient) -> Case:
    """The registry's case of a patient, validated by the case file's rules but without
    the YAML text: for pages that only read it (the timeline's recovery models). The YAML
    round trip of :func:`validated_case` costs a page view 3-4 times as much, and its text
    is only needed where it is written out."""
    return parse_case(case_data(patient), source=f"registry patient {patient.identifier}")


def course_files(courses: Iterable[Course]) -> list[CourseFile]:
    return list(
        CourseFile.objects.filter(course__in=list(courses)).select_related("stored", "course")
    )


def write_case_folder(
    patient: Patient, directory: str | Path, courses: Iterable[Course] | None = None
) -> tuple[Path, dict[str, str]]:
    """Write ``case.yaml`` and the courses' files into ``directory``; return the case path
    and the SHA-256 of every file written, by relative path."""
    chosen = list(courses) if courses is not None else list(patient.courses.all())
    _, text = validated_case(patient, chosen)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    for item in course_files(chosen):
        relative = safe_relative(item.path, source="registry", field=f"course file {item.pk}")
        if relative == "case.yaml":
            raise InputError("a course file may not be named case.yaml", source=item.path)
        store.copy_out(item.stored, directory / relative)
        hashes[relative] = item.stored.sha256
    case_path = directory / "case.yaml"
    case_path.write_text(text, encoding="utf-8")
    hashes["case.yaml"] = store.sha256_of(case_path)
    return case_path, hashes


def export_case(
    patient: Patient, directory: str | Path, *, user: Any = None, request: Any = None
) -> Path:
    """Export a patient as a case folder (``case.yaml`` and its DICOM files); audited."""
    case_path, hashes = write_case_folder(patient, directory)
    audit.record(
        "export", request=request, user=user, obj=patient,
        format="case-yaml", files=len(hashes), case_sha256=hashes["case.yaml"],
    )  # fmt: skip
    return case_path
