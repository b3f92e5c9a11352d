"""Residual budget against hand-solved LQ values (Fowler 1989 EQD2 formula)."""

import math

import numpy as np
import pytest

from reirrad.core.residual_budget import VoxelLimit, residual_budget
from reirrad.errors import InputError

SHAPE = (1, 2, 3)


def _mask(*flat):
    m = np.zeros(SHAPE, dtype=bool)
    m.reshape(-1)[list(flat)] = True
    return m


def test_exact_round_values():
    # 15 Gy in 5 fractions at a/b 3: EQD2 = 15 (1 + 3/3) / (1 + 2/3) = 18 Gy exactly,
    # so a voxel with limit 50 and residual 32 has a budget of 15 Gy.
    lim = VoxelLimit("cord", _mask(0, 1), 3.0, 50.0, [32.0, 50.0 - 18.0])
    out = residual_budget([lim], SHAPE, 5)
    assert out.values.reshape(-1)[:2] == pytest.approx([15.0, 15.0], rel=1e-12)


def test_quadratic_root():
    # D (1 + D/(n ab)) = r (1 + 2/ab), n = 3, ab = 2, r = 10 Gy: D^2/6 + D - 20 = 0
    n, ab, r = 3, 2.0, 10.0
    expected = (-1 + math.sqrt(1 + 4 * r * (1 + 2 / ab) / (n * ab))) * (n * ab) / 2
    lim = VoxelLimit("brainstem", _mask(2), ab, 54.0, 44.0)
    out = residual_budget([lim], SHAPE, n)
    assert out.values.reshape(-1)[2] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(-3 + math.sqrt(129), rel=1e-12)


def test_most_restrictive_limit_overlap_exhausted_and_outside():
    # voxel 0 in both: a/b 2, limit 60, residual 40 -> 20 Gy EQD2 left, 1 fraction:
    # D (1 + D/2) = 20 (1 + 2/2) = 40, D^2/2 + D - 40 = 0, D = -1 + sqrt(81) = 8
    a = VoxelLimit("a", _mask(0, 3), 2.0, 60.0, [40.0, 70.0])
    # same voxel: a/b 3, limit 50, residual 32, 1 fraction: D + D^2/3 = 18 * 5/3 = 30
    # D = (-3 + sqrt(369)) / 2
    b = VoxelLimit("b", _mask(0), 3.0, 50.0, 32.0)
    out = residual_budget([a, b], SHAPE, 1, unconstrained_gy=99.0)
    flat = out.values.reshape(-1)
    assert flat[0] == pytest.approx(min(8.0, (-3 + math.sqrt(369)) / 2), rel=1e-12)
    assert out.limiting.reshape(-1)[0] == 0
    assert flat[3] == 0.0 and out.exhausted.reshape(-1)[3]
    assert flat[[1, 2, 4, 5]] == pytest.approx([99.0] * 4)
    assert not out.constrained.reshape(-1)[[1, 2, 4, 5]].any()


def test_default_unconstrained_is_infinite():
    out = residual_budget([VoxelLimit("a", _mask(0), 3.0, 50.0, 0.0)], SHAPE, 5)
    assert np.isinf(out.values.reshape(-1)[1:]).all()


def test_bad_inputs_named():
    with pytest.raises(InputError, match="residual"):
        residual_budget([VoxelLimit("a", _mask(0), 3.0, 50.0, [1.0, 2.0])], SHAPE, 5)
    with pytest.raises(InputError, match="fractions"):
        residual_budget([VoxelLimit("a", _mask(0), 3.0, 50.0, 1.0)], SHAPE, 0)
    with pytest.raises(InputError, match="shape"):
        residual_budget([VoxelLimit("a", np.ones((2, 2, 2), bool), 3.0, 50.0, 1.0)], SHAPE, 5)
