"""The two send-back RTDOSEs: written on the new plan's frame and grid, re-read unchanged."""

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from reirrad.core.geometry import Dose, Grid
from reirrad.core.residual_budget import VoxelLimit, residual_budget
from reirrad.errors import InputError
from reirrad.io.dicom import read_rtdose
from reirrad.io.export import write_residual_budget, write_rtdose


def _new_plan_dose() -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID = "Send^Back", "SB1"
    ds.StudyInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    return ds


def _grid() -> Grid:
    affine = np.eye(4)
    affine[:3, :3] = np.diag([2.5, 2.0, 3.0])[::-1]  # (i, j, k) spacing 3, 2, 2.5 mm
    affine[:3, 3] = [-10.0, 5.0, 20.0]
    return Grid((2, 3, 4), affine)


def test_cumulative_and_budget_round_trip(tmp_path):
    template, plan_uid, grid = _new_plan_dose(), generate_uid(), _grid()
    eqd2 = np.linspace(0.0, 62.0, 24).reshape(grid.shape)
    cumulative = Dose.effective(grid, eqd2, "EQD2", provenance={"courses": ["c1", "c2"]})
    a = write_rtdose(
        cumulative, tmp_path / "eqd2.dcm", reference_ct=template, referenced_plan_uid=plan_uid
    )
    mask = np.zeros(grid.shape, bool)
    mask[0] = True
    # 15 Gy in 5 fx at a/b 3 is 18 Gy EQD2: limit 50, residual 32 -> budget 15 Gy;
    # one voxel already over its limit (residual 55) -> 0
    residual = np.full(grid.shape, 32.0)
    residual[0, 0, 0] = 55.0
    budget = residual_budget([VoxelLimit("cord", mask, 3.0, 50.0, residual)], grid.shape, 5)
    expected_budget = np.full(grid.shape, 15.0)  # outside the cord: the cap, 15 Gy
    expected_budget[0, 0, 0] = 0.0
    b = write_residual_budget(
        budget, grid, tmp_path / "budget.dcm", reference_ct=template, referenced_plan_uid=plan_uid
    )
    for path, expected, dose_type in ((a, eqd2, "EFFECTIVE"), (b, expected_budget, "PHYSICAL")):
        ds = pydicom.dcmread(path)
        assert ds.FrameOfReferenceUID == template.FrameOfReferenceUID
        assert ds.StudyInstanceUID == template.StudyInstanceUID
        assert ds.PatientID == "SB1"
        assert ds.DoseType == dose_type
        assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan_uid
        back = read_rtdose(path)
        assert back.grid == grid
        tolerance = float(ds.DoseGridScaling)
        np.testing.assert_allclose(back.values, expected, atol=tolerance)
        if dose_type == "PHYSICAL":
            assert "NOT A DOSE" in ds.SeriesDescription
            assert "15 Gy" in ds.DoseComment


def test_budget_without_any_limit_is_refused(tmp_path):
    grid = _grid()
    budget = residual_budget([], grid.shape, 5)
    with pytest.raises(InputError, match="no voxel has a cumulative limit"):
        write_residual_budget(
            budget, grid, tmp_path / "b.dcm", frame_of_reference_uid=generate_uid()
        )
