"""Fractionation explorer against analytic LQ inverses and hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reirrad.core.explore import (
    CumulativeConstraint,
    CurativeCriterion,
    OrganAtRisk,
    Target,
    evaluate_schemes,
    explore,
)
from reirrad.errors import InputError


def lq_inverse(limit: float, n: float, ab: float, r: float) -> float:
    """Highest prescription dose per fraction: n (r d)(1 + r d/ab) = limit (1 + 2/ab)."""
    return (ab / 2.0) * (-1.0 + math.sqrt(1.0 + 4.0 * limit * (1.0 + 2.0 / ab) / (n * ab))) / r


def organ(name, ab, r, residual, *constraints, **kw):
    return OrganAtRisk(name, ab, r, residual, tuple(constraints), **kw)


@pytest.mark.parametrize("metric", ["Dmax", "Dmean", "D50%"])
def test_single_voxel_equals_analytic_lq_inverse(metric):
    L, ab, r = 45.0, 2.0, 0.8
    oar = organ("cord", ab, [r], 0.0, CumulativeConstraint(metric, L))
    res = explore([oar], Target(10.0), fractions=[1, 3, 5, 30])
    expected = [lq_inverse(L, n, ab, r) for n in (1, 3, 5, 30)]
    np.testing.assert_allclose(res.column("dose_per_fraction_gy"), expected, rtol=1e-12)
    # at the limit the cumulative statistic equals L (margin 0)
    np.testing.assert_allclose(res.cumulative_eqd2(f"cord:{metric}"), L, rtol=1e-12)


def test_residual_reduces_budget_exactly():
    L, R, ab, r = 50.0, 20.0, 2.0, 0.5
    oar = organ("cord", ab, [r, 0.1], [R, 0.0], CumulativeConstraint("Dmax", L))
    res = explore([oar], Target(10.0), fractions=[5])
    # the hot voxel binds: budget L - R
    assert res.rows[0].dose_per_fraction_gy == pytest.approx(lq_inverse(L - R, 5, ab, r))


def test_binding_organ_and_margins_with_two_organs():
    # cord: 30 Gy budget at r = 0.5; brainstem: 40 Gy budget at r = 0.4
    cord = organ("cord", 2.0, [0.5], 20.0, CumulativeConstraint("Dmax", 50.0))
    stem = organ("brainstem", 2.0, [0.4], 14.0, CumulativeConstraint("Dmax", 54.0))
    res = explore([cord, stem], Target(10.0), fractions=[5])
    d_cord, d_stem = lq_inverse(30.0, 5, 2.0, 0.5), lq_inverse(40.0, 5, 2.0, 0.4)
    row = res.row(5)
    assert row.dose_per_fraction_gy == pytest.approx(min(d_cord, d_stem))
    assert row.binding == ("cord:Dmax" if d_cord < d_stem else "brainstem:Dmax")
    # margin of the other, by hand: 54 - (14 + EQD2 of 5 x (0.4 d))
    d = min(d_cord, d_stem)
    x = 0.4 * d
    stem_eqd2 = 14.0 + 5 * x * (1 + x / 2.0) / (1 + 2 / 2.0)
    assert row.margin_eqd2_gy["brainstem:Dmax"] == pytest.approx(54.0 - stem_eqd2)
    assert row.margin_eqd2_gy["cord:Dmax"] == pytest.approx(0.0, abs=1e-9)


def test_mean_constraint_is_mean_of_voxel_eqd2():
    # two equal voxels at r = 0.2 and 0.6, mean EQD2 limit 20 Gy, n = 5, ab = 3:
    # mean = 5 (3 E[r] d + E[r^2] d^2)/5 = 3*0.4 d + 0.2 d^2 = 20 -> 0.2 d^2 + 1.2 d - 20 = 0
    oar = organ("parotid", 3.0, [0.2, 0.6], 0.0, CumulativeConstraint("Dmean", 20.0))
    res = explore([oar], Target(10.0), fractions=[5])
    expected = (-1.2 + math.sqrt(1.2**2 + 4 * 0.2 * 20.0)) / (2 * 0.2)
    assert res.rows[0].dose_per_fraction_gy == pytest.approx(expected, rel=1e-12)


def test_dx_percent_allows_hottest_volume_above_limit():
    # 100 equal voxels; one very hot voxel (r = 1) and 99 at r = 0.5. D2% <= L allows the
    # hottest 1 % (one voxel) above L, so the r = 0.5 voxels bind; D1% does not.
    r = np.array([1.0] + [0.5] * 99)
    L, ab, n = 30.0, 2.0, 5
    d2 = explore(
        [organ("o", ab, r, 0.0, CumulativeConstraint("D2%", L))], Target(10.0), fractions=[n]
    )
    assert d2.rows[0].dose_per_fraction_gy == pytest.approx(lq_inverse(L, n, ab, 0.5))
    d1 = explore(
        [organ("o", ab, r, 0.0, CumulativeConstraint("D1%", L))], Target(10.0), fractions=[n]
    )
    assert d1.rows[0].dose_per_fraction_gy == pytest.approx(lq_inverse(L, n, ab, 1.0))


def test_dx_cc_uses_voxel_volumes():
    r = np.array([1.0, 0.9, 0.5, 0.5])
    oar = organ("tl", 3.0, r, 0.0, CumulativeConstraint("D0.2cc", 60.0), voxel_volume_cc=0.1)
    res = explore([oar], Target(10.0), fractions=[3])
    # hottest 0.2 cc = voxels r=1.0 and r=0.9: D0.2cc is the r = 0.9 voxel
    assert res.rows[0].dose_per_fraction_gy == pytest.approx(lq_inverse(60.0, 3, 3.0, 0.9))
    with pytest.raises(InputError):
        organ("tl", 3.0, r, 0.0, CumulativeConstraint("D1cc", 60.0))  # no voxel volumes


def test_more_residual_gives_lower_dose_monotonic():
    rng = np.random.default_rng(1)
    r = rng.uniform(0.05, 1.0, 2000)
    base = rng.uniform(0.0, 30.0, 2000)
    cons = (
        CumulativeConstraint("Dmax", 60.0),
        CumulativeConstraint("Dmean", 35.0),
        CumulativeConstraint("D5%", 50.0),
    )
    previous = None
    for extra in (0.0, 2.0, 5.0, 10.0):
        res = explore([organ("o", 3.0, r, base + extra, *cons)], Target(10.0))
        d = res.column("dose_per_fraction_gy")
        if previous is not None:
            assert np.all(d < previous)
        previous = d
    # and fewer fractions allow a higher dose per fraction
    assert np.all(np.diff(previous[:10]) < 0)


def test_residual_over_limit_is_infeasible():
    oar = organ("cord", 2.0, [0.3], 51.0, CumulativeConstraint("Dmax", 50.0))
    res = explore([oar], Target(10.0), fractions=[5])
    assert res.rows[0].dose_per_fraction_gy == 0.0
    assert not res.rows[0].feasible


def test_window_and_curative_flags():
    # Target alpha/beta 10: 5 fractions of 8 Gy -> EQD2 = 40 (1 + 0.8)/1.2 = 60 Gy
    oar = organ("cord", 2.0, [0.0], 0.0, CumulativeConstraint("Dmax", 50.0))
    res = explore([oar], Target(10.0), fractions=[1, 3, 5, 6, 7], max_dose_per_fraction_gy=8.0)
    assert list(res.column("binding")) == ["cap"] * 5
    assert res.row(5).eqd2_new_gy == pytest.approx(60.0)
    assert res.row(5).bed_new_gy == pytest.approx(72.0)
    assert list(res.column("in_window")) == [False, True, True, True, False]
    # 1 x 8 Gy: EQD2 = 8 x 1.8/1.2 = 12 Gy < 46; 3 x 8: 36 Gy < 46; 5 x 8: 60 >= 46
    assert list(res.column("curative")) == [False, False, True, True, True]
    # dose per fraction above 15 Gy leaves the window; below 4.25 Gy too
    hi = explore([oar], Target(10.0), fractions=[3], max_dose_per_fraction_gy=16.0).rows[0]
    lo = explore([oar], Target(10.0), fractions=[3], max_dose_per_fraction_gy=4.0).rows[0]
    assert not hi.in_window and hi.window_reachable
    assert not lo.in_window and not lo.window_reachable


def test_cumulative_tumour_dose_and_other_curative_quantities():
    oar = organ("cord", 2.0, [0.0], 0.0, CumulativeConstraint("Dmax", 50.0))
    tgt = Target(10.0, residual_eqd2_gy=35.0)
    res = explore(
        [oar],
        tgt,
        fractions=[4],
        max_dose_per_fraction_gy=6.0,
        curative=CurativeCriterion(46.0, "reirradiation_physical"),
    )
    row = res.rows[0]
    # 4 x 6 Gy at alpha/beta 10: EQD2 = 24 x 1.6/1.2 = 32 Gy, BED 38.4 Gy (hand)
    assert row.eqd2_new_gy == pytest.approx(32.0)
    assert row.eqd2_cumulative_gy == pytest.approx(67.0)
    assert row.bed_cumulative_gy == pytest.approx(38.4 + 35.0 * 1.2)
    assert not row.curative  # 24 Gy physical < 46
    res = explore(
        [oar],
        tgt,
        fractions=[4],
        max_dose_per_fraction_gy=6.0,
        curative=CurativeCriterion(46.0, "cumulative_eqd2"),
    )
    assert res.rows[0].curative


def test_evaluate_schemes_matches_explore_and_flags_grid():
    rng = np.random.default_rng(2)
    a = organ(
        "a",
        2.0,
        rng.uniform(0, 0.6, 500),
        rng.uniform(0, 20, 500),
        CumulativeConstraint("Dmax", 50.0),
        CumulativeConstraint("D10%", 40.0),
    )
    b = organ("b", 3.0, rng.uniform(0, 0.9, 800), 10.0, CumulativeConstraint("Dmean", 30.0))
    best = explore([a, b], Target(10.0), fractions=[3, 5]).column("dose_per_fraction_gy")
    n = np.repeat([3, 5], 3)
    d = np.concatenate([best[0] * np.array([0.9, 1.0, 1.1]), best[1] * np.array([0.9, 1.0, 1.1])])
    ev = evaluate_schemes([a, b], n, d, quantile_values=True)
    assert list(ev.feasible) == [True, True, False] * 2
    # brute-force maximum and mean of the cumulative EQD2 for one scheme
    x = a.relative_dose * d[4]
    eq = a.residual_eqd2_gy + 5 * x * (1 + x / 2.0) / 2.0
    assert ev.statistic_eqd2_gy[4, 0] == pytest.approx(eq.max())
    xb = b.relative_dose * d[4]
    eqb = 10.0 + 5 * xb * (1 + xb / 3.0) / (1 + 2 / 3.0)
    assert ev.statistic_eqd2_gy[4, 2] == pytest.approx(eqb.mean())
    assert ev.labels == ("a:Dmax", "a:D10%", "b:Dmean")


def test_single_statistic_organ_records_assumption():
    oar = OrganAtRisk.from_statistic(
        "parotid", 3.0, 40.0, 15.0, (CumulativeConstraint("Dmean", 40.0),)
    )
    res = explore([oar], Target(10.0), fractions=[5])
    assert res.rows[0].dose_per_fraction_gy == pytest.approx(lq_inverse(25.0, 5, 3.0, 0.4))
    assert any("not conservative" in a for a in res.assumptions)


def test_volume_metric_rejected():
    with pytest.raises(InputError):
        CumulativeConstraint("V20Gy", 30.0)


def test_feasible_region_plot_returns_figure():
    from matplotlib.figure import Figure

    from reirrad.present.plots import plot_feasible_region

    oar = organ("cord", 2.0, [0.5], 20.0, CumulativeConstraint("Dmax", 50.0))
    stem = organ("stem", 2.0, [0.6], 0.0, CumulativeConstraint("Dmax", 54.0))
    fig = plot_feasible_region(explore([oar, stem], Target(10.0)))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1


def _dx_brute_force(values, weights, x_fraction):
    """Minimum value within the hottest x of the volume, from all voxels (test reference)."""
    order = np.argsort(-values)
    cum = np.cumsum(weights[order])
    k = int(np.searchsorted(cum, x_fraction * weights.sum() * (1 - 1e-12), side="left"))
    return values[order][k]


@pytest.mark.parametrize("uniform", [True, False])
def test_dx_at_explored_limit_equals_limit_on_all_voxels(uniform):
    # correlated residual and relative dose (pruning active) and the Dx of the full voxel
    # set recomputed here must equal the limit at the explored dose per fraction
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 1, 20000))
    r = np.clip(0.9 * t + rng.normal(0, 0.05, t.size), 0, None)
    res = np.clip(30 * t + rng.normal(0, 2, t.size), 0, None)
    vol = 0.01 if uniform else rng.uniform(0.005, 0.02, t.size)
    oar = organ("o", 3.0, r, res, CumulativeConstraint("D5%", 60.0), voxel_volume_cc=vol)
    result = explore([oar], Target(10.0), fractions=[1, 5, 30])
    w = np.broadcast_to(vol, t.shape)
    for n, d in zip(result.column("fractions"), result.column("dose_per_fraction_gy"), strict=True):
        x = r * d
        eq = res + n * x * (1 + x / 3.0) / (1 + 2 / 3.0)
        assert _dx_brute_force(eq, w, 0.05) == pytest.approx(60.0, rel=1e-9)
        # a 0.1 % higher dose per fraction violates it
        x = r * d * 1.001
        eq = res + n * x * (1 + x / 3.0) / (1 + 2 / 3.0)
        assert _dx_brute_force(eq, w, 0.05) > 60.0


def test_typed_rows_and_accessors():
    # two organs, one voxel each: cord binds at 5 fractions (see the two-organ test above)
    cord = organ("cord", 2.0, [0.5], 20.0, CumulativeConstraint("Dmax", 50.0))
    stem = organ("brainstem", 2.0, [0.4], 14.0, CumulativeConstraint("Dmax", 54.0))
    res = explore([cord, stem], Target(10.0), fractions=[3, 5])
    assert res.labels == ("cord:Dmax", "brainstem:Dmax")
    assert [row.fractions for row in res.rows] == [3.0, 5.0]
    row = res.row(5)
    assert row is res.rows[1]
    assert row.binding == "cord:Dmax"
    assert row.dose_per_fraction_gy == pytest.approx(lq_inverse(30.0, 5, 2.0, 0.5))
    assert row.total_dose_gy == pytest.approx(5 * lq_inverse(30.0, 5, 2.0, 0.5))
    assert row.cumulative_eqd2_gy["cord:Dmax"] == pytest.approx(50.0)
    with pytest.raises(TypeError):
        row.margin_eqd2_gy["cord:Dmax"] = 1.0  # read-only
    assert res.column("dose_per_fraction_gy").dtype == np.float64
    assert res.column("feasible").dtype == np.bool_ and res.column("feasible").all()
    assert list(res.column("binding")) == ["cord:Dmax", "cord:Dmax"]
    np.testing.assert_allclose(res.cumulative_eqd2("cord:Dmax"), 50.0, rtol=1e-12)
    np.testing.assert_allclose(res.margin_eqd2("cord:Dmax"), 0.0, atol=1e-9)
    with pytest.raises(KeyError):
        res.row(4)
    with pytest.raises(KeyError):
        res.column("eqd2:cord:Dmax")
    with pytest.raises(KeyError):
        res.cumulative_eqd2("spinal cord:Dmax")


def test_unconstrained_row_has_no_binding():
    # relative dose 0: no dose per fraction reaches the organ, nothing limits the scheme
    oar = organ("cord", 2.0, [0.0], 0.0, CumulativeConstraint("Dmax", 50.0))
    row = explore([oar], Target(10.0), fractions=[5]).rows[0]
    assert row.dose_per_fraction_gy == math.inf
    assert row.binding is None and not row.feasible
    assert math.isnan(row.eqd2_new_gy)


def test_presentation_tables_flatten_the_rows():
    from reirrad.present.explore import explorer_frame, explorer_records, scheme_frame

    L, ab, r = 45.0, 2.0, 0.8
    oar = organ("cord", ab, [r], 0.0, CumulativeConstraint("Dmax", L))
    res = explore([oar], Target(10.0), fractions=[1, 5])
    expected = [lq_inverse(L, n, ab, r) for n in (1, 5)]
    frame = explorer_frame(res)
    assert list(frame.columns[-2:]) == ["eqd2:cord:Dmax", "margin_eqd2:cord:Dmax"]
    np.testing.assert_allclose(frame["dose_per_fraction_gy"], expected, rtol=1e-12)
    np.testing.assert_allclose(frame["eqd2:cord:Dmax"], L, rtol=1e-12)
    records = explorer_records(res)
    assert records[1]["fractions"] == 5.0 and records[1]["binding"] == "cord:Dmax"
    assert records[1]["margin_eqd2:cord:Dmax"] == pytest.approx(0.0, abs=1e-9)
    # a grid around the limit: headroom is the analytic limit minus the scheme's dose
    d = np.array([0.9, 1.0, 1.1]) * expected[1]
    ev = scheme_frame(evaluate_schemes([oar], 5, d))
    np.testing.assert_allclose(ev["headroom_gy_per_fx:cord:Dmax"], expected[1] - d, atol=1e-9)
    assert list(ev["feasible"]) == [True, True, False]
    x = r * d
    np.testing.assert_allclose(
        ev["margin_eqd2:cord:Dmax"], L - 5 * x * (1 + x / ab) / (1 + 2 / ab), rtol=1e-12
    )
