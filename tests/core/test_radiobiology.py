"""LQ conversions against hand-computed values and properties (hypothesis)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reirrad import (
    LQL,
    PEDICINI_2015_HEAD_NECK,
    InputError,
    bed,
    dose_for_bed,
    dose_for_eqd2,
    eqd2,
    eqdx,
)

doses = st.floats(min_value=0.0, max_value=150.0, allow_nan=False)
fractions = st.integers(min_value=1, max_value=45)
alpha_betas = st.floats(min_value=0.5, max_value=25.0, allow_nan=False)


def test_textbook_values():
    # 60 Gy in 30 fractions, alpha/beta 3: BED = 60 (1 + 2/3) = 100 Gy; EQD2 = 60 Gy.
    assert bed(60, 30, 3) == pytest.approx(100.0)
    assert eqd2(60, 30, 3) == pytest.approx(60.0)
    # 8 Gy single fraction, alpha/beta 10: BED = 8 * 1.8 = 14.4; EQD2 = 14.4 / 1.2 = 12.
    assert bed(8, 1, 10) == pytest.approx(14.4)
    assert eqd2(8, 1, 10) == pytest.approx(12.0)
    # EQD3.5 of 24 Gy / 4 at alpha/beta 3: BED 72 -> 72 / (1 + 3.5/3) = 33.2308.
    assert eqdx(24, 4, 3, 3.5) == pytest.approx(72 / (1 + 3.5 / 3))


def test_case_report_tumour_numbers():
    # Marinova 2026, Discussion: 70 Gy at 2.12 Gy/fx, alpha/beta 15 -> EQD2 70.4, BED 79.8
    # (the report truncates: exact values 70.499 and 79.899); 4 x 6 Gy -> EQD2 29.6, BED 33.6.
    assert bed(70, 33, 15) == pytest.approx(70 * (1 + (70 / 33) / 15))
    assert eqd2(70, 33, 15) == pytest.approx(70.4, abs=0.1)
    assert bed(70, 33, 15) == pytest.approx(79.8, abs=0.1)
    assert eqd2(24, 4, 15) == pytest.approx(29.6, abs=0.05)
    assert bed(24, 4, 15) == pytest.approx(33.6, abs=1e-9)


def test_arrays_broadcast():
    result = eqd2(np.array([0.0, 2.0, 40.0]), np.array([1, 1, 20]), 3.0)
    assert result == pytest.approx([0.0, 2.0, 40.0])


def test_inverse_closed_form():
    # 5 fractions, alpha/beta 3, EQD2 budget 40 Gy -> BED 66.667; d from d^2/3 + d = 13.333
    d = (3 / 2) * (-1 + math.sqrt(1 + 4 * (40 * (1 + 2 / 3) / 5) / 3))
    assert dose_for_eqd2(40, 5, 3) == pytest.approx(5 * d)
    assert dose_for_bed(100, 30, 3) == pytest.approx(60.0)


def test_lql_astrahan():
    # Below the transition dose LQ-L equals LQ.
    assert bed(20, 5, 3, lql=LQL(6.0)) == pytest.approx(bed(20, 5, 3))
    # Above: BED/n = dT(1 + dT/ab) + (d - dT)(1 + 2dT/ab); 1 x 20 Gy, dT 6, ab 3:
    expected = 6 * (1 + 6 / 3) + (20 - 6) * (1 + 12 / 3)
    assert bed(20, 1, 3, lql=LQL(6.0)) == pytest.approx(expected)
    assert dose_for_bed(expected, 1, 3, lql=LQL(6.0)) == pytest.approx(20.0)


def test_repopulation_pedicini():
    # 70 Gy / 35 fx in 45 days, ab 10.6, Tk 19.2 d, Dprolif 0.69 Gy/d:
    # EQD2 loss = 0.69 * (45 - 19.2) = 17.802 Gy.
    plain = eqd2(70, 35, 10.6)
    corrected = eqd2(70, 35, 10.6, repopulation=PEDICINI_2015_HEAD_NECK, overall_time_days=45)
    assert plain - corrected == pytest.approx(0.69 * (45 - 19.2))
    # No loss before the kick-off time.
    assert eqd2(
        70, 35, 10.6, repopulation=PEDICINI_2015_HEAD_NECK, overall_time_days=15
    ) == pytest.approx(plain)
    with pytest.raises(InputError, match="overall treatment time"):
        eqd2(70, 35, 10.6, repopulation=PEDICINI_2015_HEAD_NECK)


@pytest.mark.parametrize(
    "args, field",
    [
        ((-1, 5, 3), "dose"),
        ((10, 0, 3), "fractions"),
        ((10, 5, 0), "alpha_beta"),
        ((10, 5, -2), "alpha_beta"),
    ],
)
def test_bad_arguments(args, field):
    with pytest.raises(InputError) as error:
        bed(*args)
    assert error.value.field == field


@given(total=doses, n=fractions, ab=alpha_betas)
def test_eqd2_at_two_gray_per_fraction_is_physical(total, n, ab):
    # Whatever the alpha/beta, 2 Gy fractions have EQD2 equal to the physical dose.
    assert eqd2(2.0 * n, n, ab) == pytest.approx(2.0 * n)
    del total


@given(total=doses, n=fractions, ab=alpha_betas)
def test_inverse_round_trips(total, n, ab):
    assert dose_for_eqd2(eqd2(total, n, ab), n, ab) == pytest.approx(total, rel=1e-9, abs=1e-9)
    assert dose_for_bed(bed(total, n, ab), n, ab) == pytest.approx(total, rel=1e-9, abs=1e-9)


@given(a=doses, b=doses, n=fractions, ab=alpha_betas)
def test_eqd2_monotonic_in_dose(a, b, n, ab):
    low, high = sorted((a, b))
    assert eqd2(low, n, ab) <= eqd2(high, n, ab) + 1e-12
