"""Rules the models enforce whoever writes: immutable sign-offs and signed assessments,
frozen assessment inputs, the append-only audit log, the content-addressed store."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from django.db import transaction

pytestmark = pytest.mark.django_db


def _assessment(patient, user, **fields):
    from reirrad.web.registry.models import Assessment

    values = {
        "patient": patient,
        "created_by": user,
        "case_yaml": "reirrad_case: 1\n",
        "input_hashes": {"case.yaml": "0" * 64},
        "reirrad_version": "0.1.0",
        "parameters": {},
    }
    return Assessment.objects.create(**(values | fields))


def _signed(patient, physician):
    from reirrad.web.registry.models import Assessment, SignOff, StoredObject

    pdf = StoredObject.from_bytes(b"%PDF-1.4 test", kind="report_pdf")
    assessment = _assessment(patient, physician, status=Assessment.Status.DONE, report_pdf=pdf)
    SignOff.objects.create(
        assessment=assessment, user=physician, role="physician", pdf_sha256=pdf.sha256
    )
    return assessment


def test_a_signed_assessment_cannot_change_or_go(npc_patient, department, make_user):
    from reirrad.web.registry.models import Assessment, Immutable, SignOff

    physician = make_user("dr", "physician", department)
    assessment = _signed(npc_patient, physician)
    assessment.failure_reason = "edited"
    with pytest.raises(Immutable):
        assessment.save()
    with pytest.raises(Immutable):
        assessment.delete()
    with pytest.raises(Immutable):
        Assessment.objects.filter(pk=assessment.pk).update(status="failed")
    with pytest.raises(Immutable):
        Assessment.objects.filter(pk=assessment.pk).delete()
    with pytest.raises(Immutable), transaction.atomic():
        assessment.courses.clear()
    signoff = SignOff.objects.get(assessment=assessment)
    with pytest.raises(Immutable):
        signoff.save()
    with pytest.raises(Immutable):
        signoff.delete()
    with pytest.raises(Immutable):
        SignOff.objects.all().delete()
    # a new assessment supersedes it, and both stay
    newer = _assessment(npc_patient, physician, supersedes=assessment)
    assert set(Assessment.objects.values_list("pk", flat=True)) == {assessment.pk, newer.pk}
    assert list(assessment.superseded_by.all()) == [newer]


def test_frozen_inputs_cannot_change(npc_patient, department, make_user):
    from reirrad.web.registry.models import Immutable

    user = make_user("planner", "planner", department)
    assessment = _assessment(npc_patient, user)
    assessment.status = "running"  # status is not an input
    assessment.save()
    assessment.case_yaml = "reirrad_case: 1\npatient: {id: other}\n"
    with pytest.raises(Immutable, match="case_yaml"):
        assessment.save()


def test_only_a_physician_of_the_department_signs(
    npc_patient, department, other_department, make_user
):
    from django.core.exceptions import PermissionDenied

    from reirrad.web.registry.models import Assessment, SignOff, StoredObject

    pdf = StoredObject.from_bytes(b"%PDF-1.4 other", kind="report_pdf")
    assessment = _assessment(npc_patient, None, status=Assessment.Status.DONE, report_pdf=pdf)
    planner = make_user("planner", "planner", department)
    outsider = make_user("dr-b", "physician", other_department)
    for user, role in ((planner, "planner"), (planner, "physician"), (outsider, "physician")):
        with pytest.raises(PermissionDenied):
            SignOff.objects.create(
                assessment=assessment, user=user, role=role, pdf_sha256=pdf.sha256
            )
    assert not SignOff.objects.exists()


def test_the_signature_names_the_report_pdf(npc_patient, department, make_user):
    from django.core.exceptions import ValidationError

    from reirrad.web.registry.models import Assessment, SignOff, StoredObject

    pdf = StoredObject.from_bytes(b"%PDF-1.4 third", kind="report_pdf")
    assessment = _assessment(npc_patient, None, status=Assessment.Status.DONE, report_pdf=pdf)
    physician = make_user("dr", "physician", department)
    with pytest.raises(ValidationError):
        SignOff.objects.create(
            assessment=assessment, user=physician, role="physician", pdf_sha256="f" * 64
        )


def test_audit_log_is_append_only(department):
    from reirrad.web.registry import audit
    from reirrad.web.registry.models import AuditEvent, Immutable

    event = audit.record("export", username="someone", obj=department)
    event.action = "login"
    with pytest.raises(Immutable):
        event.save()
    with pytest.raises(Immutable):
        event.delete()
    with pytest.raises(Immutable):
        AuditEvent.objects.update(action="login")
    with pytest.raises(Immutable):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "export"


def test_store_is_content_addressed_and_never_overwritten():
    import hashlib

    from reirrad.web.registry.models import StoredObject

    data = b"the same bytes"
    first = StoredObject.from_bytes(data, kind="document", original_name="a.txt")
    second = StoredObject.from_bytes(data, kind="document", original_name="b.txt")
    assert first.pk == second.pk and StoredObject.objects.count() == 1
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.path.name == first.sha256
    assert first.path.parent.name == first.sha256[2:4]
    assert first.path.read_bytes() == data
    assert not os.stat(first.path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not any(first.path.parent.parent.parent.parent.joinpath("tmp").iterdir())


def test_a_concurrent_second_row_of_the_same_content_is_one_row():
    """The row is created once even when another writer inserted it first (the unique hash)."""
    from reirrad.web.registry import store
    from reirrad.web.registry.models import StoredObject

    data = b"uploaded by two sessions"
    sha256, size = store.put_file_bytes([data])
    other = StoredObject.objects.create(sha256=sha256, size=size, kind="dicom")
    original_filter = StoredObject.objects.filter

    class Missed:  # the second writer looked before the first one's row existed
        def first(self):
            return None

    StoredObject.objects.filter = lambda **kw: Missed() if "sha256" in kw else original_filter(**kw)
    try:
        again = StoredObject.from_bytes(data, kind="dicom")
    finally:
        del StoredObject.objects.filter
    assert again.pk == other.pk and StoredObject.objects.count() == 1


def test_the_database_is_the_one_asked_for():
    """``REIRRAD_WEB_DB=postgres`` really runs these tests on PostgreSQL (not a silent SQLite)."""
    import os

    from django.db import connection

    expected = {"sqlite": "sqlite", "postgres": "postgresql"}[
        os.environ.get("REIRRAD_WEB_DB", "sqlite")
    ]
    assert connection.vendor == expected


def test_check_store_finds_files_without_rows_and_rows_without_files(settings, tmp_path):
    import hashlib

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from reirrad.web.registry import store
    from reirrad.web.registry.models import StoredObject

    settings.STORE_DIR = tmp_path / "store"
    StoredObject.from_bytes(b"kept", kind="document")
    assert store.check_store() == {
        "unreferenced": [],
        "missing": [],
        "spool_unregistered": [],
        "corrupt": [],
        "temporary": [],
    }
    orphan, _ = store.put_file_bytes([b"written, then the process died before its row"])
    ghost = hashlib.sha256(b"a row whose file is gone").hexdigest()
    StoredObject.objects.create(sha256=ghost, size=24, kind="document")
    report = store.check_store()
    assert report == {
        "unreferenced": [orphan],
        "missing": [ghost],
        "spool_unregistered": [],
        "corrupt": [],
        "temporary": [],
    }
    with pytest.raises(CommandError, match="1 unreferenced, 1 missing"):
        call_command("check_store")


def test_import_and_export_commands(department, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from reirrad.io.casefile import load_case
    from reirrad.web.registry.models import Patient

    case = Path(__file__).resolve().parents[2] / "examples" / "npc-reirradiation-2026.yaml"
    call_command("import_case", str(case), department=department.name)
    patient = Patient.objects.get()
    call_command("export_case", patient.pk, str(tmp_path / "out"))
    assert load_case(tmp_path / "out" / "case.yaml") == load_case(case)
    with pytest.raises(CommandError, match="already in"):
        call_command("import_case", str(case), department=department.name)
    with pytest.raises(CommandError, match="no department"):
        call_command("import_case", str(case), department="nowhere")


def test_a_run_cut_off_by_a_stop_is_failed_with_a_reason(npc_patient, department, make_user):
    from reirrad.web.registry.models import Assessment
    from reirrad.web.registry.runner import fail_interrupted

    user = make_user("planner", "planner", department)
    running = _assessment(npc_patient, user, status=Assessment.Status.RUNNING)
    done = _assessment(npc_patient, user, status=Assessment.Status.DONE)
    assert fail_interrupted("interrupted: the service stopped") == 1
    running.refresh_from_db()
    done.refresh_from_db()
    assert (running.status, running.failure_reason) == (
        "failed",
        "interrupted: the service stopped",
    )
    assert running.finished_at is not None and done.status == "done"
