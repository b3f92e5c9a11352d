"""The course page: prescriptions, DICOM objects with their identity, downloads behind the
department check, and the structure mapping with suggestions from the names."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def phantom_patient(department, phantom_case):
    from reirrad.web.registry.casefile import import_case

    return import_case(phantom_case, department)


def test_course_page_lists_prescriptions_and_dicom_objects(phantom_patient, department, make_user):
    viewer = _client(make_user("viewer", "viewer", department))
    course = phantom_patient.courses.get(course_id="C2")
    page = viewer.get(reverse("registry:course", args=[course.pk])).content.decode()
    # the phantom's second course: 30 Gy in 5 fractions (reirrad.io.phantom), 6 Gy a fraction
    assert "PTV_reirr" in page and "<td>30</td><td>5</td><td>6</td>" in page
    for modality in ("CT", "RTSTRUCT", "RTPLAN", "RTDOSE"):
        assert f"<td>{modality}</td>" in page
    rtdose = course.files.get(path="course2/RD.dcm")
    assert rtdose.stored.sop_instance_uid in page


def test_download_of_a_course_file(phantom_patient, phantom_case, department, make_user):
    from reirrad.web.registry.models import AuditEvent

    viewer = _client(make_user("viewer", "viewer", department))
    course = phantom_patient.courses.get(course_id="C2")
    item = course.files.get(path="course2/RD.dcm")
    response = viewer.get(reverse("registry:course_file", args=[course.pk, item.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (phantom_case.parent / item.path).read_bytes()
    assert AuditEvent.objects.filter(action="download", detail__path="course2/RD.dcm").exists()
    # a file of another course is not reachable through this course's URL
    other = phantom_patient.courses.get(course_id="C1").files.first()
    assert (
        viewer.get(reverse("registry:course_file", args=[course.pk, other.pk])).status_code == 404
    )


def test_another_department_cannot_reach_a_course(phantom_patient, other_department, make_user):
    outsider = _client(make_user("outsider", "admin", other_department))
    course = phantom_patient.courses.first()
    item = course.files.first()
    assert outsider.get(reverse("registry:course", args=[course.pk])).status_code == 404
    url = reverse("registry:course_file", args=[course.pk, item.pk])
    assert outsider.get(url).status_code == 404
    url = reverse("registry:course_mapping", args=[course.pk])
    assert outsider.post(url, {"structure": 1, "roi": "x"}).status_code == 404


def test_structure_mapping_suggestions_and_saving(phantom_patient, department, make_user):
    from reirrad.web.registry.models import AuditEvent, Structure, StructureMapping
    from reirrad.web.registry.structures import mapping_rows

    course = phantom_patient.courses.get(course_id="C2")
    cord = Structure.objects.create(
        patient=phantom_patient, position=9, name="spinal canal", role="organ_at_risk"
    )
    rows = {row.structure: row for row in mapping_rows(course)}
    assert rows["PTV_reirr"].roi == "PTV_reirr" and rows["PTV_reirr"].how == "same name"
    assert rows["spinal canal"].roi is None
    assert rows["spinal canal"].suggestions[0] == "SpinalCanal"
    url = reverse("registry:course_mapping", args=[course.pk])
    viewer = _client(make_user("viewer", "viewer", department))
    assert viewer.post(url, {"structure": cord.pk, "roi": "SpinalCanal"}).status_code == 403
    planner = _client(make_user("planner", "planner", department))
    assert planner.post(url, {"structure": cord.pk, "roi": "SpinalCanal"}).status_code == 302
    assert StructureMapping.objects.get(course=course, structure=cord).roi_name == "SpinalCanal"
    assert {r.structure: r.how for r in mapping_rows(course)}["spinal canal"] == "mapped"
    assert AuditEvent.objects.filter(action="change", detail__structure="spinal canal").exists()
