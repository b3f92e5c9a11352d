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


def test_models_warn_outside_the_intervals_their_source_supports():
    """The case report's 50 % is stated 'after an interval of 2 years' (Marinova 2026); the
    step rule's series were re-irradiated after 6-97 months (Doi et al. 2021, abstract)."""
    from reirrad.core.recovery import DAYS_PER_MONTH, builtin_recovery_models

    models = builtin_recovery_models()
    fixed = models["marinova2026-fixed-50"]
    assert "469 days" in fixed.evidence_warning(469)  # the case report's own interval
    assert fixed.evidence_warning(800) is None
    step = models["nieder-step"]
    assert step.evidence_warning(100) is not None
    assert step.evidence_warning(400) is None
    assert step.evidence_warning(98 * DAYS_PER_MONTH) is not None
    assert models["none"].evidence_warning(10) is None


def test_user_model_states_its_supported_intervals():
    from reirrad.core.recovery import recovery_model_from_spec
    from reirrad.errors import InputError

    spec = {"model": "fixed", "fraction": 0.3, "citation": "c", "evidence": "e",
            "supported_interval_days": [365, None]}  # fmt: skip
    model = recovery_model_from_spec(spec)
    assert model.evidence_warning(100) is not None and model.evidence_warning(400) is None
    with pytest.raises(InputError, match="supported_interval_days"):
        recovery_model_from_spec({**spec, "supported_interval_days": [400, 100]})


def test_credit_window_of_the_step_rule_is_6_to_12_months():
    """Doi et al. 2021's step rule: nothing before 6 months (182.625 days), 25 % from then,
    the full 50 % from 12 months (365.25 days); days are whole, so 183 and 366."""
    from reirrad.core.recovery import builtin_recovery_models, credit_window

    assert credit_window(builtin_recovery_models()["nieder-step"]) == (183, 366)
    assert credit_window(builtin_recovery_models()["none"]) is None
