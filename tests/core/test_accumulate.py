"""Voxel-wise accumulation against closed forms.

The two Nelms linear-gradient dose grids (Med Phys 2015;42(8):4435; one frame of
reference, 2 mm voxels) are used as two courses. Their values are known exactly:
AP grid ``a(y) = max(0, 10 - y)`` Gy, SI grid ``b(z) = max(0, z + 10)`` Gy (checked below
from the files' first and last voxels). Both files are DoseSummationType FRACTION, so a
value is the dose of one fraction; we state 3 fractions for the AP "course" and 5 for the
SI one. Per voxel, with alpha/beta ``ab`` (Fowler JF, Br J Radiol 1989;62:679-694):

    BED  = n a (1 + a / ab),  EQD2 = BED / (1 + 2 / ab)
    cumulative = (1 - f) * EQD2_AP + EQD2_SI   (f: recovered fraction of the earlier course)

The engine is ``reirrad.core.accumulate`` (``CoursePhysical``, ``cumulative_maps``,
``effective_sum``) with the tissue model of ``reirrad.core.tissue``; the overlap rules
themselves are tested in ``tests/test_tissue_model.py``.
"""

from pathlib import Path

import numpy as np
import pytest

from reirrad.core.accumulate import (
    CoursePhysical,
    course_effective,
    cumulative_maps,
    effective_sum,
    phase_total_dose,
    reirradiation_type,
    to_effective,
)
from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.tissue import Tissue, TissueRegion, build_tissue_model
from reirrad.errors import InputError
from reirrad.io.dicom import read_rtdose

DATA = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "nelms-dvh-analytical" / "DOSE_GRIDS"
)
N_AP, N_SI = 3, 5
FULL = (slice(None), slice(None), slice(None))


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


def _courses(nelms) -> list[CoursePhysical]:
    """The two grids as courses: phase totals (fractions stated), oldest (AP) first."""
    ap, si = nelms
    total_ap = phase_total_dose(ap, "FRACTION", fractions=N_AP)
    total_si = phase_total_dose(si, "FRACTION", fractions=N_SI)
    return [
        CoursePhysical("AP", ((float(N_AP), total_ap.values),)),
        CoursePhysical("SI", ((float(N_SI), total_si.values),)),
    ]


def test_nelms_grids_are_the_linear_fields_we_assume(nelms):
    ap, si = nelms
    x, y, z = _coords(ap.grid)
    assert np.allclose(ap.values, np.maximum(0.0, 10.0 - y), atol=1e-5)
    assert np.allclose(si.values, np.maximum(0.0, z + 10.0), atol=1e-5)
    assert ap.provenance["summation_type"] == "FRACTION"
    assert ap.grid == si.grid  # one reference grid: no resampling needed


def test_fraction_dose_needs_the_fractions_stated(nelms):
    ap, _ = nelms
    with pytest.raises(InputError, match="fractions"):
        phase_total_dose(ap, "FRACTION")
    with pytest.raises(InputError, match="FRACTION"):
        to_effective(ap, N_AP, 3.0)  # per-fraction dose used as if it were a total
    with pytest.raises(InputError, match="beam"):
        phase_total_dose(ap, "BEAM", fractions=N_AP)


def test_cumulative_eqd2_closed_form_uniform_alpha_beta(nelms):
    ap, _ = nelms
    ab = 3.0
    courses = _courses(nelms)
    ab_map = np.full(ap.grid.shape, ab)
    total, total_nr = cumulative_maps(courses, ab_map, {})
    _, y, z = _coords(ap.grid)
    a, b = np.maximum(0.0, 10.0 - y), np.maximum(0.0, z + 10.0)
    exact = N_AP * a * (a + ab) / (2 + ab) + N_SI * b * (b + ab) / (2 + ab)
    np.testing.assert_allclose(total, exact, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(total_nr, exact, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(effective_sum(courses, ab), exact, rtol=1e-6, atol=1e-5)
    # a voxel worked by hand: y = -24 (a = 34 Gy/fx), z = 24 (b = 34 Gy/fx), ab 3:
    # 3*34*37/5 + 5*34*37/5 = 754.8 + 1258 = 2012.8 Gy
    k, j = 24, 0
    assert total[k, j, 3] == pytest.approx(2012.8, rel=1e-6)
    # the same through to_effective (the Dose-level conversion, kind EFFECTIVE)
    ap_total = phase_total_dose(ap, "FRACTION", fractions=N_AP)
    effective = to_effective(ap_total, N_AP, ab)
    assert effective.kind is DoseKind.EFFECTIVE and effective.quantity == "EQD2"
    np.testing.assert_allclose(
        effective.values, N_AP * a * (a + ab) / (2 + ab), rtol=1e-6, atol=1e-5
    )


def _organ_model(grid: Grid, organ: np.ndarray):
    """Left half (x < 0): organ, alpha/beta 2 Gy, 40 % of the AP course recovered; the rest
    (default tissue) alpha/beta 10 Gy and none."""
    region = TissueRegion("organ", "organ_at_risk", Tissue(2.0, {"AP": 0.4}), FULL, organ)
    return build_tissue_model(grid.shape, [region], Tissue(10.0, {"AP": 0.0}), courses=["AP"])


def test_cumulative_eqd2_closed_form_tissue_map_and_recovery(nelms):
    """The organ/default tissue map and recovery; BED is checked the same way."""
    ap, _ = nelms
    x, y, z = _coords(ap.grid)
    organ = x < 0
    model = _organ_model(ap.grid, organ)
    a, b = np.maximum(0.0, 10.0 - y), np.maximum(0.0, z + 10.0)
    ab = np.where(organ, 2.0, 10.0)
    f = np.where(organ, 0.4, 0.0)
    np.testing.assert_array_equal(model.alpha_beta, ab)
    np.testing.assert_allclose(model.recovered["AP"], f, rtol=1e-7)
    courses = _courses(nelms)
    for quantity in ("EQD2", "BED"):
        total, total_nr = cumulative_maps(
            courses, model.alpha_beta.astype(float), model.recovered, quantity=quantity
        )
        bed_a = N_AP * a * (1 + a / ab)
        bed_b = N_SI * b * (1 + b / ab)
        scale = 1.0 if quantity == "BED" else 1.0 / (1 + 2.0 / ab)
        exact = ((1 - f) * bed_a + bed_b) * scale
        exact_nr = (bed_a + bed_b) * scale
        np.testing.assert_allclose(total, exact, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(total_nr, exact_nr, rtol=1e-6, atol=1e-5)
        contribution = effective_sum(
            courses, model.alpha_beta, model.recovered, quantity=quantity, only="AP"
        )
        np.testing.assert_allclose(contribution, (1 - f) * bed_a * scale, rtol=1e-6, atol=1e-5)
        # the recovery-free sum and the sensitivity scale s: (1 - s f) EQD2_AP + EQD2_SI
        half = effective_sum(
            courses, model.alpha_beta, model.recovered, quantity=quantity, recovery_scale=0.5
        )
        np.testing.assert_allclose(
            half, ((1 - 0.5 * f) * bed_a + bed_b) * scale, rtol=1e-6, atol=1e-4
        )


def test_per_structure_contributions(nelms):
    """Each course's EQD2 over a 3 x 3 x 25-voxel corner, 50 % recovery of the AP course."""
    ap, _ = nelms
    ab = 3.0
    courses = _courses(nelms)
    f = {"AP": np.full(ap.grid.shape, 0.5)}
    _, y, z = _coords(ap.grid)
    mask = (y <= -20) & (z >= 20)  # y in {-24,-22,-20}, z in {20,22,24}
    assert mask.sum() == 3 * 3 * 25
    contributions = {
        course: (
            effective_sum(courses, ab, f, only=course)[mask],
            effective_sum(courses, ab, None, only=course)[mask],
        )
        for course in ("AP", "SI")
    }
    a_vals = 10.0 - np.array([-24.0, -22.0, -20.0])
    b_vals = np.array([20.0, 22.0, 24.0]) + 10.0
    si, si_nr = contributions["SI"]
    ap_c, ap_nr = contributions["AP"]
    assert si.mean() == pytest.approx(np.mean(_eqd2(N_SI * b_vals, N_SI, ab)), rel=1e-6)
    np.testing.assert_array_equal(si, si_nr)  # the newest course counts in full
    assert ap_nr.mean() == pytest.approx(np.mean(_eqd2(N_AP * a_vals, N_AP, ab)), rel=1e-6)
    assert ap_c.mean() == pytest.approx(0.5 * np.mean(_eqd2(N_AP * a_vals, N_AP, ab)), rel=1e-6)
    assert si.max() == pytest.approx(_eqd2(N_SI * 34.0, N_SI, ab), rel=1e-6)


def test_effective_twice_refused(nelms):
    ap, _ = nelms
    eff = to_effective(phase_total_dose(ap, "FRACTION", fractions=2), 2, 3.0)
    assert eff.kind is DoseKind.EFFECTIVE
    assert eff.provenance["fractions"] == 2
    with pytest.raises(InputError, match="already EFFECTIVE"):
        to_effective(eff, 2, 3.0)
    with pytest.raises(InputError, match="already EFFECTIVE"):
        phase_total_dose(eff, "PLAN")  # an EFFECTIVE dose cannot become a physical phase


def test_unknown_or_mixed_quantities_refused(nelms):
    ap, si = nelms
    total = phase_total_dose(ap, "FRACTION", fractions=2)
    with pytest.raises(InputError, match="EQD2 or BED"):
        to_effective(total, 2, 3.0, "EQD3")
    courses = _courses(nelms)
    with pytest.raises(InputError, match="EQD2 or BED"):
        effective_sum(courses, 3.0, quantity="EQDx")
    # the irradiated volume of the re-irradiation type is a physical-dose quantity: an
    # effective dose among physical ones is refused
    eqd2 = to_effective(total, 2, 3.0)
    with pytest.raises(InputError, match="physical"):
        reirradiation_type([eqd2], si, threshold_gy=19.0)


def test_grids_refused(nelms):
    ap, si = nelms
    other = Grid.from_axes((0, 0, 0), (2, 2, 2), ap.grid.shape)
    moved = Dose(other, ap.values, DoseKind.PHYSICAL, 3, "physical")
    with pytest.raises(InputError, match="grid"):
        reirradiation_type([moved], si, threshold_gy=19.0)
    with pytest.raises(InputError, match="does not match the dose grid"):
        to_effective(phase_total_dose(si, "FRACTION", fractions=5), 5, np.full((2, 2, 2), 3.0))


def test_courses_of_different_shapes_refused():
    one = CoursePhysical("a", ((5.0, np.full((1, 1, 3), 10.0)),))
    other = CoursePhysical("b", ((5.0, np.full((1, 1, 1), 10.0)),))
    with pytest.raises(InputError):
        effective_sum([one, other], 3.0)
    with pytest.raises(InputError):
        cumulative_maps([one, other], np.full((1, 1, 3), 3.0), {})


def test_phases_are_converted_separately():
    """Two phases of one course: 10 x 2 Gy then 5 x 4 Gy, alpha/beta 3: EQD2 = 20 + 28 = 48 Gy
    (not 40 Gy in 15 fractions = 42.67 Gy)."""
    course = CoursePhysical(
        "c", ((10.0, np.full((1, 1, 2), 20.0)), (5.0, np.full((1, 1, 2), 20.0)))
    )
    np.testing.assert_allclose(course_effective(course, 3.0), 20.0 + 20.0 * (4 + 3) / (2 + 3))


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

    shape = (1, 1, 1)
    earlier = CoursePhysical("1", ((20.0, np.full(shape, 40.0)),))
    new = CoursePhysical("2", ((5.0, np.full(shape, 20.0)),))
    ab0, f0 = np.full(shape, 2.0), np.full(shape, 0.5)

    def metric_for(scenario):
        ab, f = scenario_maps(ab0, f0, scenario)
        return float(effective_sum([earlier, new], ab, {"1": f}).max())

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
