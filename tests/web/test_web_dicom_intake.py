"""The DICOM node's registry side: registration (idempotent, crash-safe), patient matching,
proposed courses and their confirm page."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reirrad.io.dicom_node import spool_bytes, spooled_objects

pytestmark = pytest.mark.django_db


def _fill_spool(case: Path, spool: Path) -> list[Path]:
    """Spool the phantom's first course as the node does (``<UID>.dcm``, atomically)."""
    import pydicom

    spool.mkdir(parents=True, exist_ok=True)
    out = []
    for path in sorted((case.parent / "course1").rglob("*.dcm")):
        uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        out.append(spool_bytes(spool, uid, path.read_bytes())[0])
    return out


@pytest.fixture
def spool(settings, tmp_path, phantom_case):
    settings.STORE_DIR = tmp_path / "store"  # check_store sees only this test's files
    settings.DICOM_SPOOL_DIR = tmp_path / "spool"
    _fill_spool(phantom_case, settings.DICOM_SPOOL_DIR)
    return settings.DICOM_SPOOL_DIR


def _proposals(spool: Path, department):
    from reirrad.core.dicom_groups import group_objects
    from reirrad.io.dicom_node import summarize_file
    from reirrad.web.registry import dicom_intake

    courses = group_objects(summarize_file(p) for p in spooled_objects(spool))
    return [dicom_intake.propose(c, department) for c in courses]


def test_registering_twice_stores_once_and_the_sweep_covers_the_spool(spool, department):
    from reirrad.web.registry import dicom_intake
    from reirrad.web.registry.consistency import check_consistency as check_store
    from reirrad.web.registry.models import ReceivedObject, StoredObject

    files = list(spooled_objects(spool))
    # a crash after the spool write: the consistency check names every unregistered file
    assert check_store(rehash=False)["spool_unregistered"] == sorted(p.name for p in files)
    dicom_intake.register_spooled(files[0], department)
    studies = dicom_intake.sweep(spool, department)
    assert len(studies) == 1  # the course's study, to be grouped as if just received
    assert ReceivedObject.objects.count() == len(files)
    assert dicom_intake.sweep(spool, department) == []
    again = dicom_intake.register_spooled(files[0], department)
    assert again.stored.path.samefile(files[0])  # hard-linked: one copy on disk
    assert again == ReceivedObject.objects.get(sop_instance_uid=again.sop_instance_uid)
    assert ReceivedObject.objects.count() == StoredObject.objects.count() == len(files)
    assert check_store(rehash=True) == {
        "unreferenced": [], "missing": [], "spool_unregistered": [], "corrupt": [],
        "temporary": [],
    }  # fmt: skip


def test_a_proposal_is_confirmed_into_a_course_by_a_planner_not_a_viewer(
    spool, department, make_user, client
):
    from reirrad.web.registry import dicom_intake
    from reirrad.web.registry.models import AuditEvent, Course, DicomProposal, Patient

    dicom_intake.sweep(spool, department)
    (proposal,) = _proposals(spool, department)
    # an unknown patient ID: proposed, and no patient is created before someone confirms
    assert proposal.state == DicomProposal.State.PROPOSED and proposal.patient is None
    assert not Patient.objects.exists()
    parts = proposal.parts
    assert parts["rtstruct"] and parts["rtplan"] and len(parts["rtdose"]) >= 1 and parts["ct"]
    form = {"action": "confirm", "course_id": "C1", "start": "2020-01-06",
            "end": "2020-02-14", "fractions": "30", "status": "delivered",
            "data_quality": "unverified"}  # fmt: skip
    client.force_login(make_user("viewer", "viewer", department))
    assert client.get(f"/incoming/{proposal.pk}/").status_code == 200
    assert client.post(f"/incoming/{proposal.pk}/", form).status_code == 403
    client.force_login(make_user("planner", "planner", department))
    page = client.get("/incoming/")
    assert proposal.plan_label.encode() in page.content
    response = client.post(f"/incoming/{proposal.pk}/", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    course = Course.objects.get()
    assert course.source == Course.Source.DICOM and course.patient.identifier == (
        proposal.patient_identifier
    )
    assert course.files.count() == (
        2 + len(parts["rtdose"]) + len(parts["ct"]) + len(parts["registration"][:1])
    )
    proposal.refresh_from_db()
    assert proposal.state == DicomProposal.State.CONFIRMED and proposal.course == course
    assert AuditEvent.objects.filter(action="confirm", object_id=str(proposal.pk)).exists()
    # decided: a second confirm is refused
    assert client.post(f"/incoming/{proposal.pk}/", form).status_code == 400


def test_another_birth_date_for_a_known_id_is_a_conflict_never_merged(
    spool, department, other_department, make_user, client
):
    import dataclasses
    import datetime as dt

    from reirrad.core.dicom_groups import group_objects
    from reirrad.io.dicom_node import summarize_file
    from reirrad.web.registry import dicom_intake
    from reirrad.web.registry.models import AuditEvent, DicomProposal, Patient

    summary = summarize_file(next(iter(spooled_objects(spool))))
    patient = Patient.objects.create(
        department=department, identifier=summary.patient_id, birth_date=dt.date(1901, 2, 3)
    )
    dicom_intake.sweep(spool, department)
    (course,) = group_objects(summarize_file(p) for p in spooled_objects(spool))
    proposal = dicom_intake.propose(
        dataclasses.replace(course, patient_birth_date="19500101"), department
    )
    assert proposal.state == DicomProposal.State.CONFLICT and proposal.patient == patient
    assert any("1901-02-03" in c for c in proposal.conflicts)
    client.force_login(make_user("physicist", "physicist", department))
    page = client.get(f"/patients/{patient.pk}/")
    assert f"/incoming/{proposal.pk}/".encode() in page.content
    refused = client.post(f"/incoming/{proposal.pk}/", {"action": "confirm", "course_id": "C1",
                          "start": "2020-01-06", "end": "2020-02-14", "fractions": "30",
                          "status": "delivered", "data_quality": "unverified"})  # fmt: skip
    assert refused.status_code == 400 and b"say how you resolved it" in refused.content
    assert client.post(f"/incoming/{proposal.pk}/", {"action": "reject"}).status_code == 302
    assert AuditEvent.objects.filter(action="reject", object_id=str(proposal.pk)).exists()
    assert Patient.objects.get().birth_date == dt.date(1901, 2, 3)
    # another department's member does not see it
    client.force_login(make_user("other", "planner", other_department))
    assert client.get(f"/incoming/{proposal.pk}/").status_code == 404


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manage(env, *args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reirrad.web", *args], env=env,
                          capture_output=True, text=True, check=check, timeout=600)  # fmt: skip


COUNT = ("from reirrad.web.registry.models import ReceivedObject as R, StoredObject as S; "
         "print(R.objects.count(), S.objects.count())")  # fmt: skip


PROPOSED = "from reirrad.web.registry.models import DicomProposal as P; print(P.objects.count())"


@pytest.mark.skipif(not shutil.which("storescu"), reason="dcmtk missing: scripts/system-deps.sh")
def test_listener_killed_between_spool_and_registration_loses_and_duplicates_nothing(
    fresh_env, phantom_case
):
    env = dict(fresh_env, DJANGO_SETTINGS_MODULE="reirrad.web.settings", TCP_NODELAY="1")
    _manage(env, "migrate", "--no-input")
    _manage(
        env,
        "shell",
        "-c",
        "from reirrad.web.registry.models import Department as D; D.objects.create(name='RT')",
    )
    files = sorted((phantom_case.parent / "course1").rglob("*.dcm"))
    port = _free_port()
    send = ["storescu", "-aet", "TPS", "-aec", "REIRRAD", "127.0.0.1", str(port)]

    def listen(**extra):
        process = subprocess.Popen(
            [sys.executable, "-m", "reirrad.web", "dicom_listen", "--port", str(port)],
            env=env | extra, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(600):  # until it listens (bounded; not a timed assertion)
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return process
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.2)
        raise AssertionError("the listener did not start")

    # killed (SIGKILL) right after the 5th object reached the spool, before its registration
    process = listen(REIRRAD_DICOM_TEST_KILL_AFTER="5")
    subprocess.run(send + [str(f) for f in files], env=env, capture_output=True, timeout=600)
    assert process.wait(timeout=120) == -signal.SIGKILL
    spool = Path(env["REIRRAD_DATA"]) / "dicom-spool"
    spooled = list(spooled_objects(spool))
    assert len(spooled) == 5
    check = _manage(env, "check_store", check=False)
    assert check.returncode != 0 and "spool_unregistered" in check.stdout
    # restart: the sweep registers what was left; a full re-send duplicates nothing
    process = listen(REIRRAD_DICOM_IDLE_S="1")
    try:
        sent = subprocess.run(send + [str(f) for f in files], env=env, capture_output=True,
                              timeout=600)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        for _ in range(300):  # the study goes idle after 1 s and is proposed (bounded wait)
            if _manage(env, "shell", "-c", PROPOSED).stdout.split()[-1:] == ["1"]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no course was proposed")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    received, stored = map(int, _manage(env, "shell", "-c", COUNT).stdout.split()[-2:])
    assert received == stored == len(files) == len(list(spooled_objects(spool)))
    assert "store consistent" in _manage(env, "check_store").stdout


def test_with_several_reg_objects_a_person_chooses_one(spool, department, make_user, client):
    import pydicom
    from pydicom.uid import generate_uid

    from reirrad.web.registry import dicom_intake
    from reirrad.web.registry.models import AuditEvent, Course, StoredObject

    # a second REG between the same frames (e.g. a re-done registration), as a planning system
    # may send beside the first
    first = next(p for p in spooled_objects(spool) if pydicom.dcmread(p).Modality == "REG")
    second = pydicom.dcmread(first)
    second.SOPInstanceUID = generate_uid()
    second.file_meta.MediaStorageSOPInstanceUID = second.SOPInstanceUID
    copy = spool.parent / "second_reg.dcm"
    second.save_as(copy)
    spool_bytes(spool, second.SOPInstanceUID, copy.read_bytes())
    dicom_intake.sweep(spool, department)
    (proposal,) = _proposals(spool, department)
    regs = proposal.parts["registration"]
    assert len(regs) == 2
    assert any("2 REG objects" in n for n in proposal.notes)
    form = {"action": "confirm", "course_id": "C1", "start": "2020-01-06",
            "end": "2020-02-14", "fractions": "30", "status": "delivered",
            "data_quality": "unverified"}  # fmt: skip
    client.force_login(make_user("planner", "planner", department))
    page = client.get(f"/incoming/{proposal.pk}/").content.decode()
    assert "2 REG objects" in page and 'name="registration"' in page
    # no choice: refused, nothing created (never the first by UID)
    response = client.post(f"/incoming/{proposal.pk}/", form)
    assert response.status_code == 400 and b"choose the one that maps" in response.content
    assert not Course.objects.exists()
    # a REG that is not this proposal's: refused
    other = StoredObject.objects.exclude(pk__in=regs).first().pk
    response = client.post(f"/incoming/{proposal.pk}/", {**form, "registration": str(other)})
    assert response.status_code == 400 and not Course.objects.exists()
    chosen = StoredObject.objects.get(sop_instance_uid=second.SOPInstanceUID).pk
    assert chosen in regs
    response = client.post(f"/incoming/{proposal.pk}/", {**form, "registration": str(chosen)})
    assert response.status_code == 302, response.content.decode()[-2000:]
    course = Course.objects.get()
    (reg_file,) = course.files.filter(path__endswith="REG.dcm")
    assert reg_file.stored_id == chosen
    event = AuditEvent.objects.get(action="confirm", object_id=str(proposal.pk))
    assert event.detail["registration"] == chosen
