"""Query/retrieve of a prior patient's RT objects from a PACS: a second pynetdicom process.

The "PACS" (``pacs_scp.py``) serves the three-course phantom; what is found and fetched is
compared with the phantom's own files.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from reirrad.errors import InputError
from reirrad.io.dicom_scu import Peer, find_studies, retrieve_study

PACS = Path(__file__).with_name("pacs_scp.py")


@pytest.fixture
def pacs(phantom_case_3, tmp_path):
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [sys.executable, str(PACS), str(phantom_case_3.parent), str(port_file)]
    )
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
