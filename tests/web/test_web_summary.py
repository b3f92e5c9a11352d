"""A course from a summary document: typed-in numbers checked by the library's case rules,
the document kept in the store, refusals in words and nothing half-saved."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n% a treatment summary from another hospital\n"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(**changes):
    fields = {
        "course_id": "SBRT",
        "label": "summary from hospital B",
        "institution": "Hospital B",
        "start": "2026-06-01",
        "end": "2026-06-05",
        "fractions": "5",
        "status": "delivered",
        "data_quality": "unverified",
        "rx_target": "PTV",
        "rx_dose_gy": "30",
        "rx_fractions": "5",
        "statistics": "Right parotid gland | Dmean | 5.0\nRight parotid gland | Dmax | 12",
        "document": SimpleUploadedFile("summary.pdf", PDF, content_type="application/pdf"),
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def test_a_planner_adds_a_course_with_its_document(npc_patient, department, make_user, tmp_path):
    from reirrad.io.casefile import load_case
    from reirrad.web.registry.casefile import export_case
    from reirrad.web.registry.models import AuditEvent, Course

    planner = _client(make_user("planner", "planner", department))
    url = reverse("registry:summary_course_new", args=[npc_patient.pk])
    assert planner.get(url).status_code == 200
    response = planner.post(url, _form())
    course = Course.objects.get(course_id="SBRT")
    assert response.status_code == 302 and response.url == f"/courses/{course.pk}/"
    assert (course.source, course.institution, course.data_quality) == (
        "summary",
        "Hospital B",
        "unverified",
    )
    assert course.source_document.media_type == "application/pdf"
    assert course.source_document.path.read_bytes() == PDF
    assert AuditEvent.objects.filter(action="create", object_type="Course").exists()
    document = planner.get(reverse("registry:course_document", args=[course.pk]))
    assert b"".join(document.streaming_content) == PDF
    # the registry's case now has three courses, the new one as typed in
    case = load_case(export_case(npc_patient, tmp_path / "export"))
    assert [c.id for c in case.courses] == ["IMRT", "HFRS", "SBRT"]
    assert case.courses[2].doses == {"Right parotid gland": {"Dmean": 5.0, "Dmax": 12.0}}
    assert case.courses[2].prescriptions[0].dose_per_fraction_gy == 6.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": "2025-05-28", "end": "2025-06-02"}, "overlap or are out of order"),
        ({"statistics": "Left parotid | Dmean | 5"}, "unknown structure"),
        ({"statistics": "Right parotid gland | Dmean | 20\nRight parotid gland | Dmax | 12"},
         "impossible for one dose distribution"),
        ({"statistics": "Right parotid gland | Dmean | 5000"}, "plausibility limit"),
        ({"statistics": "Right parotid gland | V20Gy | 5"}, "only dose statistics"),
        ({"rx_fractions": "4"}, "fractions"),
        ({"course_id": "IMRT"}, "already has a course"),
        ({"document": SimpleUploadedFile("x.exe", b"MZ\x90\x00", content_type="application/pdf")},
         "must be a PDF, PNG, JPEG or TIFF"),
    ],
)  # fmt: skip
def test_refusals_name_the_problem_and_save_nothing(
    npc_patient, department, make_user, changes, message
):
    from reirrad.web.registry.models import Course, StoredObject

    planner = _client(make_user("planner", "planner", department))
    stored_before = StoredObject.objects.count()
    response = planner.post(
        reverse("registry:summary_course_new", args=[npc_patient.pk]), _form(**changes)
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Course.objects.count() == 2
    assert StoredObject.objects.count() == stored_before


def test_a_viewer_cannot_add_a_course(npc_patient, department, make_user):
    viewer = _client(make_user("viewer", "viewer", department))
    url = reverse("registry:summary_course_new", args=[npc_patient.pk])
    assert viewer.get(url).status_code == 403
    assert viewer.post(url, _form()).status_code == 403
