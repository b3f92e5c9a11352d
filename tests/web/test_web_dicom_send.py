"""Sending an assessment's doses back: a physicist previews and confirms, the worker's two
jobs prepare and send (called here in-process), dcmtk's storescp receives them intact, and
every step is in the audit log."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import numpy as np
import pydicom
import pytest
from django.test import Client
from django.urls import reverse

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("storescp") is None, reason="dcmtk's storescp not installed"),
]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def done_phantom_assessment(phantom_case, department, make_user, settings):
    from reirrad.web.registry.assessments import start_assessment
    from reirrad.web.registry.casefile import import_case
    from reirrad.web.registry.runner import run_assessment

    settings.REPORT_PDF = "off"
    patient = import_case(phantom_case, department)
    assessment = start_assessment(
        patient, make_user("planner", "planner", department), enqueue=False
    )
    assert run_assessment(assessment.pk) == "done"
    assessment.refresh_from_db()
    return assessment


@pytest.fixture
def storescp(tmp_path):
    out = tmp_path / "received"
    out.mkdir()
    port = _free_port()
    server = subprocess.Popen(
        ["storescp", "-aet", "PLANNING", "--output-directory", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 60  # bound on start-up, not an assertion on time
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < end and server.poll() is None, "storescp did not start"
            time.sleep(0.05)
        yield f"PLANNING@127.0.0.1:{port}", out
    finally:
        server.terminate()
        server.wait()


def test_physicist_previews_confirms_and_storescp_receives_intact(
    done_phantom_assessment, department, make_user, storescp, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from django_tasks_db.models import DBTaskResult

    from reirrad.io.dicom import read_rtdose
    from reirrad.web.registry import dicom_send
    from reirrad.web.registry.models import StoredObject

    settings.DICOM_SEND_TO, received = storescp
    assessment = done_phantom_assessment
    url = reverse("registry:dicom_send", args=[assessment.pk])
    physicist = make_user("physicist", "physicist", department)
    client = _client(physicist)
    assert "Prepare the two objects" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "prepare"})
    assert DBTaskResult.objects.filter(task_path__endswith="prepare_send_task").exists()
    assert dicom_send.prepare(assessment.pk, physicist.pk) == "prepared"  # the worker's job

    page = client.get(url).content.decode()
    prepared = dicom_send.latest_preparation(assessment).detail
    shas = [o["sha256"] for o in prepared["objects"]]
    assert all(s in page for s in shas) and "EFFECTIVE" in page and "PHYSICAL" in page
    assert f"Send to {settings.DICOM_SEND_TO}" in page
    for o in prepared["objects"]:
        assert o["max_gy"] >= o["mean_gy"] > 0
    # the page shows what the stored files say: CID 7220 121377 on the cumulative EQD2 only
    cumulative, budget = prepared["objects"]
    assert "121377 Composed with radiobiological effects" in cumulative["derivation"]
    assert budget["derivation"] == [] and budget["series_description"].startswith("RESIDUAL")
    assert "121377 Composed with radiobiological effects" in page

    # not confirmed, or other objects than the preview: nothing is queued
    client.post(url, {"action": "send", "sha256": shas})
    client.post(url, {"action": "send", "sha256": shas[::-1], "reviewed": "yes"})
    assert not dicom_send.entries(assessment, "send_requested").exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "send", "sha256": shas, "reviewed": "yes"})
    assert DBTaskResult.objects.filter(task_path__endswith="send_task").count() == 2
    assert dicom_send.send(assessment.pk, shas, physicist.pk) == "sent"

    steps = [e.detail["step"] for e in dicom_send.entries(assessment)][::-1]
    assert steps == ["prepare_requested", "prepared", "send_requested", "sent"]
    sent = dicom_send.entries(assessment, "sent").first()
    assert sent.username == "physicist" and sent.action == "export"
    assert [r["status"] for r in sent.detail["results"]] == [0, 0]
    for sha in shas:
        stored = StoredObject.objects.get(sha256=sha)
        original = pydicom.dcmread(stored.path)
        (copy_path,) = [
            p for p in received.iterdir()
            if pydicom.dcmread(p).SOPInstanceUID == original.SOPInstanceUID
        ]  # fmt: skip
        copy = pydicom.dcmread(copy_path)
        assert (
            copy.FrameOfReferenceUID
            == original.FrameOfReferenceUID
            == prepared["frame_of_reference_uid"]
        )
        assert copy.DoseType == original.DoseType
        np.testing.assert_array_equal(
            read_rtdose(copy_path).values, read_rtdose(stored.path).values
        )


def test_only_a_physicist_prepares_or_sends(done_phantom_assessment, department, make_user):
    # every other role of the department, on one assessment (each run of it takes seconds)
    url = reverse("registry:dicom_send", args=[done_phantom_assessment.pk])
    for role in ("viewer", "planner", "physician"):
        client = _client(make_user(f"{role}-2", role, department))
        assert client.get(url).status_code == 200, role
        assert client.post(url, {"action": "prepare"}).status_code == 403, role


def test_an_unreachable_destination_is_an_audited_failure(
    done_phantom_assessment, department, make_user, settings
):
    from reirrad.web.registry import dicom_send

    physicist = make_user("physicist", "physicist", department)
    assert dicom_send.prepare(done_phantom_assessment.pk, physicist.pk) == "prepared"
    shas = [
        o["sha256"]
        for o in dicom_send.latest_preparation(done_phantom_assessment).detail["objects"]
    ]
    settings.DICOM_SEND_TO = f"PLANNING@127.0.0.1:{_free_port()}"
    assert dicom_send.send(done_phantom_assessment.pk, shas, physicist.pk) == "send_failed"
    failed = dicom_send.entries(done_phantom_assessment, "send_failed").first()
    assert "PLANNING@127.0.0.1" in failed.detail["reason"]
