"""The RTDOSE objects reirrad writes, checked by David Clunie's dciodvfy (dicom3tools).

dciodvfy checks an object against the IOD and module tables of the DICOM standard it was
built from (Debian's dicom3tools 1.00~20220618). Its build asserts on 32-bit pixel data, so
the check runs on a copy without Pixel Data (16 bits declared); the errors that the removal
itself causes (Pixel Data missing, image attributes "present when condition unsatisfied") are
set aside, every other error fails the test. Attributes outside the IOD must be exactly the
Radiobiological Dose Effect Sequence and its items (a Standard Extended SOP Instance, as
reirrad.io.export says); the CID 7220 Derivation Code Sequence and the Referenced Instance
Sequence are part of the RT Dose IOD.
"""

import re
import shutil
import subprocess

import pydicom
import pytest

from reirrad.pipelines.send_back import write_send_back

pytestmark = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dicom3tools missing: scripts/system-deps.sh"
)

# errors caused by removing the pixel data for the check, not by the writer
_STRIPPING = re.compile(r"PixelData|condition unsatisfied")
# attributes the writer knowingly adds outside the classic RT Dose IOD
_EXTENDED = {
    "(0x3010,0x0001)",  # Radiobiological Dose Effect Sequence
    "(0x3010,0x0002)",
    "(0x3010,0x0003)",
    "(0x3010,0x0004)",
    "(0x3010,0x0005)",
    "(0x0008,0x0100)",  # Code Value, Scheme, Meaning of the items in that sequence
    "(0x0008,0x0102)",
    "(0x0008,0x0104)",
}


def _dciodvfy(path, tmp_path):
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    copy = tmp_path / f"{path.stem}-nopixels.dcm"
    ds.save_as(copy)
    out = subprocess.run(["dciodvfy", str(copy)], capture_output=True, text=True, timeout=60)
    return (out.stdout + out.stderr).splitlines()


@pytest.fixture(scope="module")
def sent(phantom_case_3, tmp_path_factory):
    """The two send-back RTDOSEs of the three-course phantom, written once."""
    return write_send_back(phantom_case_3, tmp_path_factory.mktemp("send_back"))


@pytest.mark.parametrize("which", ["cumulative", "budget"])
def test_send_back_rtdose_against_the_iod(sent, tmp_path, which):
    path = sent.cumulative_path if which == "cumulative" else sent.budget_path
    lines = _dciodvfy(path, tmp_path)
    assert "RTDose" in [line.strip() for line in lines]  # recognised as the RT Dose IOD
    errors = [line for line in lines if line.startswith("Error") and not _STRIPPING.search(line)]
    assert errors == []
    outside = {
        re.search(r"\(0x[0-9a-f]{4},0x[0-9a-f]{4}\)", line).group(0)
        for line in lines
        if "Attribute is not present in standard DICOM IOD" in line
    }
    if which == "cumulative":
        assert outside == _EXTENDED
        assert "DerivationCodeSequence" in pydicom.dcmread(path, stop_before_pixels=True)
    else:
        assert outside == set()  # a PHYSICAL dose: nothing outside the IOD
