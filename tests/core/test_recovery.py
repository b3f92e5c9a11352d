"""Recovery models: published rules and properties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reirrad.core.recovery import (
    DAYS_PER_MONTH,
    ExponentialRecovery,
    FixedRecovery,
    TableRecovery,
    builtin_recovery_models,
    recovery_model_from_spec,
)
from reirrad.errors import InputError

MODELS = builtin_recovery_models()


def test_every_builtin_model_cites_its_source():
    for name, model in MODELS.items():
        assert model.citation.strip(), name
        assert model.evidence.strip(), name


def test_report_convention_is_half():
    assert MODELS["marinova2026-fixed-50"].recovered_fraction(2 * 365) == 0.5


def test_nieder_step_rule():
    step = MODELS["nieder-step"]
    months = np.array([0, 5.99, 6.0, 11.9, 12.0, 40])
    assert step.recovered_fraction(months * DAYS_PER_MONTH) == pytest.approx(
        [0, 0, 0.25, 0.25, 0.5, 0.5]
    )


def test_exponential_shape():
    model = ExponentialRecovery(onset_delay_months=2, half_time_months=6, ceiling=0.8)
    days = np.array([0, 2, 8, 14]) * DAYS_PER_MONTH
    # 0 before onset; one half-time after onset: 0.8 * 0.5; two: 0.8 * 0.75.
    assert model.recovered_fraction(days) == pytest.approx([0, 0, 0.4, 0.6])


def test_linear_table():
    model = TableRecovery(points=((6, 0.0), (18, 0.6)), interpolation="linear")
    assert model.recovered_fraction(12 * DAYS_PER_MONTH) == pytest.approx(0.3)


def test_user_models_need_citation():
    with pytest.raises(InputError, match="citation"):
        recovery_model_from_spec({"model": "fixed", "fraction": 0.3})
    model = recovery_model_from_spec(
        {"model": "fixed", "fraction": 0.3, "citation": "local protocol", "evidence": "opinion"}
    )
    assert model.recovered_fraction(100) == 0.3


@pytest.mark.parametrize(
    "spec",
    [
        "no-such-model",
        {"model": "fixed", "fraction": 1.5, "citation": "x", "evidence": "y"},
        {"model": "spline", "citation": "x", "evidence": "y"},
    ],
)
def test_bad_specs(spec):
    with pytest.raises(InputError):
        recovery_model_from_spec(spec)


def test_negative_interval_refused():
    with pytest.raises(InputError, match="interval"):
        FixedRecovery(fraction=0.5).recovered_fraction(-3)


@given(
    days=st.floats(min_value=0, max_value=20 * 365),
    onset=st.floats(min_value=0, max_value=24),
    half=st.floats(min_value=0.1, max_value=60),
    ceiling=st.floats(min_value=0, max_value=1),
    eqd2=st.floats(min_value=0, max_value=200),
)
def test_recovery_never_raises_the_residual_dose(days, onset, half, ceiling, eqd2):
    models = [
        *MODELS.values(),
        ExponentialRecovery(onset_delay_months=onset, half_time_months=half, ceiling=ceiling),
    ]
    for model in models:
        residual = eqd2 * model.residual_factor(days)
        assert 0.0 <= residual <= eqd2 + 1e-12
