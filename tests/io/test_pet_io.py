"""PET reading and SUV: the real FDG series against its header by hand; synthetic series
with known activity; refusals of headers that give no SUV."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pydicom
import pytest

from reirrad.core.dvh import structure_occupancy
from reirrad.core.geometry import Grid
from reirrad.core.pet import ThresholdRule, threshold_volume, uptake_statistics
from reirrad.core.tissue import membership
from reirrad.errors import InputError
from reirrad.io.dicom import read_rtstruct
from reirrad.io.pet import read_pet_series
from reirrad.io.pet_writer import write_pet_series, write_rtstruct_rois

F18_HALF_LIFE_S = 6586.2


@pytest.fixture(scope="module")
def sts_pet(shared_data):
    folder = shared_data / "tcia-sts-pet" / "STS_001" / "FDG_PET"
    if not folder.exists():
        pytest.skip("shared STS PET not present")
    return folder


@pytest.fixture(scope="module")
def sts_series(sts_pet):
    return read_pet_series(sts_pet / "image")


def test_real_pet_suv_equals_hand_calculation(sts_pet, sts_series):
    # Typed in from the header (see ../shared/data/README.md): 71 kg, 3.88777472E8 Bq
    # injected at 10:35:00, half-life 6588 s, DecayCorrection START, series 11:20:11.
    decay_s = (11 * 3600 + 20 * 60 + 11) - (10 * 3600 + 35 * 60)
    assert decay_s == 2711
    decayed = 3.88777472e8 * 2.0 ** (-decay_s / 6588.0)
    factor = 71.0 * 1000.0 / decayed
    suv = sts_series.suv()
    k, j, i = np.unravel_index(int(np.argmax(sts_series.values)), suv.shape)
    raw = pydicom.dcmread(sts_series.sources[k])
    hand = float(raw.pixel_array[j, i]) * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    assert suv[k, j, i] == pytest.approx(hand * factor, rel=1e-3)
    assert sts_series.calibration.elapsed_s[0] == decay_s


def test_real_pet_gtv_suvmax_at_its_voxel(sts_pet, sts_series):
    structures = read_rtstruct(sts_pet / "mask" / "1-1.dcm")
    assert structures.frame_of_reference_uid == sts_series.frame_of_reference_uid
    region = membership(structure_occupancy(structures.get("GTV_Mass"), sts_series.grid))
    stats = uptake_statistics(sts_series.suv(), sts_series.grid, region)
    # the voxel reported as SUVmax, recomputed from its slice file by hand
    ijk = sts_series.grid.patient_to_index(np.array(stats.suv_max_position_mm))
    i, j, k = (int(round(v)) for v in ijk)
    raw = pydicom.dcmread(sts_series.sources[k])
    decayed = 3.88777472e8 * 2.0 ** (-2711 / 6588.0)
    hand = float(raw.pixel_array[j, i]) * float(raw.RescaleSlope) * 71000.0 / decayed
    assert stats.suv_max == pytest.approx(hand, rel=1e-3)
    assert stats.suv_peak is not None and stats.suv_mean < stats.suv_peak < stats.suv_max
    # the whole image's maximum lies elsewhere (README: restrict SUVmax to a region)
    assert sts_series.suv().max() > 2 * stats.suv_max


def _sphere_fraction(grid: Grid, centre, radius, samples=6):
    """Fraction of each voxel inside a sphere, by sub-sampling (the known activity)."""
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    spacing = grid.spacing
    k, j, i = np.indices(grid.shape, dtype=float)
    inside = np.zeros(grid.shape)
    for dz in offsets:
        for dy in offsets:
            for dx in offsets:
                x = grid.origin[0] + (i + dx) * spacing[0] - centre[0]
                y = grid.origin[1] + (j + dy) * spacing[1] - centre[1]
                z = grid.origin[2] + (k + dz) * spacing[2] - centre[2]
                inside += (x * x + y * y + z * z) <= radius * radius
    return inside / samples**3


@pytest.fixture(scope="module")
def sphere_pet(tmp_path_factory):
    grid = Grid.from_axes(origin=(-60.0, -60.0, -60.0), spacing=(4.0, 4.0, 4.0), shape=(31, 31, 31))
    radius = 15.0
    fraction = _sphere_fraction(grid, (0.3, -0.7, 0.5), radius)
    weight, injected = 70.0, 3.7e8
    # the sphere at SUV 10, background at SUV 1, both at the scan time (decay to START)
    elapsed = 3600.0
    at_scan = injected * 2.0 ** (-elapsed / F18_HALF_LIFE_S)
    per_suv = at_scan / (weight * 1000.0)  # Bq/ml that make SUV 1
    activity = per_suv * (1.0 + 9.0 * fraction)
    folder = tmp_path_factory.mktemp("sphere")
    write_pet_series(folder, activity, grid, weight_kg=weight, injected_bq=injected)
    return folder, grid, radius, fraction


def test_synthetic_sphere_suv_and_volume(sphere_pet):
    folder, grid, radius, fraction = sphere_pet
    series = read_pet_series(folder)
    assert series.grid == grid
    suv = series.suv()
    inside = fraction == 1.0
    assert suv[inside] == pytest.approx(10.0, rel=2e-4)  # 16-bit quantisation only
    assert suv[fraction == 0.0] == pytest.approx(1.0, rel=2e-3)
    true_cc = 4.0 / 3.0 * math.pi * radius**3 / 1000.0
    region = np.ones(grid.shape, bool)
    # half-way between background and sphere: a voxel counts when more than half inside
    mask, _ = threshold_volume(suv, region, ThresholdRule.parse("5.5"))
    volume = mask.sum() * grid.voxel_volume_cc
    assert volume == pytest.approx(true_cc, rel=0.03)


def test_threshold_volume_as_rtstruct_round_trip(sphere_pet, tmp_path):
    folder, grid, radius, _ = sphere_pet
    series = read_pet_series(folder)
    mask, _ = threshold_volume(series.suv(), np.ones(grid.shape, bool), ThresholdRule.parse("5.5"))
    path = write_rtstruct_rois(
        tmp_path / "RS_pet.dcm",
        {"PET 5.5": mask},
        grid,
        frame_of_reference_uid=series.frame_of_reference_uid,
        referenced_series_uid=series.series_instance_uid,
        template=pydicom.dcmread(series.sources[0], stop_before_pixels=True),
        description="SUVbw >= 5.5",
    )
    structures = read_rtstruct(path)
    occupancy = structure_occupancy(structures.get("PET 5.5"), grid)
    # marching squares cuts voxel corners: the contoured volume is a little smaller
    assert occupancy.sum() == pytest.approx(mask.sum(), rel=0.08)
    assert (membership(occupancy) == mask).mean() > 0.995
    with pytest.raises(InputError, match="exists"):
        write_rtstruct_rois(
            path, {"x": mask}, grid, frame_of_reference_uid="1.2", referenced_series_uid=None
        )


def _write(tmp_path, **kwargs):
    grid = Grid.from_axes(origin=(0, 0, 0), spacing=(4.0, 4.0, 4.0), shape=(3, 4, 4))
    activity = np.full(grid.shape, 5000.0)
    write_pet_series(tmp_path, activity, grid, weight_kg=70.0, injected_bq=3.5e8, **kwargs)
    return read_pet_series(tmp_path)


def test_decay_correction_admin_uses_injected_activity(tmp_path):
    series = _write(tmp_path, decay_correction="ADMIN")
    assert series.suv() == pytest.approx(1.0, rel=2e-4)


def test_decay_correction_start_decays_to_scan(tmp_path):
    series = _write(
        tmp_path,
        injection=dt.datetime(2025, 3, 1, 9, 0),
        scan_start=dt.datetime(2025, 3, 1, 9, 0) + dt.timedelta(seconds=F18_HALF_LIFE_S),
        half_life_s=F18_HALF_LIFE_S,
    )
    assert series.suv() == pytest.approx(2.0, rel=2e-4)  # half the activity left


def test_midnight_crossing(tmp_path):
    series = _write(
        tmp_path,
        injection=dt.datetime(2025, 3, 1, 23, 30),
        scan_start=dt.datetime(2025, 3, 2, 0, 30),
        half_life_s=F18_HALF_LIFE_S,
    )
    assert series.calibration.elapsed_s[0] == 3600.0
    assert any("day before" in n for n in series.calibration.notes)


def test_decay_correction_none_per_slice(tmp_path):
    series = _write(tmp_path, decay_correction="NONE", half_life_s=F18_HALF_LIFE_S)
    assert series.calibration.elapsed_s == pytest.approx([3600.0] * 3)
    assert series.suv() == pytest.approx(2.0 ** (3600.0 / F18_HALF_LIFE_S), rel=2e-4)


def test_units_gml_are_suv(tmp_path):
    series = _write(tmp_path, units="GML")
    assert series.suv() == pytest.approx(5000.0, rel=2e-4)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"PatientWeight": None}, "PatientWeight"),
        ({"PatientWeight": 0}, "PatientWeight"),
        ({"Units": "CNTS"}, "(7053,1000)"),
        ({"Units": "PROPCPS"}, "Units"),
        ({"DecayCorrection": None}, "DecayCorrection"),
        ({"CorrectedImage": ["DECY"]}, "CorrectedImage"),
        ({"CorrectedImage": ["ATTN"]}, "CorrectedImage"),
        (
            {"RadiopharmaceuticalInformationSequence": None},
            "RadiopharmaceuticalInformationSequence",
        ),
        ({"SeriesTime": None}, "SeriesTime"),
        ({"Modality": "CT"}, "Modality"),
    ],
)
def test_refusals_name_the_field(tmp_path, extra, field):
    with pytest.raises(InputError) as error:
        _write(tmp_path, extra=extra)
    assert field in str(error.value)


def test_scan_long_after_injection_is_refused(tmp_path):
    with pytest.raises(InputError, match="outside 0-86400"):
        _write(tmp_path, injection=dt.datetime(2025, 2, 27, 9, 0), start_datetime=True)
