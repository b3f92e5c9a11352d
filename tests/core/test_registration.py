"""Dose mapping between frames: exact answers for transforms, resampling and REG files."""

import numpy as np
import pytest
import SimpleITK as sitk

from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.registration import (
    Transform,
    grid_from_sitk,
    is_rigid,
    resample_dose,
    rigid_matrix,
    sitk_from_array,
)
from reirrad.errors import InputError
from reirrad.io.registration_io import read_spatial_registration, write_spatial_registration


def _centres(grid: Grid) -> np.ndarray:
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    return grid.index_to_patient(np.stack([ii, jj, kk], axis=-1))


def _moving_dose(grid: Grid, matrix: np.ndarray, field) -> Dose:
    """A dose whose value at a moving voxel is ``field`` of its reference-frame position."""
    xyz_mov = _centres(grid)
    xyz_ref = xyz_mov @ matrix[:3, :3].T + matrix[:3, 3]
    return Dose(grid, field(xyz_ref))


M = rigid_matrix((3.0, -2.0, 5.0), (7.0, -4.0, 9.0))
MOVING = Grid.from_axes((-70.0, -64.0, -50.0), (2.0, 2.5, 3.0), (35, 52, 71))
REFERENCE = Grid.from_axes((-45.0, -40.0, -30.0), (3.0, 3.0, 2.5), (25, 28, 31))


def test_rigid_matrix_and_validation():
    assert is_rigid(M)
    assert not is_rigid(np.diag([1.01, 1, 1, 1]))
    with pytest.raises(InputError, match="not rigid"):
        Transform(np.diag([2.0, 1.0, 1.0, 1.0]), "reg")
    with pytest.raises(InputError, match="kind"):
        Transform(np.eye(4), "affine")


def test_sitk_bridge_keeps_geometry_of_an_oblique_grid():
    direction = rigid_matrix((10.0, 0.0, 20.0))[:3, :3]
    grid = Grid.from_axes((5.0, -3.0, 12.0), (1.5, 2.0, 3.0), (4, 5, 6), direction)
    values = np.arange(np.prod(grid.shape), dtype=float).reshape(grid.shape)
    image = sitk_from_array(values, grid)
    for ijk in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        assert np.allclose(image.TransformIndexToPhysicalPoint(ijk), grid.index_to_patient(ijk))
        # GetArrayFromImage is [z, y, x] = [k, j, i]
        assert (
            sitk.GetArrayViewFromImage(image)[ijk[2], ijk[1], ijk[0]]
            == values[ijk[2], ijk[1], ijk[0]]
        )
    back_values, back_grid = grid_from_sitk(image)
    assert np.array_equal(back_values, values)
    assert np.allclose(back_grid.affine, grid.affine)


@pytest.mark.parametrize("mode", ["trilinear", "max_footprint"])
def test_identity_resampling_on_the_same_grid_is_exact(mode):
    """Each reference voxel overlaps exactly one moving voxel: itself."""
    rng = np.random.default_rng(1)
    dose = Dose(REFERENCE, rng.uniform(0, 70, REFERENCE.shape))
    out = resample_dose(dose, REFERENCE, mode=mode)
    assert out.coverage.all()
    assert np.allclose(out.dose.values, dose.values)


def test_max_footprint_is_the_maximum_over_overlapping_voxels_on_a_half_voxel_shift():
    """1D by hand: moving 1 mm voxels [0, 5, 1, 2, 9, 3], reference 2 mm voxels centred on
    the moving voxel boundaries at x = 0.5, 2.5, 4.5: they overlap moving voxels {0, 1},
    {2, 3}, {4, 5} -> maxima 5, 2, 9 (trilinear would give 2.5, 1.5, 6)."""
    moving = Grid.from_axes((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1, 1, 6))
    dose = Dose(moving, np.array([[[0.0, 5.0, 1.0, 2.0, 9.0, 3.0]]]))
    reference = Grid.from_axes((0.5, 0.0, 0.0), (2.0, 1.0, 1.0), (1, 1, 3))
    tri = resample_dose(dose, reference)
    cons = resample_dose(dose, reference, mode="max_footprint")
    assert np.allclose(tri.dose.values[0, 0], [2.5, 1.5, 6.0])
    assert np.allclose(cons.dose.values[0, 0], [5.0, 2.0, 9.0])


def test_linear_field_is_mapped_exactly_through_a_rotation():
    """Trilinear interpolation reproduces a linear field exactly, whatever the rotation."""

    def field(xyz):
        return 40.0 + 0.3 * xyz[..., 0] - 0.2 * xyz[..., 1] + 0.1 * xyz[..., 2]

    out = resample_dose(_moving_dose(MOVING, M, field), REFERENCE, Transform(M, "reg"))
    assert out.coverage.all()
    assert np.allclose(out.dose.values, field(_centres(REFERENCE)), atol=1e-9)
    assert out.dose.provenance["mapping"] == "reg"


def test_outside_the_moving_grid_is_zero_and_uncovered():
    shifted = rigid_matrix((0, 0, 0), (60.0, 0.0, 0.0))
    dose = _moving_dose(MOVING, shifted, lambda xyz: np.full(xyz.shape[:-1], 10.0))
    out = resample_dose(dose, REFERENCE, Transform(shifted, "reg"))
    xyz = _centres(REFERENCE)
    # the moving grid spans x = -70 .. 70 mm (+- half a 2 mm voxel), shifted by 60 mm
    inside_x = xyz[..., 0] >= -70.0 + 60.0 - 1.0
    assert np.array_equal(out.coverage, inside_x)
    assert np.all(out.dose.values[~out.coverage] == 0.0)
    assert np.allclose(out.dose.values[out.coverage], 10.0)


def _gaussian(center, sigma, amplitude):
    def field(xyz):
        return amplitude * np.exp(
            -np.sum((xyz - np.asarray(center)) ** 2, axis=-1) / (2 * sigma**2)
        )

    return field


@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.0), (25.0, 0.0, 0.0)])
def test_integral_dose_kept_within_1_percent_where_grids_overlap(offset):
    """Integral of a smooth dose over the overlap region, before and after mapping.

    With offset 0 the whole dose lies in both grids: both integrals must also match the
    analytic (2 pi)^(3/2) sigma^3 A. With a 25 mm offset the reference grid cuts the dose;
    the integral over the overlap is compared with that of the moving voxels whose centres
    map into the reference grid's extent."""
    sigma, amplitude = 9.0, 50.0
    center = np.asarray(offset)
    field = _gaussian(center, sigma, amplitude)
    dose = _moving_dose(MOVING, M, field)
    out = resample_dose(dose, REFERENCE, Transform(M, "reg"))
    ref_integral = out.dose.values[out.coverage].sum() * REFERENCE.voxel_volume_cc
    xyz_ref_of_moving = _centres(MOVING) @ M[:3, :3].T + M[:3, 3]
    idx = REFERENCE.patient_to_index(xyz_ref_of_moving)
    upper = np.asarray(REFERENCE.shape)[::-1] - 0.5
    in_reference = np.all((idx >= -0.5) & (idx <= upper), axis=-1)
    moving_integral = dose.values[in_reference].sum() * MOVING.voxel_volume_cc
    assert ref_integral == pytest.approx(moving_integral, rel=0.01)
    if offset == (0.0, 0.0, 0.0):
        analytic = (2 * np.pi) ** 1.5 * sigma**3 * amplitude / 1000.0  # Gy cm3
        assert ref_integral == pytest.approx(analytic, rel=0.01)


def test_max_footprint_is_never_below_trilinear_and_keeps_a_single_voxel_hot_spot():
    fine = Grid.from_axes((-30.0, -30.0, -30.0), (1.0, 1.0, 1.0), (61, 61, 61))
    values = _gaussian((0, 0, 0), 10.0, 30.0)(_centres(fine))
    hot_index = (37, 22, 41)  # k, j, i
    values[hot_index] = 100.0
    dose = Dose(fine, values)
    coarse = Grid.from_axes((-25.0, -26.0, -24.0), (3.0, 3.0, 3.0), (16, 17, 17))
    transform = Transform(rigid_matrix((4.0, 3.0, -6.0), (1.3, -0.7, 0.4)), "reg")
    tri = resample_dose(dose, coarse, transform)
    cons = resample_dose(dose, coarse, transform, mode="max_footprint")
    assert np.all(cons.dose.values >= tri.dose.values - 1e-12)
    assert tri.dose.values.max() < 60.0  # trilinear smears the hot voxel away
    # the reference voxel whose footprint holds the hot voxel's centre keeps its 100 Gy
    hot_xyz = fine.index_to_patient(hot_index[::-1])
    target = np.rint(
        coarse.patient_to_index(transform.matrix[:3, :3] @ hot_xyz + transform.matrix[:3, 3])
    )
    i, j, k = (int(v) for v in target)
    assert cons.dose.values[k, j, i] == pytest.approx(100.0)
    assert cons.dose.values.max() == pytest.approx(100.0)


def test_resampling_keeps_kind_and_labels_uncertain_mappings():
    grid = Grid.from_axes((0, 0, 0), (2, 2, 2), (4, 4, 4))
    effective = Dose(grid, np.ones(grid.shape), DoseKind.EFFECTIVE, 5, "EQD2")
    displacement = np.zeros((*grid.shape, 3))
    deformable = Transform(
        np.eye(4), "deformable", displacement=displacement, displacement_grid=grid
    )
    assert deformable.uncertain and deformable.label == "deformable (UNCERTAIN)"
    out = resample_dose(effective, grid, deformable)
    assert out.dose.kind is DoseKind.EFFECTIVE and out.dose.quantity == "EQD2"
    assert out.dose.provenance["mapping_uncertain"] is True
    assert np.allclose(out.dose.values, 1.0)


def test_deformable_displacement_field_is_applied():
    """A uniform 2 mm displacement along x on a linear field shifts it by exactly 2 mm."""
    grid = Grid.from_axes((-20, -20, -20), (2, 2, 2), (21, 21, 21))
    dose = Dose(grid, 10.0 + _centres(grid)[..., 0] * 0.5)
    displacement = np.zeros((*grid.shape, 3))
    displacement[..., 0] = 2.0
    transform = Transform(
        np.eye(4), "deformable", displacement=displacement, displacement_grid=grid
    )
    small = Grid.from_axes((-10, -10, -10), (2, 2, 2), (5, 5, 5))
    out = resample_dose(dose, small, transform)
    assert np.allclose(out.dose.values, 10.0 + (_centres(small)[..., 0] + 2.0) * 0.5)


# ---- DICOM Spatial Registration ----------------------------------------------------------


def test_reg_roundtrip_and_validation(tmp_path):
    path = write_spatial_registration(
        tmp_path / "reg.dcm", M, moving_frame_uid="1.2.3.4", reference_frame_uid="1.2.3.5"
    )
    transform = read_spatial_registration(path)
    assert transform.kind == "reg" and not transform.uncertain
    assert np.allclose(transform.matrix, M, atol=1e-9)
    assert transform.moving_frame_uid == "1.2.3.4" and transform.reference_frame_uid == "1.2.3.5"
    with pytest.raises(InputError, match="no item for the moving frame"):
        read_spatial_registration(path, moving_frame_uid="9.9.9")
    with pytest.raises(InputError, match="reference frame"):
        read_spatial_registration(path, reference_frame_uid="9.9.9")


def test_reg_with_a_scaling_matrix_is_refused(tmp_path):
    import pydicom

    path = write_spatial_registration(
        tmp_path / "reg.dcm", np.eye(4), moving_frame_uid="1.2.3.4", reference_frame_uid="1.2.3.5"
    )
    ds = pydicom.dcmread(path)
    entry = ds.RegistrationSequence[1].MatrixRegistrationSequence[0].MatrixSequence[0]
    entry.FrameOfReferenceTransformationMatrix = [str(v) for v in np.diag([1.1, 1, 1, 1]).flatten()]
    ds.save_as(path)
    with pytest.raises(InputError, match="not a rotation"):
        read_spatial_registration(path)
    entry.FrameOfReferenceTransformationMatrixType = "RIGID_SCALE"
    ds.save_as(path)
    with pytest.raises(InputError, match="RIGID_SCALE"):
        read_spatial_registration(path)


def test_non_reg_file_is_refused(tmp_path):
    from reirrad.io.export import write_rtdose

    grid = Grid.from_axes((0, 0, 0), (2, 2, 2), (2, 2, 2))
    path = write_rtdose(
        Dose(grid, np.ones(grid.shape)), tmp_path / "rd.dcm", frame_of_reference_uid="1.2.3"
    )
    with pytest.raises(InputError, match="Spatial Registration"):
        read_spatial_registration(path)
