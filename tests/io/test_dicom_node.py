"""The DICOM node on loopback: dcmtk's storescu/storescp and pynetdicom as peers.

Expected objects come from the files sent (their own UIDs, or ``uids.json`` of the shared
Eclipse example), never from what the node reports about itself.  Waiting loops poll for an
event with a generous upper bound; no assertion is about time.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from reirrad.core.dicom_groups import group_objects
from reirrad.errors import InputError
from reirrad.io.dicom_node import (
    AllowedPeer,
    NodeConfig,
    StorageSCP,
    parse_peer,
    spooled_objects,
    summarize_file,
)
from reirrad.io.dicom_scu import Peer, parse_destination, send_files
from reirrad.pipelines.dicom_intake import IntakeMonitor

LOGGER = "reirrad.dicom_node"
ECLIPSE = AllowedPeer("ECLIPSE")


def wait_for(predicate, what: str, limit_s: float = 30.0):
    """Poll until ``predicate()`` is truthy; fail (not time out silently) after ``limit_s``."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def node(tmp_path):
    """Start a Storage SCP on a free port; returns (scp, peer)."""
    started = []

    def start(allowed=(ECLIPSE,), on_stored=None, spool=None):
        config = NodeConfig(spool=spool or tmp_path / "spool", port=0, allowed=tuple(allowed))
        scp = StorageSCP(config, on_stored=on_stored)
        port = scp.start()
        started.append(scp)
        return scp, Peer("REIRRAD", "127.0.0.1", port)

    yield start
    for scp in started:
        scp.stop()


def storescu(peer: Peer, *paths, aet="ECLIPSE") -> subprocess.CompletedProcess:
    args = ["storescu", "-aet", aet, "-aec", peer.ae_title, "+sd", "+r", peer.host, str(peer.port)]
    return subprocess.run(args + [str(p) for p in paths], capture_output=True, text=True)


def phantom_files(case: Path) -> dict[str, list[Path]]:
    root = case.parent
    return {
        c.name: sorted(c.rglob("*.dcm"))
        for c in sorted(root.iterdir())
        if c.name.startswith("course")
    }


def uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def dcm_files(spool: Path) -> list[Path]:
    return sorted(p for p in spool.iterdir() if p.is_file())


# --------------------------------------------------------------------------------------


def test_phantom_sent_by_storescu_is_proposed_as_three_courses(node, phantom_case_3, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    scp, peer = node()
    courses = phantom_files(phantom_case_3)
    result = storescu(peer, *[phantom_case_3.parent / name for name in courses])
    assert result.returncode == 0, result.stderr
    n_sent = sum(len(v) for v in courses.values())
    assert len(list(spooled_objects(scp.config.spool))) == n_sent
    assert scp.counts["stored"] == n_sent
    proposed = IntakeMonitor(scp, idle_seconds=30).poll(now=math.inf)
    assert len(proposed) == 3
    by_plan = {c.plan_uid: c for c in proposed}
    reg = uid(phantom_case_3.parent / "course1" / "REG_to_reference.dcm")
    for name, fractions in zip(courses, (30, 8, 5), strict=True):
        folder = phantom_case_3.parent / name
        course = by_plan[uid(folder / "RP.dcm")]
        assert course.dose_uids == (uid(folder / "RD.dcm"),)
        assert course.structure_set_uid == uid(folder / "RS.dcm")
        assert set(course.image_uids) == {uid(p) for p in (folder / "CT").glob("*.dcm")}
        assert course.fractions == fractions
        # the REG relates course 1's frame to the reference frame shared by courses 2 and 3
        assert course.registration_uids == (reg,)
        assert course.missing == () and course.conflicts == ()
        assert course.patient_id == "REIRRAD-PHANTOM"
    assert sum("stored CT" in r.getMessage() for r in caplog.records) == 120


def test_eclipse_prostate_sent_by_pynetdicom_is_one_course(node, eclipse_prostate):
    expected = json.loads((eclipse_prostate / "uids.json").read_text())
    scp, peer = node()
    files = [eclipse_prostate / n for n in ("RP.dcm", "RD.dcm", "RS.dcm")]
    files += sorted((eclipse_prostate / "CT").glob("*.dcm"))
    results = send_files(files, peer, calling_ae="ECLIPSE")
    assert all(r.ok for r in results) and len(results) == len(files)
    summaries = [summarize_file(p) for p in spooled_objects(scp.config.spool)]
    (course,) = group_objects(summaries)
    assert course.plan_uid == expected["rtplan"]["sop_instance_uid"]
    assert course.dose_uids == (expected["rtdose"]["sop_instance_uid"],)
    assert course.structure_set_uid == expected["rtstruct"]["sop_instance_uid"]
    assert course.image_series_uid == expected["ct"]["series_instance_uid"]
    assert set(course.image_uids) == {s["sop_instance_uid"] for s in expected["ct"]["slices"]}
    assert course.fractions == 23  # 23 x 2 Gy (shared data README)
    assert course.patient_id == expected["patient_id"]
    assert course.missing == ()


def test_wrong_calling_ae_title_and_host_are_refused(node, phantom_case_3, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    scp, peer = node()
    ct = sorted((phantom_case_3.parent / "course3" / "CT").glob("*.dcm"))[:2]
    result = storescu(peer, *ct, aet="INTRUDER")
    assert result.returncode != 0
    assert "Association Rejected" in result.stderr
    assert "refused association from INTRUDER@127.0.0.1: unknown calling AE title" in caplog.text
    with pytest.raises(InputError, match="rejected the association"):
        send_files(ct, peer, calling_ae="INTRUDER")
    assert dcm_files(scp.config.spool) == []

    scp2, peer2 = node(allowed=(AllowedPeer("ECLIPSE", "10.255.255.1"),), spool=scp.config.spool)
    with pytest.raises(InputError, match="rejected the association"):
        send_files(ct, peer2, calling_ae="ECLIPSE")
    assert "host 127.0.0.1 is not allowed for ECLIPSE" in caplog.text
    assert dcm_files(scp.config.spool) == []


def test_unsupported_sop_class_is_refused_and_the_rest_stored(
    node, phantom_case_3, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger=LOGGER)
    scp, peer = node()
    sc = Dataset()
    sc.file_meta = FileMetaDataset()
    sc.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sc.SOPClassUID = SecondaryCaptureImageStorage
    sc.SOPInstanceUID = generate_uid()
    sc.file_meta.MediaStorageSOPClassUID = sc.SOPClassUID
    sc.file_meta.MediaStorageSOPInstanceUID = sc.SOPInstanceUID
    sc.Modality = "OT"
    sc.PatientID = "X"
    sc_path = tmp_path / "sc.dcm"
    sc.save_as(sc_path, enforce_file_format=True)
    ct = sorted((phantom_case_3.parent / "course3" / "CT").glob("*.dcm"))[0]
    refused, stored = send_files([sc_path, ct], peer, calling_ae="ECLIPSE")
    assert not refused.ok and refused.status is None
    assert stored.ok
    assert [p.name for p in dcm_files(scp.config.spool)] == [f"{uid(ct)}.dcm"]
    assert (
        "refused presentation contexts from ECLIPSE@127.0.0.1 (SOP class not accepted): "
        "Secondary Capture Image Storage\n" in caplog.text
    )


def test_garbage_leaves_nothing_and_the_node_keeps_working(node, phantom_case_3, tmp_path):
    scp, peer = node()
    with socket.create_connection((peer.host, peer.port)) as s:
        s.sendall(b"\x01\x00GET / HTTP/1.1\r\n\r\n" + os.urandom(4096))
    not_dicom = tmp_path / "not_dicom.dcm"
    not_dicom.write_bytes(os.urandom(2048))
    result = storescu(peer, not_dicom)
    assert result.returncode != 0  # dcmtk refuses to send it
    assert dcm_files(scp.config.spool) == []
    ct = sorted((phantom_case_3.parent / "course3" / "CT").glob("*.dcm"))[0]
    (ok,) = send_files([ct], peer, calling_ae="ECLIPSE")
    assert ok.ok
    assert [p.name for p in dcm_files(scp.config.spool)] == [f"{uid(ct)}.dcm"]


_SLOW_SENDER = r"""
import sys, time
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.transport import AssociationSocket

original = AssociationSocket.send
def slow(self, data):  # a slow link: 64 KiB every 50 ms
    for i in range(0, len(data), 65536):
        original(self, data[i:i + 65536])
        time.sleep(0.05)
AssociationSocket.send = slow

ds = Dataset()
ds.file_meta = FileMetaDataset()
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sys.argv[3]
ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", "K", "1.9", "1.9.1"
ds.Rows = ds.Columns = 2048
ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
ds.PixelData = np.zeros((2048, 2048), "<i2").tobytes()
ae = AE("ECLIPSE")
ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title=sys.argv[2])
print("SENDING", flush=True)
assoc.send_c_store(ds)
"""


def test_sender_killed_mid_transfer_leaves_nothing_half_written(node, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    scp, peer = node()
    uid_ = generate_uid()
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SENDER, str(peer.port), peer.ae_title, uid_],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "SENDING"
    # 8 MiB at 64 KiB per 50 ms takes over 6 s: the kill lands in the middle of the transfer
    time.sleep(1.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    wait_for(lambda: "aborted" in caplog.text, "the node to log the aborted association")
    assert list(scp.config.spool.iterdir()) == []  # no object, no temporary file
    assert scp.counts["stored"] == 0


def test_same_objects_twice_are_stored_once_and_a_changed_one_kept_beside(
    node, phantom_case_3, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger=LOGGER)
    scp, peer = node()
    folder = phantom_case_3.parent / "course3"
    files = [folder / "RP.dcm", folder / "RD.dcm", folder / "RS.dcm"]
    assert all(r.ok for r in send_files(files, peer, calling_ae="ECLIPSE"))
    first = {p.name: p.read_bytes() for p in dcm_files(scp.config.spool)}
    assert all(r.ok for r in send_files(files, peer, calling_ae="ECLIPSE"))
    assert {p.name: p.read_bytes() for p in dcm_files(scp.config.spool)} == first
    assert scp.counts == {"stored": 3, "duplicate": 3, "conflict": 0, "refused": 0}
    assert caplog.text.count("duplicate RT") == 3

    changed = pydicom.dcmread(folder / "RP.dcm")
    changed.RTPlanLabel = "EDITED"
    changed_path = tmp_path / "RP_edited.dcm"
    changed.save_as(changed_path)
    (result,) = send_files([changed_path], peer, calling_ae="ECLIPSE")
    assert result.ok
    plan_uid = str(changed.SOPInstanceUID)
    assert (scp.config.spool / f"{plan_uid}.dcm").read_bytes() == first[f"{plan_uid}.dcm"]
    (kept,) = scp.config.spool.glob(f"{plan_uid}.conflict-*.dcm")
    assert pydicom.dcmread(kept).RTPlanLabel == "EDITED"
    assert "conflict: RTPLAN" in caplog.text
    (course,) = IntakeMonitor(scp).poll(now=math.inf)
    assert course.plan_label == pydicom.dcmread(folder / "RP.dcm").RTPlanLabel  # the first
    assert any(plan_uid in c and "different contents" in c for c in course.conflicts)


def test_on_stored_gets_each_new_object_and_its_failure_loses_nothing(
    node, phantom_case_3, tmp_path
):
    seen = []

    def register(path, summary):
        seen.append((path, summary))
        raise RuntimeError("registry down")

    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / ".incoming-leftover.part").write_bytes(b"half")  # a write interrupted by a crash
    scp, peer = node(on_stored=register, spool=spool)
    assert not (spool / ".incoming-leftover.part").exists()
    rd = phantom_case_3.parent / "course2" / "RD.dcm"
    (result,) = send_files([rd], peer, calling_ae="ECLIPSE")
    assert result.ok
    ((path, summary),) = seen
    assert path == spool / f"{uid(rd)}.dcm" and path.exists()
    assert summary.modality == "RTDOSE" and summary.sop_instance_uid == uid(rd)
    assert [p.name for p in spooled_objects(spool)] == [path.name]  # the queue still has it


def test_send_back_reaches_dcmtk_storescp_intact(phantom_case_3, tmp_path):
    out = tmp_path / "received"
    out.mkdir()
    port = free_port()
    server = subprocess.Popen(
        ["storescp", "-aet", "PLANNING", "--output-directory", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, "storescp to listen")
        folder = phantom_case_3.parent / "course1"
        files = [folder / "RD.dcm", folder / "RP.dcm", folder / "REG_to_reference.dcm"]
        peer = parse_destination(f"PLANNING@127.0.0.1:{port}")
        results = send_files(files, peer)
        assert [r.status for r in results] == [0, 0, 0]
    finally:
        server.terminate()
        server.wait()
    for sent in files:
        original = pydicom.dcmread(sent)
        (received,) = [
            p for p in out.iterdir() if pydicom.dcmread(p).SOPInstanceUID == original.SOPInstanceUID
        ]
        copy = pydicom.dcmread(received)
        assert copy == original  # every data element, value for value
        if "PixelData" in original:
            np.testing.assert_array_equal(copy.pixel_array, original.pixel_array)
            assert copy.DoseGridScaling == original.DoseGridScaling


def test_peer_strings():
    assert parse_peer("ECLIPSE@10.0.0.5") == AllowedPeer("ECLIPSE", "10.0.0.5")
    assert parse_peer("ECLIPSE") == AllowedPeer("ECLIPSE", None)
    assert parse_destination("TPS@example.org:104") == Peer("TPS", "example.org", 104)
    for bad in ("TPS@host", "@host:104", "TPS@host:port", "TPS@host:0", "A" * 17 + "@h:1"):
        with pytest.raises(InputError, match="--to"):
            parse_destination(bad)
    with pytest.raises(InputError, match="--allow"):
        parse_peer("@host")
    with pytest.raises(InputError, match="not an IP address"):
        parse_peer("ECLIPSE@tps.example.org")


def test_dcmtk_is_installed():
    # CI installs dcmtk through scripts/system-deps.sh; a missing tool is a set-up error
    assert shutil.which("storescu") and shutil.which("storescp"), "run scripts/system-deps.sh"


def _copy_with_uids(source: Path, target: Path, *, meta_uid: str, dataset_uid: str) -> Path:
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = dataset_uid
    ds.file_meta.MediaStorageSOPInstanceUID = meta_uid
    ds.save_as(target, enforce_file_format=False)
    return target


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_a_uid_that_is_no_uid_is_refused_and_names_no_path(node, phantom_case_3, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    scp, peer = node()
    ct = sorted((phantom_case_3.parent / "course3" / "CT").glob("*.dcm"))[0]
    traversal = "1.2.3/../../../escape"
    escape = _copy_with_uids(ct, tmp_path / "b.dcm", meta_uid=traversal, dataset_uid=traversal)
    (result,) = send_files([escape], peer, calling_ae="ECLIPSE")
    assert result.status == 0xC000  # PS3.4 B.2.3: Error, Cannot understand
    assert list(scp.config.spool.iterdir()) == []
    assert not any(p.name.startswith("escape") for p in tmp_path.rglob("*"))
    assert f"refused C-STORE of {traversal} from ECLIPSE@127.0.0.1: 0xC000" in caplog.text


def _record(sop_class: str, plan: Dataset, **dates) -> Dataset:
    """A minimal treatment record referring to ``plan`` (PS3.3 RT General Treatment Record
    Module: Referenced RT Plan Sequence, Treatment Date; Summary Record: First/Most Recent
    Treatment Date)."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.Modality = "RTRECORD"
    for key in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID"):
        setattr(ds, key, plan.get(key, ""))
    ds.SeriesInstanceUID = generate_uid()
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = plan.SOPClassUID, plan.SOPInstanceUID
    ds.ReferencedRTPlanSequence = [ref]
    for key, value in dates.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = (
        sop_class,
        ds.SOPInstanceUID,
    )
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_brachy_and_summary_treatment_records_date_the_course(node, phantom_case_3, tmp_path):
    from pydicom.uid import RTBrachyTreatmentRecordStorage, RTTreatmentSummaryRecordStorage

    files = phantom_files(phantom_case_3)["course1"]
    plan = pydicom.dcmread(next(p for p in files if p.name == "RP.dcm"))
    brachy = _record(RTBrachyTreatmentRecordStorage, plan, TreatmentDate="20200110")
    summary = _record(
        RTTreatmentSummaryRecordStorage,
        plan,
        FirstTreatmentDate="20200106",
        MostRecentTreatmentDate="20200214",
    )
    paths = []
    for name, ds in (("brachy.dcm", brachy), ("summary.dcm", summary)):
        ds.save_as(tmp_path / name, enforce_file_format=True)
        paths.append(tmp_path / name)
    scp, peer = node()
    results = send_files(files + paths, peer, calling_ae="ECLIPSE")
    assert all(r.ok for r in results) and len(results) == len(files) + 2
    summaries = [summarize_file(p) for p in spooled_objects(scp.config.spool)]
    (course,) = group_objects(summaries)
    assert set(course.record_uids) == {brachy.SOPInstanceUID, summary.SOPInstanceUID}
    # the dates written above, earliest and latest
    assert (course.start, course.end) == ("20200106", "20200214")
    assert course.date_source == "treatment records"
