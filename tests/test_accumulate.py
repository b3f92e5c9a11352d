"""Voxel-wise accumulation against closed forms.

The two Nelms linear-gradient dose grids (Med Phys 2015;42(8):4435; one frame of
reference, 2 mm voxels) are used as two courses. Their values are known exactly:
AP grid ``a(y) = max(0, 10 - y)`` Gy, SI grid ``b(z) = max(0, z + 10)`` Gy (checked below
from the files' first and last voxels). Both files are DoseSummationType FRACTION, so a
value is the dose of one fraction; we state 3 fractions for the AP "course" and 5 for the
SI one. Per voxel, with alpha/beta ``ab``:

    BED  = n a (1 + a / ab),  EQD2 = BED / (1 + 2 / ab)
    cumulative = (1 - f) * EQD2_AP + EQD2_SI   (f: recovered fraction of the earlier course)
"""

from pathlib import Path

import numpy as np
import pytest

from reirrad.core.accumulate import (
    CourseDose,
    accumulate,
    course_effective,
    phase_total_dose,
    reirradiation_type,
    structure_contributions,
    tissue_maps,
    to_effective,
)
from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.errors import InputError
from reirrad.io.dicom import read_rtdose

DATA = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "nelms-dvh-analytical" / "DOSE_GRIDS"
)
N_AP, N_SI = 3, 5


def _coords(grid: Grid):
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    xyz = grid.index_to_patient(np.stack([ii, jj, kk], axis=-1))
    return xyz[..., 0], xyz[..., 1], xyz[..., 2]


def _eqd2(total, n, ab):
    d = total / n
    return total * (d + ab) / (2.0 + ab)


@pytest.fixture(scope="module")
def nelms():
    ap = read_rtdose(DATA / "Linear_AntPost_2mm_Aligned.dcm")
    si = read_rtdose(DATA / "Linear_SupInf_2mm_Aligned.dcm")
    return ap, si


def test_nelms_grids_are_the_linear_fields_we_assume(nelms):
    ap, si = nelms
    x, y, z = _coords(ap.grid)
    assert np.allclose(ap.values, np.maximum(0.0, 10.0 - y), atol=1e-5)
    assert np.allclose(si.values, np.maximum(0.0, z + 10.0), atol=1e-5)
    assert ap.provenance["summation_type"] == "FRACTION"


def test_fraction_dose_needs_the_fractions_stated(nelms):
    ap, _ = nelms
    with pytest.raises(InputError, match="fractions"):
        phase_total_dose(ap, "FRACTION")
    with pytest.raises(InputError, match="FRACTION"):
        to_effective(ap, N_AP, 3.0)  # per-fraction dose used as if it were a total
    with pytest.raises(InputError, match="beam"):
        phase_total_dose(ap, "BEAM", fractions=N_AP)


def test_cumulative_eqd2_closed_form_uniform_alpha_beta(nelms):
    ap, si = nelms
    ab = 3.0
    course_a = to_effective(phase_total_dose(ap, "FRACTION", fractions=N_AP), N_AP, ab)
    course_b = to_effective(phase_total_dose(si, "FRACTION", fractions=N_SI), N_SI, ab)
    result = accumulate([CourseDose("AP", course_a), CourseDose("SI", course_b)])
    _, y, z = _coords(ap.grid)
    a, b = np.maximum(0.0, 10.0 - y), np.maximum(0.0, z + 10.0)
    exact = N_AP * a * (a + ab) / (2 + ab) + N_SI * b * (b + ab) / (2 + ab)
    np.testing.assert_allclose(result.total.values, exact, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(result.total_no_recovery.values, exact, rtol=1e-6, atol=1e-5)
    assert result.total.kind is DoseKind.EFFECTIVE and result.total.quantity == "EQD2"
    # a voxel worked by hand: y = -24 (a = 34 Gy/fx), z = 24 (b = 34 Gy/fx), ab 3:
    # 3*34*37/5 + 5*34*37/5 = 754.8 + 1258 = 2012.8 Gy
    k, j = 24, 0
    assert result.total.values[k, j, 3] == pytest.approx(2012.8, rel=1e-6)


def test_cumulative_eqd2_closed_form_tissue_map_and_recovery(nelms):
    """Left half (x < 0) is an organ with alpha/beta 2 Gy and 40 % recovery of the earlier
    course; the rest has alpha/beta 10 Gy and none. BED is checked the same way."""
    ap, si = nelms
    x, y, z = _coords(ap.grid)
    organ = x < 0
    maps = tissue_maps(ap.grid, {"organ": organ}, {"organ": (2.0, 0.4)}, default=(10.0, 0.0))
    ab_map, f_map = maps
    a, b = np.maximum(0.0, 10.0 - y), np.maximum(0.0, z + 10.0)
    ab = np.where(organ, 2.0, 10.0)
    f = np.where(organ, 0.4, 0.0)
    for quantity in ("EQD2", "BED"):
        ea = to_effective(phase_total_dose(ap, "FRACTION", fractions=N_AP), N_AP, ab_map, quantity)
        eb = to_effective(phase_total_dose(si, "FRACTION", fractions=N_SI), N_SI, ab_map, quantity)
        result = accumulate([CourseDose("AP", ea, f_map), CourseDose("SI", eb)])
        bed_a = N_AP * a * (1 + a / ab)
        bed_b = N_SI * b * (1 + b / ab)
        scale = 1.0 if quantity == "BED" else 1.0 / (1 + 2.0 / ab)
        exact = ((1 - f) * bed_a + bed_b) * scale
        exact_nr = (bed_a + bed_b) * scale
        np.testing.assert_allclose(result.total.values, exact, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(result.total_no_recovery.values, exact_nr, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(
            result.contributions[0].values, (1 - f) * bed_a * scale, rtol=1e-6, atol=1e-5
        )


def test_per_structure_contributions(nelms):
    ap, si = nelms
    ab = 3.0
    ea = to_effective(phase_total_dose(ap, "FRACTION", fractions=N_AP), N_AP, ab)
    eb = to_effective(phase_total_dose(si, "FRACTION", fractions=N_SI), N_SI, ab)
    result = accumulate([CourseDose("AP", ea, 0.5), CourseDose("SI", eb)])
    _, y, z = _coords(ap.grid)
    mask = (y <= -20) & (z >= 20)  # y in {-24,-22,-20}, z in {20,22,24}
    table = structure_contributions(result, {"corner": mask})["corner"]
    a_vals = 10.0 - np.array([-24.0, -22.0, -20.0])
    b_vals = np.array([20.0, 22.0, 24.0]) + 10.0
    assert table["SI"]["mean"] == pytest.approx(np.mean(_eqd2(N_SI * b_vals, N_SI, ab)), rel=1e-6)
    assert table["AP"]["mean_no_recovery"] == pytest.approx(
        np.mean(_eqd2(N_AP * a_vals, N_AP, ab)), rel=1e-6
    )
    assert table["AP"]["mean"] == pytest.approx(
        0.5 * np.mean(_eqd2(N_AP * a_vals, N_AP, ab)), rel=1e-6
    )
    assert table["SI"]["max"] == pytest.approx(_eqd2(N_SI * 34.0, N_SI, ab), rel=1e-6)


def test_effective_twice_refused(nelms):
    ap, _ = nelms
    eff = to_effective(phase_total_dose(ap, "FRACTION", fractions=2), 2, 3.0)
    assert eff.kind is DoseKind.EFFECTIVE
    assert eff.provenance["fractions"] == 2
    with pytest.raises(InputError, match="already EFFECTIVE"):
        to_effective(eff, 2, 3.0)
    with pytest.raises(InputError, match="physical"):
        accumulate([CourseDose("phys", phase_total_dose(ap, "FRACTION", fractions=2))])


def test_mixed_quantities_and_grids_refused(nelms):
    ap, si = nelms
    ea = to_effective(phase_total_dose(ap, "FRACTION", fractions=2), 2, 3.0, "EQD2")
    eb = to_effective(phase_total_dose(si, "FRACTION", fractions=2), 2, 3.0, "BED")
    with pytest.raises(InputError, match="different quantities"):
        accumulate([CourseDose("a", ea), CourseDose("b", eb)])
    other = Grid.from_axes((0, 0, 0), (2, 2, 2), ap.grid.shape)
    moved = Dose(other, ea.values, DoseKind.EFFECTIVE, 2, "EQD2")
    with pytest.raises(InputError, match="reference grid"):
        accumulate([CourseDose("a", ea), CourseDose("b", moved)])


def test_phases_are_converted_separately():
    """Two phases of one course: 10 x 2 Gy then 5 x 4 Gy, alpha/beta 3: EQD2 = 20 + 28 = 48 Gy
    (not 40 Gy in 15 fractions = 42.67 Gy)."""
    grid = Grid.from_axes((0, 0, 0), (1, 1, 1), (1, 1, 2))
    p1 = Dose(grid, np.full(grid.shape, 20.0))
    p2 = Dose(grid, np.full(grid.shape, 20.0))
    course = course_effective([(p1, 10), (p2, 5)], 3.0)
    assert np.allclose(course.values, 20.0 + 20.0 * (4 + 3) / (2 + 3))


# ---- overlap rules -------------------------------------------------------------------


def _two_masks():
    grid = Grid.from_axes((0, 0, 0), (1, 1, 1), (1, 1, 6))
    a = np.array([[[1, 1, 1, 0, 0, 0]]], dtype=float)
    b = np.array([[[0, 0, 1, 1, 0.3, 0]]], dtype=float)
    return grid, a, b


def test_most_conservative_takes_lowest_alpha_beta_and_lowest_recovery_independently():
    grid, a, b = _two_masks()
    ab, f = tissue_maps(
        grid, {"A": a, "B": b}, {"A": (2.0, 0.5), "B": (3.0, 0.1)}, default=(10.0, 0.0)
    )
    # voxel 2 is in both: alpha/beta from A (2), recovery from B (0.1)
    np.testing.assert_array_equal(ab[0, 0], [2, 2, 2, 3, 3, 10])
    np.testing.assert_array_equal(f[0, 0], [0.5, 0.5, 0.1, 0.1, 0.1, 0.0])


def test_coverage_threshold_majority_rule():
    grid, a, b = _two_masks()
    ab, f = tissue_maps(
        grid,
        {"A": a, "B": b},
        {"A": (2.0, 0.5), "B": (3.0, 0.1)},
        default=(10.0, 0.0),
        coverage_threshold=0.5,
    )
    np.testing.assert_array_equal(ab[0, 0], [2, 2, 2, 3, 10, 10])  # 0.3 occupancy no longer counts


def test_priority_rule_first_listed_wins():
    grid, a, b = _two_masks()
    maps = tissue_maps(
        grid,
        {"B": b, "A": a},
        {"A": (2.0, 0.5), "B": (3.0, 0.1)},
        default=(10.0, 0.0),
        rule="priority",
    )
    np.testing.assert_array_equal(maps.alpha_beta[0, 0], [2, 2, 3, 3, 3, 10])
    np.testing.assert_array_equal(maps.recovered_fraction[0, 0], [0.5, 0.5, 0.1, 0.1, 0.1, 0.0])
    assert "priority" in maps.description


def test_tissue_maps_refuse_unknown_structure_and_bad_values():
    grid, a, b = _two_masks()
    with pytest.raises(InputError, match="B"):
        tissue_maps(grid, {"A": a, "B": b}, {"A": (2.0, 0.5)}, default=(10.0, 0.0))
    with pytest.raises(InputError, match="recovered fraction"):
        tissue_maps(grid, {"A": a}, {"A": (2.0, 1.5)}, default=(10.0, 0.0))
    with pytest.raises(InputError, match="rule"):
        tissue_maps(grid, {"A": a}, {"A": (2.0, 0.5)}, default=(10.0, 0.0), rule="average")


# ---- re-irradiation type ----------------------------------------------------------------


def test_type_1_overlap_volume_exact(nelms):
    ap, si = nelms
    # a >= 19 for y <= -10 (8 rows), b >= 19 for z >= 10 (8 slices), all 25 columns:
    # 8 * 8 * 25 voxels of 0.008 cm3 = 12.8 cm3 (19 Gy: clear of the stored 20 Gy values,
    # which carry the file's DoseGridScaling rounding)
    result = reirradiation_type([ap], si, threshold_gy=19.0)
    assert result.type == "Type 1"
    assert result.overlap_cc == pytest.approx(12.8)
    assert "Andratschke" in result.citation


def test_type_2_needs_concern_without_overlap():
    grid = Grid.from_axes((0, 0, 0), (1, 1, 1), (1, 1, 4))
    earlier = Dose(grid, np.array([[[30.0, 5.0, 5.0, 0.0]]]))
    new = Dose(grid, np.array([[[0.0, 0.0, 5.0, 30.0]]]))
    assert reirradiation_type([earlier], new, 10.0, cumulative_dose_concern=True).type == "Type 2"
    undecided = reirradiation_type([earlier], new, 10.0)
    assert undecided.type.startswith("no overlap") and "Type 2" in undecided.statement
    assert reirradiation_type([earlier], new, 10.0, cumulative_dose_concern=False).type == (
        "no overlap, no cumulative-dose concern"
    )
    assert reirradiation_type([earlier], new, 4.0).type == "Type 1"  # 5 Gy voxels overlap at 4 Gy


# ---- sensitivity over alpha/beta and recovery ---------------------------------------------


def test_sensitivity_pass_fail_depends_with_exact_range():
    """One voxel: 40 Gy in 20 fractions earlier (2 Gy/fx: EQD2 40 Gy at any alpha/beta),
    20 Gy in 5 fractions now (4 Gy/fx: EQD2 = 20 (4 + ab)/(2 + ab)), alpha/beta 2 +- 1 Gy,
    recovery 50 % scaled 0..1. Range: 20 + 28 = 48 Gy (ab 3, full recovery) to
    40 + 33.33 = 73.33 Gy (ab 1, none)."""
    from reirrad.core.constraints import Constraint
    from reirrad.core.sensitivity import scenario_maps, scenarios, sensitivity

    grid = Grid.from_axes((0, 0, 0), (1, 1, 1), (1, 1, 1))
    earlier = Dose(grid, np.full(grid.shape, 40.0), fractions=20)
    new = Dose(grid, np.full(grid.shape, 20.0), fractions=5)
    ab0, f0 = np.full(grid.shape, 2.0), np.full(grid.shape, 0.5)

    def metric_for(scenario):
        ab, f = scenario_maps(ab0, f0, scenario)
        result = accumulate(
            [
                CourseDose("1", to_effective(earlier, None, ab), f),
                CourseDose("2", to_effective(new, None, ab)),
            ]
        )
        return float(result.total.values.max())

    def limit(value):
        return Constraint(
            id=f"test-{value}",
            organ="spinal_cord",
            metric="Dmax",
            quantity="eqd2",
            scope="cumulative",
            comparator="<=",
            limit=value,
            alpha_beta_gy=None,
            recovery_credit=True,
            min_interval_days=None,
            tier=None,
            endpoint="test",
            source="test",
            evidence="test",
        )

    grid_of_scenarios = scenarios((-1.0, 0.0, 1.0), (0.0, 1.0))
    depends = sensitivity(limit(60.0), metric_for, grid_of_scenarios)
    assert depends.status == "depends"
    assert depends.value_min == pytest.approx(48.0)
    assert depends.value_max == pytest.approx(40.0 + 20.0 * 5.0 / 3.0)
    assert sensitivity(limit(80.0), metric_for, grid_of_scenarios).status == "pass in all"
    assert sensitivity(limit(45.0), metric_for, grid_of_scenarios).status == "fail in all"
    with pytest.raises(InputError, match="alpha/beta"):
        sensitivity(limit(60.0), metric_for, scenarios((-2.0,), (1.0,)))
