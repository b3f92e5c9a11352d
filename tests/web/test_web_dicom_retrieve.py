"""Retrieve prior courses: the patient page's action queues a job; the job (called here
in-process) finds the patient's studies on a PACS (a second pynetdicom process) and moves
their RT objects to our DICOM node, whose spool receives them; all audited."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PACS = Path(__file__).resolve().parents[1] / "io" / "pacs_scp.py"


@pytest.fixture
def node_and_pacs(phantom_case, tmp_path):
    from reirrad.io.dicom_node import AllowedPeer, NodeConfig, StorageSCP

    scp = StorageSCP(NodeConfig(spool=tmp_path / "spool", port=0, allowed=(AllowedPeer("PACS"),)))
    node_port = scp.start()
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, str(PACS), str(phantom_case.parent), str(port_file),
         f"REIRRAD={node_port}"]
    )  # fmt: skip
    try:
        end = time.monotonic() + 60  # bound on start-up, not an assertion on time
        while not (port_file.exists() and port_file.read_text()):
            assert process.poll() is None and time.monotonic() < end, "the PACS did not start"
            time.sleep(0.05)
        yield tmp_path / "spool", f"PACS@127.0.0.1:{port_file.read_text()}"
    finally:
        process.kill()
        process.wait()
        scp.stop()


def test_retrieve_prior_courses_reach_our_node(
    node_and_pacs, phantom_case, department, make_user, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from django_tasks_db.models import DBTaskResult

    from reirrad.web.registry.dicom_retrieve import retrieve_prior
    from reirrad.web.registry.models import AuditEvent, Patient

    spool, settings.DICOM_PACS = node_and_pacs
    settings.DICOM_AE_TITLE = "REIRRAD"
    patient = Patient.objects.create(department=department, identifier="REIRRAD-PHANTOM")
    url = reverse("registry:retrieve_prior", args=[patient.pk])
    viewer = Client()
    viewer.force_login(make_user("viewer", "viewer", department))
    assert viewer.post(url).status_code == 403
    planner_user = make_user("planner", "planner", department)
    planner = Client()
    planner.force_login(planner_user)
    with django_capture_on_commit_callbacks(execute=True):
        assert planner.post(url).status_code == 302
    assert DBTaskResult.objects.filter(task_path__endswith="retrieve_prior_task").exists()
    assert retrieve_prior(patient.pk, planner_user.pk) == "retrieved"  # the worker's job

    sent = {}
    for p in phantom_case.parent.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        if ds.Modality != "CT":
            sent[str(ds.SOPInstanceUID)] = ds
    got = {}
    for p in spool.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            ds = pydicom.dcmread(p)
            got[str(ds.SOPInstanceUID)] = ds
    assert set(got) == set(sent)
    for uid, ds in sent.items():
        assert got[uid] == ds
    entry = AuditEvent.objects.filter(detail__kind="dicom_retrieve", detail__step="retrieved").get()
    assert sum(s["completed"] for s in entry.detail["studies"]) == len(sent)
    assert entry.username == "planner"
