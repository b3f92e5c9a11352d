"""DICOM upload: every file checked, refusals one line each (zip slip, zip bomb, not DICOM),
objects stored once by content, grouped by study and series, and a course made from them
that the library runs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _zip(folder: Path, extra: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*.dcm")):
            archive.write(path, arcname=f"course2/{path.relative_to(folder).as_posix()}")
        for name, data in extra.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.fixture
def one_course_patient(department, phantom_case, tmp_path):
    """The phantom patient with its first course only (the second comes by upload)."""
    from reirrad.web.registry.casefile import import_case

    data = yaml.safe_load(phantom_case.read_text())
    data["courses"] = data["courses"][:1]
    data.pop("exploration")
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "course1").symlink_to(phantom_case.parent / "course1")
    (folder / "case.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return import_case(folder / "case.yaml", department)


def test_upload_a_zip(one_course_patient, phantom_case, department, make_user, settings, tmp_path):
    from reirrad.web.registry import store
    from reirrad.web.registry.models import StoredObject, Upload

    settings.STORE_DIR = tmp_path / "store"
    course2 = phantom_case.parent / "course2"
    rtdose = (course2 / "RD.dcm").read_bytes()
    archive = _zip(
        course2,
        {
            "../../escaped.dcm": rtdose,  # zip slip
            "/etc/absolute.dcm": rtdose,
            "notes.txt": b"not DICOM",
            "bomb.dcm": bytes(20 << 20),  # 20 MiB of zeros: compressed ~1000 times
        },
    )
    planner = _client(make_user("planner", "planner", department))
    url = reverse("registry:upload_new", args=[one_course_patient.pk])
    response = planner.post(url, {"files": SimpleUploadedFile("course2.zip", archive)})
    upload = Upload.objects.get()
    assert response.status_code == 302 and response.url == f"/uploads/{upload.pk}/"
    refused = {r["name"]: r["reason"] for r in upload.refused}
    assert set(refused) == {
        "course2.zip/../../escaped.dcm",
        "course2.zip//etc/absolute.dcm",
        "course2.zip/notes.txt",
        "course2.zip/bomb.dcm",
    }
    assert "leaves the archive" in refused["course2.zip/../../escaped.dcm"]
    assert "not a DICOM file" in refused["course2.zip/notes.txt"]
    assert "zip bomb" in refused["course2.zip/bomb.dcm"]
    dicom_files = sorted(course2.rglob("*.dcm"))
    assert upload.items.count() == len(dicom_files)
    # nothing under an uploaded name, nothing outside the store, every file with its row
    assert not (tmp_path.parent / "escaped.dcm").exists()
    report = store.check_store()  # (rows of the imported course 1 are in the session's store)
    assert report["unreferenced"] == [] and report["corrupt"] == []
    assert all(item.stored.path.is_file() for item in upload.items.select_related("stored"))
    page = planner.get(response.url).content.decode()
    assert "bomb.dcm: compressed" in page and "Create a course from this upload" in page
    for modality in ("CT", "RTSTRUCT", "RTPLAN", "RTDOSE"):
        assert f"<td>{modality}</td>" in page
    # the same objects uploaded again (another session) are stored once
    before = StoredObject.objects.count()
    planner.post(url, {"files": SimpleUploadedFile("again.zip", archive)})
    assert StoredObject.objects.count() == before and Upload.objects.count() == 2


def test_a_course_from_the_upload_runs(
    one_course_patient, phantom_case, department, make_user, settings
):
    from reirrad.web.registry.assessments import start_assessment
    from reirrad.web.registry.models import Assessment, Course, Upload
    from reirrad.web.registry.runner import run_assessment

    settings.REPORT_PDF = "off"
    course2 = phantom_case.parent / "course2"
    planner_user = make_user("planner", "planner", department)
    planner = _client(planner_user)
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(course2.rglob("*.dcm"))]
    planner.post(reverse("registry:upload_new", args=[one_course_patient.pk]), {"files": files})
    upload = Upload.objects.get()
    items = {i.stored.modality: i.stored for i in upload.items.select_related("stored")}
    # the phantom's second course (reirrad.io.phantom.EXAMPLE_DATES): 30 Gy in 5 fractions
    response = planner.post(
        reverse("registry:upload_course", args=[upload.pk]),
        {
            "rtstruct": items["RTSTRUCT"].pk, "rtdose": [items["RTDOSE"].pk],
            "rtplan": items["RTPLAN"].pk, "ct_series": items["CT"].series_instance_uid,
            "course_id": "C2", "start": "2023-09-01", "end": "2023-09-08", "fractions": "5",
            "status": "delivered", "data_quality": "verified",
            "rx_target": "PTV_reirr", "rx_dose_gy": "30", "rx_fractions": "5",
        },
    )  # fmt: skip
    course = Course.objects.get(course_id="C2")
    assert response.status_code == 302, response.content.decode()[-1500:]
    assert course.source == "dicom" and course.files.count() == upload.items.count()
    assert sorted(course.dicom) == ["ct", "rtdose", "rtplan", "rtstruct"]
    assessment = start_assessment(one_course_patient, planner_user, enqueue=False)
    assert run_assessment(assessment.pk) == "done", Assessment.objects.get().failure_reason
    assessment.refresh_from_db()
    assert assessment.summary["data_quality"] == {"C1": "unverified", "C2": "verified"}


def test_wrong_objects_are_refused_in_words(
    one_course_patient, phantom_case, department, make_user
):
    from reirrad.web.registry.models import Course, Upload

    course2 = phantom_case.parent / "course2"
    planner = _client(make_user("planner", "planner", department))
    files = [SimpleUploadedFile(n, (course2 / n).read_bytes()) for n in ("RS.dcm", "RD.dcm")]
    planner.post(reverse("registry:upload_new", args=[one_course_patient.pk]), {"files": files})
    upload = Upload.objects.get()
    items = {i.stored.modality: i.stored for i in upload.items.select_related("stored")}
    response = planner.post(
        reverse("registry:upload_course", args=[upload.pk]),
        {
            "rtstruct": items["RTDOSE"].pk, "rtdose": [items["RTDOSE"].pk], "course_id": "C2",
            "start": "2023-09-01", "end": "2023-09-08", "fractions": "5",
            "status": "delivered", "data_quality": "verified",
        },
    )  # fmt: skip
    assert (
        response.status_code == 400
        and "RD.dcm is RTDOSE, not RTSTRUCT" in response.content.decode()
    )
    assert not Course.objects.filter(course_id="C2").exists()


def test_upload_needs_an_editor_of_the_department(
    one_course_patient, department, other_department, make_user
):
    url = reverse("registry:upload_new", args=[one_course_patient.pk])
    viewer = _client(make_user("viewer", "viewer", department))
    assert viewer.post(url, {"files": SimpleUploadedFile("a.dcm", b"x")}).status_code == 403
    outsider = _client(make_user("outsider", "admin", other_department))
    assert outsider.get(url).status_code == 404
