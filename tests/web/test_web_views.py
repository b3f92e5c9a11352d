"""The pages with Django's test client: login, search, object-level checks on every view and
download, roles, CSRF, throttling, audit entries and security headers."""

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
def done_assessment(npc_patient, department, make_user, settings):
    """An assessment of the NPC case, run in-process (no PDF: Chromium is not needed here)."""
    from reirrad.web.registry.assessments import start_assessment
    from reirrad.web.registry.runner import run_assessment

    settings.REPORT_PDF = "off"
    planner = make_user("planner", "planner", department)
    assessment = start_assessment(npc_patient, planner, enqueue=False)
    assert run_assessment(assessment.pk) == "done"
    assessment.refresh_from_db()
    return assessment


def test_every_page_needs_a_login(npc_patient):
    client = Client()
    for url in (
        reverse("registry:patients"),
        reverse("registry:patient", args=[npc_patient.pk]),
        reverse("registry:assessment", args=[1]),
        reverse("registry:assessment_output", args=[1, "report.html"]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url


def test_patient_list_and_search(npc_patient, phantom_case, department, make_user):
    from reirrad.web.registry.casefile import import_case

    import_case(phantom_case, department)
    client = _client(make_user("viewer", "viewer", department))
    page = client.get(reverse("registry:patients")).content.decode()
    assert "MARINOVA-2026-NPC" in page and "PHANTOM-EXAMPLE" in page
    page = client.get(reverse("registry:patients"), {"q": "phantom"}).content.decode()
    assert "PHANTOM-EXAMPLE" in page and "MARINOVA-2026-NPC" not in page
    page = client.get(reverse("registry:patients"), {"q": "nasopharynx"}).content.decode()
    assert "MARINOVA-2026-NPC" in page and "PHANTOM-EXAMPLE" not in page


def test_patient_page_shows_courses(npc_patient, department, make_user):
    client = _client(make_user("viewer", "viewer", department))
    page = client.get(reverse("registry:patient", args=[npc_patient.pk])).content.decode()
    assert "IMRT" in page and "HFRS" in page and "2023-12-13" in page
    assert "PTV recurrence: 24 Gy / 4 fx" in page
    # the timeline: IMRT ends 2024-02-13, HFRS starts 2025-05-27: 366 days to 2025-02-13
    # (2024 is a leap year) and 103 more, 469 days, 15.4 months of 30.44 days
    assert "15.4 months (469 days)" in page and "<svg" in page


def test_another_department_sees_nothing(npc_patient, done_assessment, other_department, make_user):
    outsider = _client(make_user("outsider", "admin", other_department))
    page = outsider.get(reverse("registry:patients")).content.decode()
    assert "MARINOVA-2026-NPC" not in page
    for url, method in (
        (reverse("registry:patient", args=[npc_patient.pk]), "get"),
        (reverse("registry:assessment", args=[done_assessment.pk]), "get"),
        (reverse("registry:assessment_status", args=[done_assessment.pk]), "get"),
        (reverse("registry:assessment_output", args=[done_assessment.pk, "report.html"]), "get"),
        (reverse("registry:assessment_output", args=[done_assessment.pk, "result.json"]), "get"),
        (reverse("registry:patient_export", args=[npc_patient.pk]), "post"),
        (reverse("registry:assessment_new", args=[npc_patient.pk]), "post"),
    ):
        assert getattr(outsider, method)(url).status_code == 404, url


def test_a_share_lets_another_department_read_only(
    npc_patient, done_assessment, other_department, make_user
):
    from reirrad.web.registry.models import Assessment, PatientShare

    PatientShare.objects.create(patient=npc_patient, department=other_department)
    reader = _client(make_user("reader", "physicist", other_department))
    assert reader.get(reverse("registry:patient", args=[npc_patient.pk])).status_code == 200
    url = reverse("registry:assessment_output", args=[done_assessment.pk, "report.html"])
    assert reader.get(url).status_code == 200
    # sharing is for reading: the other department's physicist starts nothing here
    response = reader.post(reverse("registry:assessment_new", args=[npc_patient.pk]))
    assert response.status_code == 403
    assert Assessment.objects.count() == 1


def test_a_viewer_cannot_start_an_assessment(npc_patient, department, make_user):
    from reirrad.web.registry.models import Assessment

    viewer = _client(make_user("viewer", "viewer", department))
    page = viewer.get(reverse("registry:patient", args=[npc_patient.pk])).content.decode()
    assert "Start assessment" not in page
    response = viewer.post(reverse("registry:assessment_new", args=[npc_patient.pk]))
    assert response.status_code == 403
    assert not Assessment.objects.exists()


def test_a_planner_queues_an_assessment(
    npc_patient, department, make_user, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    from reirrad.web.registry.models import Assessment, AuditEvent

    planner = _client(make_user("planner", "planner", department))
    imrt, hfrs = npc_patient.courses.order_by("start")
    page = planner.get(reverse("registry:patient", args=[npc_patient.pk])).content.decode()
    assert "Start assessment" in page
    with django_capture_on_commit_callbacks(execute=True):  # the job is queued on commit
        response = planner.post(
            reverse("registry:assessment_new", args=[npc_patient.pk]),
            {
                "course": [imrt.pk, hfrs.pk], "constraint_sets": "quantec-head-neck",
                "reference": "HFRS", "method": "none",
            },
        )  # fmt: skip
    assessment = Assessment.objects.get()
    assert response.status_code == 302 and response.url == f"/assessments/{assessment.pk}/"
    assert assessment.status == "queued"
    assert assessment.parameters["constraint_sets"] == ["quantec-head-neck"]
    assert (assessment.parameters["reference"], assessment.parameters["methods"]) == (
        "HFRS",
        "none",
    )
    assert set(assessment.input_hashes) == {"case.yaml"}  # the NPC case has no DICOM files
    job = DBTaskResult.objects.get()
    assert job.args_kwargs["args"] == [assessment.pk] and job.status == "READY"
    assert AuditEvent.objects.filter(action="create", object_type="Assessment").exists()
    page = planner.get(response.url).content.decode()
    assert "Status: Queued" in page and 'http-equiv="refresh"' in page


def test_a_case_the_library_refuses_is_an_error_in_words(npc_patient, department, make_user):
    """The NPC case explores re-planning HFRS: without that course it is not a valid case."""
    from reirrad.web.registry.models import Assessment

    planner = _client(make_user("planner", "planner", department))
    imrt = npc_patient.courses.get(course_id="IMRT")
    response = planner.post(
        reverse("registry:assessment_new", args=[npc_patient.pk]),
        {"course": [imrt.pk]},
        follow=True,
    )
    assert not Assessment.objects.exists()
    assert "The assessment cannot start" in response.content.decode()
    assert "exploration.new_course" in response.content.decode()


def test_a_course_of_another_patient_is_refused(npc_patient, phantom_case, department, make_user):
    from reirrad.web.registry.casefile import import_case

    other = import_case(phantom_case, department)
    planner = _client(make_user("planner", "planner", department))
    response = planner.post(
        reverse("registry:assessment_new", args=[npc_patient.pk]),
        {"course": [other.courses.first().pk]},
    )
    assert response.status_code == 404


def test_assessment_page_verdicts_and_report(done_assessment, department, make_user):
    from reirrad.web.registry.models import AuditEvent

    viewer = _client(make_user("viewer", "viewer", department))
    page = viewer.get(reverse("registry:assessment", args=[done_assessment.pk])).content.decode()
    assert "Status: Done" in page and "Verdicts" in page and "Recurrence" in page
    assert "report.html" in page and "report.pdf" not in page  # no PDF in this test
    response = viewer.get(
        reverse("registry:assessment_output", args=[done_assessment.pk, "report.html"])
    )
    assert response.status_code == 200
    assert b"MARINOVA-2026-NPC" in b"".join(response.streaming_content)
    assert "sandbox" in response.headers["Content-Security-Policy"]
    event = AuditEvent.objects.get(action="view_report")
    assert (event.username, event.object_id) == ("viewer", str(done_assessment.pk))
    missing = reverse("registry:assessment_output", args=[done_assessment.pk, "report.pdf"])
    assert viewer.get(missing).status_code == 404
    unknown = reverse("registry:assessment_output", args=[done_assessment.pk, "secret_key"])
    assert viewer.get(unknown).status_code == 404


def test_export_is_a_zip_of_the_case_and_is_audited(npc_patient, department, make_user, tmp_path):
    import io
    import zipfile

    from reirrad.io.casefile import load_case
    from reirrad.web.registry.models import AuditEvent

    viewer = _client(make_user("viewer", "viewer", department))
    response = viewer.post(reverse("registry:patient_export", args=[npc_patient.pk]))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["case.yaml"]
    archive.extractall(tmp_path)
    assert load_case(tmp_path / "case.yaml").patient.id == "MARINOVA-2026-NPC"
    assert AuditEvent.objects.filter(action="export", username="viewer").exists()


def test_forms_need_the_csrf_token(npc_patient, department, make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("planner", "planner", department))
    response = client.post(reverse("registry:assessment_new", args=[npc_patient.pk]))
    assert response.status_code == 403


def test_failed_logins_are_audited_and_throttled(department, make_user, settings):
    from reirrad.web.registry.models import AuditEvent

    make_user("someone", "viewer", department)
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = client.post("/login/", {"username": "someone", "password": "wrong"})
        assert response.status_code == 200
    assert AuditEvent.objects.filter(action="failed_login", username="someone").count() == 5
    # the right password is refused too until the window has passed
    response = client.post("/login/", {"username": "someone", "password": "a long test password"})
    assert response.status_code == 429 and b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_login_works_and_is_audited(department, make_user):
    from reirrad.web.registry.models import AuditEvent

    make_user("someone", "viewer", department)
    client = Client()
    response = client.post("/login/", {"username": "someone", "password": "a long test password"})
    assert response.status_code == 302 and response.url == "/"
    assert AuditEvent.objects.filter(action="login", username="someone").exists()


def test_security_headers(department, make_user):
    response = Client().get("/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.cookies["csrftoken"]["httponly"]


@pytest.fixture
def pdf_assessment(npc_patient, department, make_user):
    """A finished assessment whose report PDF is in the store (bytes made up: no Chromium)."""
    from reirrad.web.registry.models import Assessment, StoredObject

    pdf = StoredObject.from_bytes(b"%PDF-1.4 report of the NPC case", kind="report_pdf")
    assessment = Assessment.objects.create(
        patient=npc_patient, case_yaml="reirrad_case: 1\n", input_hashes={},
        reirrad_version="0.1.0", report_pdf=pdf,
    )  # fmt: skip
    assessment.courses.set(npc_patient.courses.all())  # while it is queued
    assessment.status = Assessment.Status.DONE
    assessment.save()
    return assessment


def test_a_physician_signs_with_the_password(pdf_assessment, department, make_user):
    from reirrad.web.registry.models import AuditEvent, SignOff

    physician = _client(make_user("dr", "physician", department))
    url = reverse("registry:assessment_sign", args=[pdf_assessment.pk])
    page = physician.get(reverse("registry:assessment", args=[pdf_assessment.pk])).content
    assert b"Sign the report" in page
    physician.post(url, {"reviewed": "yes", "password": "wrong"})
    physician.post(url, {"password": "a long test password"})  # not confirmed
    assert not SignOff.objects.exists()
    physician.post(url, {"reviewed": "yes", "password": "a long test password"})
    signoff = SignOff.objects.get()
    assert signoff.pdf_sha256 == pdf_assessment.report_pdf.sha256
    assert (signoff.user.username, signoff.role) == ("dr", "physician")
    event = AuditEvent.objects.get(action="sign_off")
    assert event.detail["pdf_sha256"] == signoff.pdf_sha256
    page = physician.get(reverse("registry:assessment", args=[pdf_assessment.pk])).content
    assert b"Signed by dr (physician)" in page and b"Sign the report" not in page
    physician.post(url, {"reviewed": "yes", "password": "a long test password"})
    assert SignOff.objects.count() == 1


@pytest.mark.parametrize("role", ["viewer", "planner", "physicist", "admin"])
def test_only_a_physician_signs(pdf_assessment, department, make_user, role):
    from reirrad.web.registry.models import SignOff

    client = _client(make_user("someone", role, department))
    page = client.get(reverse("registry:assessment", args=[pdf_assessment.pk])).content
    assert b"Sign the report" not in page
    response = client.post(
        reverse("registry:assessment_sign", args=[pdf_assessment.pk]),
        {"reviewed": "yes", "password": "a long test password"},
    )
    assert response.status_code == 403 and not SignOff.objects.exists()


def test_another_departments_physician_cannot_sign(pdf_assessment, other_department, make_user):
    client = _client(make_user("dr-b", "physician", other_department))
    response = client.post(
        reverse("registry:assessment_sign", args=[pdf_assessment.pk]),
        {"reviewed": "yes", "password": "a long test password"},
    )
    assert response.status_code == 404


def test_a_new_assessment_supersedes_a_signed_one(
    pdf_assessment, npc_patient, department, make_user
):
    from reirrad.web.registry.models import Assessment, SignOff

    physician = make_user("dr", "physician", department)
    SignOff.objects.create(
        assessment=pdf_assessment,
        user=physician,
        role="physician",
        pdf_sha256=pdf_assessment.report_pdf.sha256,
    )
    response = _client(physician).post(
        reverse("registry:assessment_new", args=[npc_patient.pk]),
        {"supersedes": pdf_assessment.pk},
    )
    newer = Assessment.objects.exclude(pk=pdf_assessment.pk).get()
    assert response.url == f"/assessments/{newer.pk}/"
    assert newer.supersedes == pdf_assessment
    assert set(newer.courses.values_list("course_id", flat=True)) == {"IMRT", "HFRS"}
    assert Assessment.objects.count() == 2 and pdf_assessment.is_signed


def test_timeline_gaps_run_from_one_course_to_the_next(npc_patient):
    from reirrad.web.registry.timeline import MARGIN, WIDTH, timeline

    drawn = timeline(list(npc_patient.courses.all()))
    imrt, hfrs = drawn.bars
    (gap,) = drawn.gaps
    # IMRT 2023-12-13..2024-02-13: 62 days apart, drawn 63 days wide (the dates are inclusive);
    # the gap starts at its last fraction and ends at HFRS's first
    assert gap.x == pytest.approx(imrt.x + imrt.width * 62 / 63)
    assert gap.x2 == pytest.approx(hfrs.x)
    # the axis runs from 2023-01-01 to 2026-01-01 (1096 days) across the drawing
    assert [year for _, year in drawn.ticks] == ["2023", "2024", "2025", "2026"]
    assert drawn.ticks[0][0] == MARGIN and drawn.ticks[-1][0] == pytest.approx(WIDTH - MARGIN)


def test_an_assessment_may_choose_the_overlap_rule_and_its_case_file_states_it(
    npc_patient, department, make_user
):
    import yaml

    from reirrad.web.registry.models import Assessment

    planner = _client(make_user("planner", "planner", department))
    url = reverse("registry:assessment_new", args=[npc_patient.pk])
    page = planner.get(reverse("registry:patient", args=[npc_patient.pk])).content.decode()
    assert 'name="overlap_rule"' in page
    assert planner.post(url, {"overlap_rule": "largest_dose"}).status_code == 404
    assert not Assessment.objects.exists()
    planner.post(url, {"overlap_rule": "most_conservative"})
    assessment = Assessment.objects.get()
    assert assessment.parameters["overlap_rule"] == "most_conservative"
    frozen = yaml.safe_load(assessment.case_yaml)
    assert frozen["analysis"]["overlap_rule"] == "most_conservative"
    # the registry's own case is unchanged: the choice belongs to this assessment only
    from reirrad.web.registry.casefile import validated_case

    assert validated_case(npc_patient)[0].analysis.overlap_rule == "targets_first"
