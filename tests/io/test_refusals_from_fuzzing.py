"""Refusals added after the long fuzz run (``scripts/fuzz.py``): each case the run found
accepted or crashing is refused here with one line naming the file and the attribute.

The inputs are copies of the two-course DICOM phantom (``conftest.phantom_case_2``) mutated
with pydicom; every command's refusal is checked through the CLI (exit 2, one line).
"""

from __future__ import annotations

import pydicom
import pytest
import yaml

from reirrad.cli import main


def _refused(capsys, args: list[str], *needles: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("reirrad: error:") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


def _mutate(path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


@pytest.fixture
def case(phantom_case_2, copy_case):
    return copy_case(phantom_case_2)


def test_contour_point_count_unlike_its_data(case, capsys):
    rs = case.parent / "course2" / "RS.dcm"

    def change(ds):
        item = ds.ROIContourSequence[0].ContourSequence[0]
        item.NumberOfContourPoints = int(item.NumberOfContourPoints) + 5

    _mutate(rs, change)
    dose = case.parent / "course2" / "RD.dcm"
    _refused(capsys, ["dvh", "--dose", str(dose), "--structures", str(rs)], "NumberOfContourPoints")


def test_contour_without_geometric_type(case, capsys):
    rs = case.parent / "course2" / "RS.dcm"
    _mutate(
        rs, lambda ds: delattr(ds.ROIContourSequence[0].ContourSequence[0], "ContourGeometricType")
    )
    dose = case.parent / "course2" / "RD.dcm"
    _refused(capsys, ["dvh", "--dose", str(dose), "--structures", str(rs)], "ContourGeometricType")


def test_undefined_dose_summation_type(case, capsys):
    dose = case.parent / "course2" / "RD.dcm"
    _mutate(dose, lambda ds: setattr(ds, "DoseSummationType", "BOGUS"))
    rs = case.parent / "course2" / "RS.dcm"
    _refused(capsys, ["dvh", "--dose", str(dose), "--structures", str(rs)], "DoseSummationType")


def test_dose_grid_moved_away_from_the_structures(case, capsys):
    dose = case.parent / "course2" / "RD.dcm"

    def change(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x + 1000.0, y, z]

    _mutate(dose, change)
    rs = case.parent / "course2" / "RS.dcm"
    _refused(capsys, ["dvh", "--dose", str(dose), "--structures", str(rs)], "outside the dose grid")
    _refused(capsys, ["accumulate", str(case)])


@pytest.mark.parametrize("keyword", ["MatrixRegistrationSequence", "MatrixType"])
def test_registration_without_its_matrix(case, capsys, keyword):
    reg = case.parent / "course1" / "REG_to_reference.dcm"

    def change(ds):
        for item in ds.RegistrationSequence:
            if keyword == "MatrixRegistrationSequence":
                del item.MatrixRegistrationSequence
            else:
                for entry in item.MatrixRegistrationSequence[0].MatrixSequence:
                    del entry.FrameOfReferenceTransformationMatrixType

    _mutate(reg, change)
    _refused(capsys, ["accumulate", str(case)], "REG_to_reference.dcm")


def test_an_unused_course_structure_set_is_still_read(case, capsys):
    """Course 1's RTSTRUCT is not the reference, but a broken one is refused, not ignored."""
    (case.parent / "course1" / "RS.dcm").write_bytes(b"")
    _refused(capsys, ["assess", str(case)], "RS.dcm")


def test_out_naming_a_file(case, capsys):
    _refused(capsys, ["accumulate", str(case), "--out", str(case)], "--out")


def test_end_cap_and_alpha_beta_bounds(case, capsys):
    dose, rs = case.parent / "course2" / "RD.dcm", case.parent / "course2" / "RS.dcm"
    _refused(
        capsys,
        ["dvh", "--dose", str(dose), "--structures", str(rs), "--end-cap", "1e30"],
        "end_cap",
    )
    data = yaml.safe_load(case.read_text())
    data["tissue_defaults"]["organ_at_risk"]["alpha_beta"] = 1e28
    case.write_text(yaml.safe_dump(data))
    _refused(capsys, ["assess", str(case)], "alpha_beta")
