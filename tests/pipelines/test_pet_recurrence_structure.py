"""The PET threshold ROI as the recurrence (target) structure of a voxel-wise run.

A synthetic FDG PET (io.pet_writer.write_pet_series) on the planning CT's frame holds a sphere
of known activity (SUV 10 on a background of 1) where the phantom's newest course aims; the
threshold ROI that `reirrad pet` writes (half-way, SUV 5.5) is declared in the case file
through ``dicom.extra_rtstructs`` and evaluated voxel-wise. Its cumulative EQD2 is checked
against the analytic dose of the phantom (io.phantom.Phantom.physical_dose) over the true
sphere; the ROI itself is the sphere to within the partial-volume error of 4 mm voxels
(about 2 % in volume at this radius), so the dose agrees to 2 %.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
import yaml

from reirrad.core.geometry import Grid
from reirrad.core.radiobiology import eqd2
from reirrad.errors import InputError
from reirrad.io.pet_writer import write_pet_series
from reirrad.io.phantom import default_phantom, write_phantom_case
from reirrad.pipelines.accumulate import accumulate_case
from reirrad.pipelines.pet import measure_pet

AB = 3.0
CENTRE, RADIUS = (0.0, 0.0, 5.0), 15.0
F18_HALF_LIFE_S = 6586.2  # the writer's default: decay to the scan start (START)


def _sphere_fraction(grid: Grid, samples: int = 6) -> np.ndarray:
    """Share of each voxel inside the sphere, by sub-sampling (the known activity)."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    k, j, i = np.indices(grid.shape, dtype=float)
    inside = np.zeros(grid.shape)
    for dz in offsets:
        for dy in offsets:
            for dx in offsets:
                x = grid.origin[0] + (i + dx) * grid.spacing[0] - CENTRE[0]
                y = grid.origin[1] + (j + dy) * grid.spacing[1] - CENTRE[1]
                z = grid.origin[2] + (k + dz) * grid.spacing[2] - CENTRE[2]
                inside += x * x + y * y + z * z <= RADIUS * RADIUS
    return inside / samples**3


@pytest.fixture(scope="module")
def pet_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("pet-phantom")
    write_phantom_case(default_phantom(3), root)
    frame = pydicom.dcmread(root / "course3" / "RS.dcm").ReferencedFrameOfReferenceSequence[0]
    grid = Grid.from_axes(origin=(-60.3, -59.3, -55.5), spacing=(4.0, 4.0, 4.0), shape=(31, 31, 31))
    weight, injected = 70.0, 3.7e8
    per_suv = injected * 2.0 ** (-3600.0 / F18_HALF_LIFE_S) / (weight * 1000.0)
    activity = per_suv * (1.0 + 9.0 * _sphere_fraction(grid))
    write_pet_series(
        root / "pet", activity, grid, weight_kg=weight, injected_bq=injected,
        extra={"FrameOfReferenceUID": frame.FrameOfReferenceUID},
    )  # fmt: skip
    measured = measure_pet(
        root / "pet", box="-40:40,-40:40,-35:45", threshold="5.5",
        rtstruct_out=root / "pet-roi.dcm",
    )  # fmt: skip
    roi = pydicom.dcmread(root / "pet-roi.dcm").StructureSetROISequence[0].ROIName
    courses = []
    for number, (start, end, fractions) in {
        2: ("2019-06-01", "2019-06-12", 8), 3: ("2023-09-01", "2023-09-08", 5)
    }.items():  # fmt: skip
        dicom = {
            "rtdose": f"course{number}/RD.dcm",
            "rtstruct": f"course{number}/RS.dcm",
            "rtplan": f"course{number}/RP.dcm",
        }
        if number == 3:
            dicom |= {"extra_rtstructs": ["pet-roi.dcm"], "structure_map": {"rGTV_PET": roi}}
        courses.append({"id": f"C{number}", "start": start, "end": end,
                        "fractions": fractions, "dicom": dicom})  # fmt: skip
    case = {
        "reirrad_case": 1,
        "patient": {"id": "PET-PHANTOM"},
        "tissue_defaults": {
            "target": {"alpha_beta": AB, "recovery": "none"},
            "organ_at_risk": {"alpha_beta": AB, "recovery": "none"},
        },
        "structures": [
            {
                "name": "rGTV_PET",
                "role": "target",
                "note": f"PET threshold ROI: {measured.threshold.describe()}",
            },
            {"name": "SpinalCanal", "role": "organ_at_risk", "organ": "spinal_cord"},
        ],  # fmt: skip
        "courses": courses,
        "analysis": {"reference_course": "C3"},
    }
    path = root / "case.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path, measured


def test_pet_threshold_roi_is_the_voxel_wise_target(pet_case):
    path, measured = pet_case
    # the threshold volume is the sphere's to within the 4 mm partial-volume error
    assert measured.threshold_volume_cc == pytest.approx(4 / 3 * np.pi * RADIUS**3 / 1000, rel=0.03)
    result = accumulate_case(path)
    phantom = default_phantom(3)
    axes = [np.arange(c - RADIUS + 0.25, c + RADIUS, 0.5) for c in CENTRE]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    pts = pts[np.sum((pts - CENTRE) ** 2, axis=1) <= RADIUS**2]
    exact = sum(
        eqd2(phantom.physical_dose(c, pts), phantom.courses[c].fractions, AB) for c in (1, 2)
    )
    target = result.structure("rGTV_PET")
    assert target.metric("Dmean").eqd2_gy == pytest.approx(exact.mean(), rel=0.02)
    # the threshold rule and its region are stated with the result
    rule = "PET SUVbw >= 5.5"
    assert any(rule in a and "inside box" in a for a in result.assumptions), result.assumptions


def test_extra_rtstruct_on_another_frame_or_with_a_name_twice_is_refused(pet_case, tmp_path):
    path, _ = pet_case
    root = path.parent
    data = yaml.safe_load(path.read_text())
    # the ROI names of the course's own RTSTRUCT again: ambiguous
    data["courses"][1]["dicom"]["extra_rtstructs"] = ["course3/RS.dcm"]
    twice = root / "case-twice.yaml"
    twice.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InputError, match="also in another RTSTRUCT"):
        accumulate_case(twice)
    # course 1's RTSTRUCT is on its own frame
    data["courses"][1]["dicom"]["extra_rtstructs"] = ["course1/RS.dcm"]
    other = root / "case-frame.yaml"
    other.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(InputError, match="reirrad pet --registration"):
        accumulate_case(other)
    shutil.rmtree(tmp_path, ignore_errors=True)
