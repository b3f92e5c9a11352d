"""A new patient from an uploaded case file (YAML, or a zip with its DICOM files)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

NPC_CASE = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _zip(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, arcname=path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def test_import_a_yaml_case(department, make_user):
    from reirrad.web.registry.models import Patient

    planner = _client(make_user("planner", "planner", department))
    url = reverse("registry:patient_import")
    assert planner.get(url).status_code == 200
    response = planner.post(
        url,
        {
            "department": department.pk,
            "case": SimpleUploadedFile("npc.yaml", NPC_CASE.read_bytes()),
        },
    )
    patient = Patient.objects.get()
    assert response.url == f"/patients/{patient.pk}/"
    assert patient.identifier == "MARINOVA-2026-NPC" and patient.department == department


def test_import_a_zip_with_dicom(department, make_user, phantom_case, tmp_path):
    from reirrad.io.casefile import load_case
    from reirrad.web.registry.casefile import export_case
    from reirrad.web.registry.models import CourseFile, Patient

    planner = _client(make_user("planner", "planner", department))
    archive = SimpleUploadedFile("phantom.zip", _zip(phantom_case.parent))
    response = planner.post(
        reverse("registry:patient_import"), {"department": department.pk, "case": archive}
    )
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert CourseFile.objects.filter(course__patient=patient).count() == len(
        list(phantom_case.parent.rglob("*.dcm"))
    )
    assert load_case(export_case(patient, tmp_path / "out")) == load_case(phantom_case)


def test_a_zip_slip_refuses_the_whole_case(department, make_user, phantom_case):
    from reirrad.web.registry.models import Patient

    planner = _client(make_user("planner", "planner", department))
    archive = _zip(phantom_case.parent, {"../outside.yaml": b"reirrad_case: 1\n"})
    response = planner.post(
        reverse("registry:patient_import"),
        {"department": department.pk, "case": SimpleUploadedFile("evil.zip", archive)},
    )
    assert response.status_code == 400
    assert "leaves the archive" in response.content.decode()
    assert not Patient.objects.exists()


def test_a_bad_case_is_refused_in_words(department, make_user):
    from reirrad.web.registry.models import Patient

    planner = _client(make_user("planner", "planner", department))
    text = NPC_CASE.read_text().replace("fractions: 33\n", "fractions: 3300\n", 1)
    response = planner.post(
        reverse("registry:patient_import"),
        {"department": department.pk, "case": SimpleUploadedFile("bad.yaml", text.encode())},
    )
    assert response.status_code == 400
    assert "courses[0].fractions" in response.content.decode()
    assert not Patient.objects.exists()


def test_import_needs_an_editor_of_that_department(department, other_department, make_user):
    viewer = _client(make_user("viewer", "viewer", department))
    assert viewer.get(reverse("registry:patient_import")).status_code == 403
    planner = _client(make_user("planner", "planner", department))
    response = planner.post(
        reverse("registry:patient_import"),
        {"department": other_department.pk, "case": SimpleUploadedFile("a.yaml", b"x: 1")},
    )
    assert response.status_code == 404
