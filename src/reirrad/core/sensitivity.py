"""Sensitivity of cumulative-dose constraints to alpha/beta and recovery.

The alpha/beta of a normal tissue and its long-term recovery are uncertain (recovery data
in humans are sparse; see :mod:`reirrad.core.recovery`). A constraint is therefore
evaluated over a grid of scenarios:

* alpha/beta shifted by each value of ``alpha_beta_shifts`` (e.g. -1, 0, +1 Gy), applied
  where ``shift_mask`` is true (e.g. organs at risk only);
* the recovered fraction scaled by each value of ``recovery_scales`` (0 = no recovery up to
  1 = the model's value).

Each constraint is then reported as ``"pass in all"`` scenarios, ``"fail in all"``, or
``"depends"``, with the range of the metric over the scenarios
(:func:`classify_scenarios`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.core.constraints import Constraint, ConstraintResult, evaluate
from reirrad.errors import InputError

__all__ = [
    "Scenario",
    "SensitivityOutcome",
    "classify_scenarios",
    "scenario_maps",
    "scenarios",
    "sensitivity",
]


@dataclass(frozen=True)
class Scenario:
    """One combination of an alpha/beta shift (Gy) and a recovery scale (0..1)."""

    alpha_beta_shift: float
    recovery_scale: float

    @property
    def label(self) -> str:
        return f"a/b {self.alpha_beta_shift:+g} Gy, recovery x{self.recovery_scale:g}"


def scenarios(
    alpha_beta_shifts: Sequence[float] = (-1.0, 0.0, 1.0),
    recovery_scales: Sequence[float] = (0.0, 0.5, 1.0),
) -> tuple[Scenario, ...]:
    """All combinations of the given shifts and recovery scales."""
    for s in recovery_scales:
        if not 0.0 <= float(s) <= 1.0:
            raise InputError("recovery scales must be in [0, 1]", field="recovery_scales")
    return tuple(Scenario(float(a), float(s)) for a in alpha_beta_shifts for s in recovery_scales)


def scenario_maps(
    alpha_beta: ArrayLike,
    recovered_fraction: ArrayLike,
    scenario: Scenario,
    *,
    shift_mask: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """alpha/beta and recovered-fraction maps of one scenario.

    Raises
    ------
    InputError
        When the shift makes an alpha/beta <= 0 Gy somewhere (choose a smaller shift).
    """
    ab = np.array(alpha_beta, dtype=float)
    shift = scenario.alpha_beta_shift
    if shift_mask is None:
        ab = ab + shift
    else:
        ab = np.where(np.asarray(shift_mask, dtype=bool), ab + shift, ab)
    if np.any(ab <= 0):
        raise InputError(
            f"alpha/beta shift {shift:+g} Gy gives alpha/beta <= 0 Gy; use a smaller shift",
            field="alpha_beta_shifts",
        )
    f = np.asarray(recovered_fraction, dtype=float) * scenario.recovery_scale
    return ab, f


@dataclass(frozen=True)
class SensitivityOutcome:
    """A constraint over all scenarios.

    Attributes
    ----------
    status
        ``"pass in all"``, ``"fail in all"`` or ``"depends"``.
    value_min, value_max
        Range of the metric over the scenarios.
    results
        ``(scenario, ConstraintResult)`` per scenario.
    """

    constraint: Constraint
    status: str
    value_min: float
    value_max: float
    results: tuple[tuple[Scenario, ConstraintResult], ...]

    @property
    def failing(self) -> tuple[Scenario, ...]:
        return tuple(s for s, r in self.results if r.status == "fail")


def classify_scenarios(
    constraint: Constraint,
    values: Sequence[tuple[Scenario, float]],
    *,
    interval_days: float | None = None,
) -> SensitivityOutcome:
    """Evaluate ``constraint`` on the metric value of every scenario and summarise."""
    if not values:
        raise InputError("no scenario to evaluate", field="scenarios")
    results = tuple((s, evaluate(constraint, v, interval_days=interval_days)) for s, v in values)
    statuses = {r.status for _, r in results}
    status = (
        "pass in all"
        if statuses == {"pass"}
        else "fail in all"
        if statuses == {"fail"}
        else "depends"
    )
    numbers = [r.value for _, r in results]
    return SensitivityOutcome(constraint, status, float(min(numbers)), float(max(numbers)), results)


def sensitivity(
    constraint: Constraint,
    metric_for: Callable[[Scenario], float],
    scenario_list: Sequence[Scenario] | None = None,
    *,
    interval_days: float | None = None,
) -> SensitivityOutcome:
    """Evaluate ``metric_for(scenario)`` for every scenario and classify the constraint.

    ``metric_for`` recomputes the cumulative map with :func:`scenario_maps` and returns the
    constraint's metric (in its quantity and alpha/beta) on it.
    """
    scenario_list = scenario_list or scenarios()
    return classify_scenarios(
        constraint, [(s, float(metric_for(s))) for s in scenario_list], interval_days=interval_days
    )
