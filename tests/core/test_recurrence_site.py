"""Recurrence site against an earlier dose: analytic dose slabs and boxes."""

import numpy as np
import pytest

from reirrad.core.geometry import Grid
from reirrad.core.recurrence_site import SiteClass, classify_recurrence_site


def _setup():
    grid = Grid.from_axes(origin=(0, 0, 0), spacing=(2.0, 2.0, 2.0), shape=(10, 10, 40))
    dose = np.zeros(grid.shape)
    dose[:, :, :20] = 70.0  # i < 20 treated to 70 Gy, the rest 0
    return grid, dose


@pytest.mark.parametrize(
    ("first", "last", "share", "expected"),
    [(5, 15, 1.0, SiteClass.IN_FIELD), (10, 30, 0.5, SiteClass.MARGINAL),
     (18, 28, 0.2, SiteClass.MARGINAL), (19, 29, 0.1, SiteClass.OUTSIDE),
     (25, 35, 0.0, SiteClass.OUTSIDE)],
)  # fmt: skip
def test_volume_method(first, last, share, expected):
    grid, dose = _setup()
    occupancy = np.zeros(grid.shape)
    occupancy[3:7, 3:7, first:last] = 1.0
    site = classify_recurrence_site(dose, grid, occupancy, 70.0)
    assert site.share_treated == pytest.approx(share)
    assert site.volume_class is expected
    assert site.volume_cc == pytest.approx(4 * 4 * (last - first) * 0.008)
    assert site.isodose_gy == pytest.approx(66.5)


def test_centroid_and_dose_statistics():
    grid, dose = _setup()
    occupancy = np.zeros(grid.shape)
    occupancy[3:7, 3:7, 10:30] = 1.0  # centre of mass at i = 19.5, between 70 and 0 Gy
    site = classify_recurrence_site(dose, grid, occupancy, 70.0)
    assert site.centroid_mm[0] == pytest.approx(39.0)
    assert site.centroid_dose_gy == pytest.approx(35.0)  # trilinear half-way
    assert site.centroid_inside is False
    assert site.dose_mean_gy == pytest.approx(35.0)
    assert (site.dose_min_gy, site.dose_max_gy) == (0.0, 70.0)
    assert site.d95_gy == 0.0
    occupancy[:] = 0
    occupancy[3:7, 3:7, 2:12] = 1.0
    assert classify_recurrence_site(dose, grid, occupancy, 70.0).d95_gy == 70.0


def test_refusals():
    grid, dose = _setup()
    with pytest.raises(ValueError):
        classify_recurrence_site(dose, grid, np.zeros(grid.shape), 70.0)
    with pytest.raises(ValueError):
        classify_recurrence_site(dose, grid, np.ones(grid.shape), 0.0)
