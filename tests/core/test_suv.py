"""SUV arithmetic, SUVpeak and threshold volumes against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reirrad.core.geometry import Grid
from reirrad.core.pet import (
    ThresholdKind,
    ThresholdRule,
    decayed_activity,
    peak_sphere_kernel,
    suv_body_weight_factor,
    threshold_volume,
    uptake_statistics,
)


def test_decay_halves_in_one_half_life():
    assert decayed_activity(400e6, 6586.2, 6586.2) == pytest.approx(200e6, rel=1e-12)
    assert decayed_activity(400e6, 0.0, 6586.2) == pytest.approx(400e6, rel=1e-12)


def test_suv_factor_uniform_distribution_gives_one():
    # 70 kg of water-density tissue holding 350 MBq uniformly: 5000 Bq/g -> SUV 1
    factor = suv_body_weight_factor(70.0, 350e6, 6586.2, 0.0)
    assert 5000.0 * factor == pytest.approx(1.0, rel=1e-12)


def test_peak_kernel_is_a_one_cc_sphere():
    kernel = peak_sphere_kernel((4.0, 4.0, 4.0), samples=9)
    assert kernel.sum() == pytest.approx(1.0)
    # the sampled sphere volume (unnormalised) approaches 1 cm^3
    radius = (3 * 1000 / (4 * math.pi)) ** (1 / 3)
    assert radius == pytest.approx(6.2035, abs=1e-4)  # 1.24 cm across (PERCIST: about 1.2 cm)


def _grid(n=40, spacing=4.0):
    return Grid.from_axes(origin=(0, 0, 0), spacing=(spacing,) * 3, shape=(n, n, n))


def test_uptake_statistics_uniform_block():
    grid = _grid(20)
    suv = np.ones(grid.shape)
    suv[5:15, 5:15, 5:15] = 8.0
    region = np.zeros(grid.shape, bool)
    region[5:15, 5:15, 5:15] = True
    stats = uptake_statistics(suv, grid, region)
    assert stats.suv_max == 8.0
    assert stats.suv_mean == 8.0
    assert stats.suv_peak == pytest.approx(8.0)  # a 1 cc sphere fits inside a 40 mm cube
    assert stats.volume_cc == pytest.approx(1000 * 0.064)


def test_suv_peak_of_a_single_hot_voxel_is_its_share_of_the_sphere():
    grid = _grid(15)
    suv = np.zeros(grid.shape)
    suv[7, 7, 7] = 1000.0
    region = suv > 0
    stats = uptake_statistics(suv, grid, region)
    kernel = peak_sphere_kernel((4.0, 4.0, 4.0))
    centre = tuple(s // 2 for s in kernel.shape)
    assert stats.suv_peak == pytest.approx(1000.0 * kernel[centre])
    assert stats.suv_max == 1000.0


def test_threshold_rules():
    assert ThresholdRule.parse("40%") == ThresholdRule(ThresholdKind.RELATIVE_TO_MAX, 0.4)
    assert ThresholdRule.parse("2.5") == ThresholdRule(ThresholdKind.ABSOLUTE, 2.5)
    for bad in ("0", "-1", "100%", "nan"):
        with pytest.raises(ValueError):
            ThresholdRule.parse(bad)
    suv = np.array([[[1.0, 2.0, 3.0, 10.0]]])
    region = np.ones(suv.shape, bool)
    mask, level = threshold_volume(suv, region, ThresholdRule.parse("40%"))
    assert level == pytest.approx(4.0)
    assert mask.sum() == 1
    mask, level = threshold_volume(suv, region, ThresholdRule.parse("2.5"))
    assert mask.sum() == 2
