"""Query/retrieve of a prior patient's RT objects from a PACS: a second pynetdicom process.

The "PACS" (``pacs_scp.py``) serves the three-course phantom; what is found and fetched is
compared with the phantom's own files.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from reirrad.errors import InputError
from reirrad.io.dicom_node import AllowedPeer, NodeConfig, StorageSCP
from reirrad.io.dicom_scu import Peer, find_studies, move_study, retrieve_study

PACS = Path(__file__).with_name("pacs_scp.py")


@contextlib.contextmanager
def _start_pacs(folder: Path, tmp_path: Path, *extra: str):
    port_file = tmp_path / "port"
    process = subprocess.Popen([sys.executable, str(PACS), str(folder), str(port_file), *extra])
    try:
        end = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text()):
            if process.poll() is not None or time.monotonic() > end:
                pytest.fail("the PACS process did not start")
            time.sleep(0.05)
        yield Peer("PACS", "127.0.0.1", int(port_file.read_text()))
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def pacs(phantom_case_3, tmp_path):
    with _start_pacs(phantom_case_3.parent, tmp_path) as peer:
        yield peer


@pytest.fixture
def node_and_pacs(phantom_case_3, tmp_path):
    """Our Storage SCP (accepting the PACS's calling AE) and a PACS that knows it as REIRRAD."""
    scp = StorageSCP(NodeConfig(spool=tmp_path / "spool", port=0, allowed=(AllowedPeer("PACS"),)))
    port = scp.start()
    try:
        with _start_pacs(phantom_case_3.parent, tmp_path, f"REIRRAD={port}") as peer:
            yield scp, peer
    finally:
        scp.stop()


def headers(folder: Path) -> dict[str, pydicom.Dataset]:
    out = {}
    for p in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(p)
        out[str(ds.SOPInstanceUID)] = ds
    return out


def test_find_and_retrieve_the_rt_objects_of_a_prior_course(pacs, phantom_case_3, tmp_path):
    studies = find_studies(pacs, "REIRRAD-PHANTOM")
    assert [s.study_date for s in studies] == ["20160301", "20190601", "20230901"]
    assert all(s.patient_id == "REIRRAD-PHANTOM" for s in studies)
    first = studies[0]
    assert set(first.modalities) == {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "REG"}

    received = retrieve_study(pacs, first.study_uid, tmp_path / "prior")
    sent = headers(phantom_case_3.parent / "course1")
    expected = {uid for uid, ds in sent.items() if ds.Modality != "CT"}
    got = headers(tmp_path / "prior")
    assert set(got) == expected and len(received) == len(expected)
    for uid in expected:
        assert got[uid] == sent[uid]  # every data element, value for value

    everything = retrieve_study(pacs, first.study_uid, tmp_path / "all", modalities=None)
    assert len(everything) == len(sent)


def test_an_unknown_patient_finds_nothing_and_wildcards_are_refused(pacs):
    assert find_studies(pacs, "NOBODY") == []
    with pytest.raises(InputError, match="no wildcards"):
        find_studies(pacs, "REIRRAD*")


def test_a_wrong_pacs_address_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="could not be reached|cannot connect"):
        find_studies(Peer("PACS", "127.0.0.1", 1), "X")


def test_move_the_rt_objects_of_a_prior_course_to_our_own_node(
    node_and_pacs, phantom_case_3, tmp_path
):
    _scp, pacs = node_and_pacs
    first = find_studies(pacs, "REIRRAD-PHANTOM")[0]
    results = move_study(pacs, first.study_uid, "REIRRAD")
    sent = headers(phantom_case_3.parent / "course1")
    expected = {uid for uid, ds in sent.items() if ds.Modality != "CT"}
    assert sum(r.completed for r in results) == len(expected)
    assert all(r.failed == 0 and r.status == 0 for r in results)
    got = {}
    for p in (tmp_path / "spool").rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            ds = pydicom.dcmread(p)
            got[str(ds.SOPInstanceUID)] = ds
    assert set(got) == expected
    for uid in expected:
        assert got[uid] == sent[uid]  # every data element, value for value


def test_move_to_a_destination_the_pacs_does_not_know_is_named(node_and_pacs):
    _scp, pacs = node_and_pacs
    first = find_studies(pacs, "REIRRAD-PHANTOM")[0]
    with pytest.raises(InputError, match="0xA801 the move destination is unknown"):
        move_study(pacs, first.study_uid, "ELSEWHERE")
