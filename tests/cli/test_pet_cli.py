"""``reirrad pet`` end to end on a synthetic PET with known activity and a known old dose."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reirrad.cli import main
from reirrad.core.geometry import Dose, Grid
from reirrad.io.export import write_rtdose
from reirrad.io.pet import read_pet_series
from reirrad.io.pet_writer import write_pet_series


@pytest.fixture(scope="module")
def pet_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("petcase")
    grid = Grid.from_axes(origin=(-40.0, -40.0, -40.0), spacing=(4.0, 4.0, 4.0), shape=(21, 21, 21))
    k, j, i = np.indices(grid.shape)
    hot = (abs(i - 10) <= 2) & (abs(j - 10) <= 2) & (abs(k - 10) <= 2)  # 5x5x5 voxels = 8 cm^3
    per_suv = 3.7e8 * 2 ** (-3600 / 6586.2) / 70000.0
    write_pet_series(root / "pet", per_suv * np.where(hot, 8.0, 1.0), grid)
    frame = read_pet_series(root / "pet").frame_of_reference_uid
    # earlier course: 70 Gy for x < 0 (i < 10), 0 beyond: the hot cube is 2/5 inside
    values = np.where(i < 10, 70.0, 0.0)
    write_rtdose(
        Dose.physical(grid, values, fractions=35), root / "RD.dcm", frame_of_reference_uid=frame
    )
    return root


def test_pet_box_threshold_and_site(pet_case, capsys):
    code = main([
        "pet", str(pet_case / "pet"), "--box", "-20:20,-20:20,-20:20", "--threshold", "40%",
        "--dose", str(pet_case / "RD.dcm"), "--prescription", "70", "--format", "json",
    ])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["suv_max"] == pytest.approx(8.0, rel=1e-3)
    assert out["threshold_volume_cc"] == pytest.approx(125 * 0.064)
    site = out["recurrence_site"]
    assert site["share_treated"] == pytest.approx(0.4)
    assert site["volume_class"] == "marginal"
    assert site["centroid_inside"] is False  # the centre (x = 0) sits on the 35 Gy midpoint
    assert "Ferreira" in site["citation"]


@pytest.mark.parametrize(
    "args",
    [
        ["--threshold", "abc", "--box", "-20:20,-20:20,-20:20"],
        ["--box", "500:600,0:1,0:1"],
        ["--box", "-20:20,-20:20,-20:20", "--dose", "RD.dcm"],
        ["--box", "-20:20,-20:20,-20:20", "--format", "xml"],
        ["--roi", "GTV"],
    ],
)
def test_pet_refusals_one_line(pet_case, capsys, args, monkeypatch):
    monkeypatch.chdir(pet_case)
    code = main(["pet", str(pet_case / "pet"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("reirrad: error:")


def test_registration_maps_dose_and_contours(pet_case, tmp_path, capsys):
    from reirrad.io.dicom import read_rtstruct
    from reirrad.io.registration_io import write_spatial_registration

    pet = read_pet_series(pet_case / "pet")
    # the planning frame is the PET frame shifted 10 mm along x: x_plan = x_pet + 10
    matrix = np.eye(4)
    matrix[0, 3] = 10.0
    planning_frame = "1.2.826.0.1.3680043.8.498.777"
    reg = write_spatial_registration(
        tmp_path / "REG.dcm", matrix, moving_frame_uid=pet.frame_of_reference_uid,
        reference_frame_uid=planning_frame,
    )  # fmt: skip
    plan_grid = Grid.from_axes(
        origin=(-30.0, -40.0, -40.0), spacing=(4.0, 4.0, 4.0), shape=(21, 21, 21)
    )
    x = plan_grid.index_to_patient(np.stack(np.indices(plan_grid.shape)[::-1], axis=-1))[..., 0]
    values = np.where(x < 8.0, 70.0, 0.0)  # x_plan < 8 <=> x_pet < -2: 2 of the 5 hot columns
    write_rtdose(
        Dose.physical(plan_grid, values, fractions=35), tmp_path / "RD.dcm",
        frame_of_reference_uid=planning_frame,
    )  # fmt: skip
    box = ["--box", "-20:20,-20:20,-20:20", "--threshold", "40%"]
    code = main([
        "pet", str(pet_case / "pet"), *box, "--dose", str(tmp_path / "RD.dcm"),
        "--prescription", "70", "--registration", str(reg), "--rtstruct", str(tmp_path / "RS.dcm"),
        "--format", "json",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["recurrence_site"]["share_treated"] == pytest.approx(0.4)
    written = read_rtstruct(tmp_path / "RS.dcm")
    assert written.frame_of_reference_uid == planning_frame
    (structure,) = written.structures.values()
    low, high = structure.bounds
    # hot cube spans x_pet -10..10 mm (voxel edges); contours run through edge midpoints
    assert (low[0], high[0]) == pytest.approx((0.0, 20.0), abs=2.01)
    assert (low[0] + high[0]) / 2 == pytest.approx(10.0)
    # without the registration the dose in the planning frame is refused
    assert main(["pet", str(pet_case / "pet"), *box, "--dose", str(tmp_path / "RD.dcm"),
                 "--prescription", "70"]) == 2  # fmt: skip
