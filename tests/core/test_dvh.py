"""DVH engine: analytically exact synthetic cases, the metric grammar, indices, occupancy."""

from __future__ import annotations

import numpy as np
import pytest

from reirrad.core.dvh import (
    compute_dvh,
    gradient_index,
    homogeneity_index,
    isodose_volume,
    paddick_ci,
    structure_occupancy,
)
from reirrad.core.geometry import Dose, Grid
from reirrad.core.structures import Structure
from reirrad.errors import InputError


def rectangle(x0, x1, y0, y1, z):
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)


def box_structure(planes, *, hole=False, name="box"):
    contours = []
    for z in planes:
        contours.append(rectangle(-10, 10, -8, 8, z))
        if hole:
            contours.append(rectangle(-5, 5, -4, 4, z))
    return Structure(name=name, number=1, contours=tuple(contours))


def linear_dose(field, *, origin=(-30.0, -30.0, -30.0), shape=(40, 30, 30), spacing=2.0):
    grid = Grid.from_axes(origin=origin, spacing=(spacing, spacing, spacing), shape=shape)
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    xyz = grid.index_to_patient(np.stack([i, j, k], axis=-1).astype(float))
    return Dose(grid=grid, values=field(xyz[..., 0], xyz[..., 1], xyz[..., 2]))


PLANES = np.arange(0.0, 20.0 + 1e-9, 2.0)  # 11 planes, 2 mm apart -> z in [-1, 21] with caps


def test_box_in_x_gradient_is_exact():
    # dose = x + 50 over x in [-10, 10]: uniform between 40 and 60 Gy
    dose = linear_dose(lambda x, y, z: x + 50.0)
    dvh = compute_dvh(dose, box_structure(PLANES))
    assert dvh.volume_cc == pytest.approx(20 * 16 * 22 / 1000, rel=1e-6)  # half-slice caps
    assert dvh.covered_fraction == pytest.approx(1.0)
    assert dvh.dmean == pytest.approx(50.0, abs=1e-6)
    assert dvh.dmin == pytest.approx(40.0, abs=1e-6)
    assert dvh.dmax == pytest.approx(60.0, abs=1e-6)
    assert dvh.metric("D50%") == pytest.approx(50.0, abs=0.02)
    assert dvh.metric("D95%") == pytest.approx(41.0, abs=0.02)
    assert dvh.metric("D2%") == pytest.approx(59.6, abs=0.02)
    assert dvh.metric("V55Gy") == pytest.approx(25.0, abs=0.1)
    assert dvh.metric("V55Gy[cc]") == pytest.approx(0.25 * 7.04, rel=2e-3)
    # D<x>cc: the hottest 0.704 cc (10 %) receive at least 58 Gy
    assert dvh.metric("D0.704cc") == pytest.approx(58.0, abs=0.02)
    assert homogeneity_index(dvh) == pytest.approx((59.6 - 40.4) / 50.0, abs=1e-3)


def test_box_in_z_gradient_end_caps():
    # dose = z + 10 along the contour axis; caps put the extent at z in [-1, 21], the
    # contours span z in [0, 20]
    dose = linear_dose(lambda x, y, z: z + 10.0)
    dvh = compute_dvh(dose, box_structure(PLANES))
    # default: extremes within the contoured extent (outer planes z = 0 and 20)
    assert dvh.provenance["extremes"] == "contoured"
    assert dvh.dmin == pytest.approx(10.0, abs=1e-6)
    assert dvh.dmax == pytest.approx(30.0, abs=1e-6)
    assert dvh.dmean == pytest.approx(20.0, abs=1e-6)
    assert dvh.metric("D50%") == pytest.approx(20.0, abs=0.02)
    # uniform on [9, 31]: D95% = 9 + 0.05 * 22 lies inside the extremes; D99% = 9.22 does
    # not (1/22 of the volume, the lower cap, is below 10 Gy) and is bounded by Dmin
    assert dvh.metric("D95%") == pytest.approx(10.1, abs=0.02)
    assert dvh.metric("D99%") == pytest.approx(10.0, abs=0.01)  # one 0.01 Gy bin
    capped = compute_dvh(dose, box_structure(PLANES), extremes="end_cap")
    assert capped.dmin == pytest.approx(9.0, abs=1e-6)
    assert capped.dmax == pytest.approx(31.0, abs=1e-6)
    assert capped.metric("D95%") == pytest.approx(10.1, abs=0.02)
    assert capped.metric("D99%") == pytest.approx(9.22, abs=0.02)
    nocap = compute_dvh(dose, box_structure(PLANES), end_cap="none")
    assert nocap.volume_cc == pytest.approx(20 * 16 * 20 / 1000, rel=1e-6)
    assert nocap.dmin == pytest.approx(10.0, abs=1e-6)
    assert nocap.dmax == pytest.approx(30.0, abs=1e-6)
    mm = compute_dvh(dose, box_structure(PLANES), end_cap=0.5)
    assert mm.volume_cc == pytest.approx(20 * 16 * 21 / 1000, rel=1e-6)


def test_contour_planes_between_dose_planes():
    # contours at odd mm, dose planes at even mm
    dose = linear_dose(lambda x, y, z: z + 10.0)
    dvh = compute_dvh(dose, box_structure(PLANES + 1.0))
    assert dvh.dmin == pytest.approx(11.0, abs=1e-6)  # outer planes z = 1 and 21
    assert dvh.dmax == pytest.approx(31.0, abs=1e-6)
    assert dvh.dmean == pytest.approx(21.0, abs=1e-6)
    capped = compute_dvh(dose, box_structure(PLANES + 1.0), extremes="end_cap")
    assert capped.dmin == pytest.approx(10.0, abs=1e-6)  # cap faces z = 0 and 22
    assert capped.dmax == pytest.approx(32.0, abs=1e-6)


def test_hole_by_even_odd_rule():
    dose = linear_dose(lambda x, y, z: np.full_like(x, 2.0))
    dvh = compute_dvh(dose, box_structure(PLANES, hole=True))
    assert dvh.volume_cc == pytest.approx((320 - 80) * 22 / 1000, rel=1e-6)
    assert dvh.dmean == pytest.approx(2.0)


def test_partly_outside_grid_reports_covered_fraction():
    # grid voxel centres x = -30 .. -2 (15 columns): the grid ends at x = -1
    dose = linear_dose(lambda x, y, z: np.full_like(x, 3.0), shape=(40, 30, 15))
    dvh = compute_dvh(dose, box_structure(PLANES))
    assert dvh.volume_cc == pytest.approx(7.04, rel=1e-6)
    assert dvh.covered_fraction == pytest.approx(9 / 20, rel=1e-6)
    assert dvh.covered_volume_cc == pytest.approx(7.04 * 9 / 20, rel=1e-6)
    assert dvh.provenance["warnings"]


def test_entirely_outside_grid_is_an_input_error():
    dose = linear_dose(lambda x, y, z: x, origin=(200.0, 200.0, 200.0))
    with pytest.raises(InputError, match="outside the dose grid"):
        compute_dvh(dose, box_structure(PLANES))


def test_empty_structure_is_an_input_error():
    dose = linear_dose(lambda x, y, z: x)
    with pytest.raises(InputError, match="no closed contour"):
        compute_dvh(dose, Structure(name="empty", number=3))


def test_sphere_volume_and_mean():
    # sphere r = 15 mm, contours every 1 mm (half-slice caps add only the tip polygons)
    r = 15.0
    contours = []
    t = np.linspace(0, 2 * np.pi, 361)[:-1]
    for z in np.arange(-r, r + 1e-9, 1.0):
        rho = np.sqrt(max(r * r - z * z, 0.0))
        if rho < 1e-6:
            continue
        contours.append(np.column_stack([rho * np.cos(t), rho * np.sin(t), np.full(t.size, z)]))
    sphere = Structure(name="sphere", number=1, contours=tuple(contours))
    dose = linear_dose(lambda x, y, z: 0.5 * y + 20.0, spacing=2.5, shape=(24, 24, 24))
    dvh = compute_dvh(dose, sphere)
    assert dvh.volume_cc == pytest.approx(4 / 3 * np.pi * r**3 / 1000, rel=0.01)
    assert dvh.dmean == pytest.approx(20.0, abs=0.01)
    assert dvh.dmin == pytest.approx(20.0 - 0.5 * r, abs=0.05)
    assert dvh.dmax == pytest.approx(20.0 + 0.5 * r, abs=0.05)


def test_occupancy_matches_volume():
    dose = linear_dose(lambda x, y, z: x)
    structure = box_structure(PLANES + 0.7, hole=True)
    occ = structure_occupancy(structure, dose.grid)
    assert occ.dtype == np.float32
    assert occ.shape == dose.grid.shape
    assert occ.min() >= 0 and occ.max() <= 1
    assert float(occ.sum()) * dose.grid.voxel_volume_cc == pytest.approx(
        (320 - 80) * 22 / 1000, rel=1e-5
    )
    # a voxel fully inside the solid part (x = -8, y = 0, z = 10) is full
    assert occ[20, 15, 11] == pytest.approx(1.0)


def test_metrics_use_the_shared_grammar():
    dose = linear_dose(lambda x, y, z: x + 50.0)
    dvh = compute_dvh(dose, box_structure(PLANES))
    values = dvh.metrics(["Dmean", "max", "V110%"], reference_dose=50.0)
    assert values["Dmean"] == pytest.approx(50.0, abs=1e-6)
    assert values["max"] == pytest.approx(60.0, abs=1e-6)
    assert values["V110%"] == pytest.approx(25.0, abs=0.1)  # >= 55 Gy
    with pytest.raises(InputError, match="reference"):
        dvh.metric("V95%")
    with pytest.raises(InputError):
        dvh.metric("D95x")
    assert dvh.metric("D100%") == pytest.approx(dvh.dmin)
    assert dvh.metric("D0%") == pytest.approx(dvh.dmax)
    assert dvh.metric("D100cc") == pytest.approx(dvh.dmin)  # larger than the structure


def test_differential_sums_to_volume():
    dose = linear_dose(lambda x, y, z: x + 50.0)
    dvh = compute_dvh(dose, box_structure(PLANES))
    centres, volume = dvh.differential
    assert volume.sum() == pytest.approx(dvh.covered_volume_cc, rel=1e-9)
    assert (volume >= -1e-12).all()
    assert dvh.cumulative_percent[0] == pytest.approx(100.0)


def test_paddick_and_gradient_index_definitions():
    dose = linear_dose(lambda x, y, z: x + 50.0)
    target = compute_dvh(dose, box_structure(PLANES))
    # prescription 55 Gy: TV_PIV = 25 % of TV; with PIV = 2 x TV_PIV, CI = 0.25 * 0.5
    tv_piv = 0.25 * target.covered_volume_cc
    assert paddick_ci(target, 55.0, 2 * tv_piv) == pytest.approx(0.125, rel=5e-3)
    assert gradient_index(10.0, 31.0) == pytest.approx(3.1)


def test_isodose_volume_over_the_grid_and_within_a_structure():
    # grid: x centres -30..28 (edges -31..29), y 60 mm, z 80 mm; dose = x + 50
    dose = linear_dose(lambda x, y, z: x + 50.0)
    # x >= 10 -> 19 mm x 60 mm x 80 mm
    assert isodose_volume(dose, 60.0) == pytest.approx(19 * 60 * 80 / 1000, rel=1e-3)
    # inside the box (x in [-10, 10]): x >= 5 -> 5 x 16 x 22 mm
    box = box_structure(PLANES)
    assert isodose_volume(dose, 55.0, box) == pytest.approx(5 * 16 * 22 / 1000, rel=2e-3)
    # Paddick CI of the box for the 55 Gy isodose over the grid (x >= 5: 24 x 60 x 80 mm)
    piv = isodose_volume(dose, 55.0)
    assert piv == pytest.approx(24 * 60 * 80 / 1000, rel=1e-3)
    target = compute_dvh(dose, box)
    expected = (5 * 16 * 22) ** 2 / (20 * 16 * 22 * 24 * 60 * 80)
    assert paddick_ci(target, 55.0, piv) == pytest.approx(expected, rel=5e-3)
    # gradient index: PIV(27.5 Gy) / PIV(55 Gy); 27.5 Gy is x >= -22.5 -> 51.5 mm
    gi = gradient_index(piv, isodose_volume(dose, 27.5))
    assert gi == pytest.approx(51.5 / 24, rel=2e-3)


def test_partly_beyond_the_last_dose_plane():
    # dose planes z = -30 .. 8 (20 planes, 2 mm): the grid ends at z = 9; the box with its
    # caps spans z in [-1, 21], so 10 of its 22 mm are covered
    dose = linear_dose(lambda x, y, z: z + 10.0, shape=(20, 30, 30))
    dvh = compute_dvh(dose, box_structure(PLANES))
    assert dvh.covered_fraction == pytest.approx(10 / 22, rel=1e-6)
    # dose is linear up to the last plane (z = 8) and constant (nearest) in its outer half
    assert dvh.dmean == pytest.approx((0.5 * (18**2 - 9**2) + 18.0) / 10.0, abs=1e-6)
    assert dvh.dmax == pytest.approx(18.0, abs=1e-6)
    occ = structure_occupancy(box_structure(PLANES), dose.grid)
    assert float(occ.sum()) * dose.grid.voxel_volume_cc == pytest.approx(
        dvh.covered_volume_cc, rel=1e-6
    )


def test_voxel_method_keeps_partial_volumes():
    # the voxel method (used for large structures) on the same analytic box
    dose = linear_dose(lambda x, y, z: x + 50.0)
    dvh = compute_dvh(dose, box_structure(PLANES), voxel_method_above=0)
    assert dvh.provenance["method"] == "voxel"
    assert dvh.volume_cc == pytest.approx(7.04, rel=1e-6)
    assert dvh.covered_volume_cc == pytest.approx(7.04, rel=1e-6)
    assert dvh.dmean == pytest.approx(50.0, abs=1e-6)  # boundary errors cancel by symmetry
    assert dvh.dmin == pytest.approx(40.0, abs=1e-6)
    assert dvh.dmax == pytest.approx(60.0, abs=1e-6)
    assert dvh.metric("D50%") == pytest.approx(50.0, abs=0.05)
    narrow = linear_dose(lambda x, y, z: np.full_like(x, 3.0), shape=(40, 30, 15))
    partial = compute_dvh(narrow, box_structure(PLANES), voxel_method_above=0)
    assert partial.covered_fraction == pytest.approx(9 / 20, rel=1e-6)
