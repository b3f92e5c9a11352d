"""Time-dependent recovery ("residual dose") models for earlier courses.

A recovery model gives the *recovered fraction* f(t) of an earlier course's biological dose
after an interval t between the end of that course and the start of the new one.  The
residual (effective) dose the tissue still carries is ``(1 - f) * EQD2`` (and likewise for
BED).  Recovery is a property of a normal tissue; for a recurrent tumour the usual
assumption is none (the report itself treats the tumour as "having zero effective dose
for the purpose of cell killing" only in words, and sums 50 % of the first course).

Every model states its citation and the strength of the evidence behind it.  None of the
models here is well established: human data on long-term recovery are sparse (spinal cord
mostly), which is why reirrad always reports the no-recovery sum next to the recovered one.

Intervals are in days; months are ``days / 30.4375`` (365.25 / 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.errors import InputError

__all__ = [
    "DAYS_PER_MONTH",
    "ExponentialRecovery",
    "FixedRecovery",
    "NoRecovery",
    "RecoveryModel",
    "TableRecovery",
    "builtin_recovery_models",
    "credit_window",
    "recovery_model_from_spec",
]

DAYS_PER_MONTH = 365.25 / 12.0


def _months(interval_days: ArrayLike) -> NDArray[np.float64]:
    days = np.asarray(interval_days, dtype=float)
    if np.any(~np.isfinite(days)) or np.any(days < 0):
        raise InputError(
            "the interval between courses must be >= 0 days (does a later course start "
            "before an earlier one ends?)",
            field="interval_days",
        )
    return days / DAYS_PER_MONTH


@dataclass(frozen=True)
class RecoveryModel:
    """Base class: a named model with its citation and evidence level.

    ``supported_interval_days`` is the range of intervals (days, ``None`` for an open end) its
    source supports; applied outside it the model still gives a number, and
    :meth:`evidence_warning` says so.
    """

    name: str = "none"
    citation: str = ""
    evidence: str = ""
    supported_interval_days: tuple[float | None, float | None] | None = None

    def evidence_warning(self, interval_days: float) -> str | None:
        """A warning when ``interval_days`` lies outside the intervals the source supports."""
        if self.supported_interval_days is None:
            return None
        low, high = self.supported_interval_days
        if (low is None or interval_days >= low) and (high is None or interval_days <= high):
            return None
        span = (
            f"{low:g} days or more" if high is None
            else f"up to {high:g} days" if low is None
            else f"{low:g}-{high:g} days"
        )  # fmt: skip
        return (
            f"recovery model {self.name} applied at an interval of {interval_days:g} days, outside "
            f"the {span} its source supports ({self.citation}): the recovered fraction is an "
            "extrapolation"
        )

    def recovered_fraction(self, interval_days: ArrayLike) -> NDArray[np.float64]:
        """Recovered fraction in [0, 1] after ``interval_days`` (scalar or array)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for reports: name, parameters and citation."""
        return f"{self.name}: {self.parameters_text()} ({self.citation})"

    def parameters_text(self) -> str:
        return ""

    def residual_factor(self, interval_days: ArrayLike) -> NDArray[np.float64]:
        """``1 - recovered_fraction``: the share of the earlier dose still counted."""
        return 1.0 - self.recovered_fraction(interval_days)


@dataclass(frozen=True)
class NoRecovery(RecoveryModel):
    """No recovery: the earlier course counts in full (the conservative default)."""

    name: str = "none"
    citation: str = "conservative assumption: no recovery is credited"
    evidence: str = "not a model; the safe bound"

    def recovered_fraction(self, interval_days: ArrayLike) -> NDArray[np.float64]:
        return np.zeros_like(_months(interval_days))[()]

    def parameters_text(self) -> str:
        return "0 % recovered at any interval"


@dataclass(frozen=True)
class FixedRecovery(RecoveryModel):
    """A fixed recovered fraction, whatever the interval (optionally only beyond a minimum)."""

    fraction: float = 0.5
    min_interval_days: float = 0.0
    name: str = "fixed"

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise InputError("recovered fraction must be between 0 and 1", field="fraction")
        if self.min_interval_days < 0:
            raise InputError("must be >= 0 days", field="min_interval_days")

    def recovered_fraction(self, interval_days: ArrayLike) -> NDArray[np.float64]:
        days = np.asarray(interval_days, dtype=float)
        months = _months(days)
        return np.where(days >= self.min_interval_days, self.fraction, 0.0) + 0.0 * months

    def parameters_text(self) -> str:
        text = f"{100 * self.fraction:g} % recovered"
        if self.min_interval_days:
            text += f" from {self.min_interval_days:g} days on, none before"
        return text


@dataclass(frozen=True)
class TableRecovery(RecoveryModel):
    """Recovered fraction from a table of (months, fraction) points.

    ``interpolation="step"``: the fraction of the last point whose month is <= the interval
    (0 before the first point).  ``"linear"``: linear between points, constant outside.
    """

    points: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    interpolation: str = "step"
    name: str = "table"

    def __post_init__(self) -> None:
        points = tuple((float(m), float(f)) for m, f in self.points)
        if not points:
            raise InputError("a recovery table needs at least one point", field="points")
        months = [m for m, _ in points]
        if any(b <= a for a, b in zip(months, months[1:], strict=False)):
            raise InputError("table months must be strictly increasing", field="points")
        if any(m < 0 for m in months):
            raise InputError("table months must be >= 0", field="points")
        if any(not 0.0 <= f <= 1.0 for _, f in points):
            raise InputError("table fractions must be between 0 and 1", field="points")
        if self.interpolation not in ("step", "linear"):
            raise InputError("interpolation must be 'step' or 'linear'", field="interpolation")
        object.__setattr__(self, "points", points)

    def recovered_fraction(self, interval_days: ArrayLike) -> NDArray[np.float64]:
        months = _months(interval_days)
        xs = np.array([m for m, _ in self.points])
        fs = np.array([f for _, f in self.points])
        if self.interpolation == "linear":
            return np.interp(months, xs, fs, left=0.0 if xs[0] > 0 else fs[0])[()]
        index = np.searchsorted(xs, months, side="right") - 1
        return np.where(index >= 0, fs[np.clip(index, 0, None)], 0.0)[()]

    def parameters_text(self) -> str:
        parts = [f">= {m:g} mo: {100 * f:g} %" for m, f in self.points]
        return f"{self.interpolation} table (" + "; ".join(parts) + ")"


@dataclass(frozen=True)
class ExponentialRecovery(RecoveryModel):
    """Saturating exponential recovery after an onset delay.

    ``f(t) = ceiling * (1 - 2 ** (-(t - delay) / half_time))`` for ``t > delay``, else 0.

    The shape (no recovery for a latent period, then recovery saturating below 100 %) is
    the one fitted to the primate spinal-cord retreatment data of Ang KK et al.,
    Int J Radiat Oncol Biol Phys 2001;50(4):1013-1020, by Woolley TE et al., Int J Radiat
    Biol 2018;94(6):515-531 (onset about 70 days after the first course).  The parameters
    are tissue-specific and have no default here: the user must state them.
    """

    onset_delay_months: float = 0.0
    half_time_months: float = 1.0
    ceiling: float = 0.0
    name: str = "exponential"

    def __post_init__(self) -> None:
        if self.onset_delay_months < 0:
            raise InputError("must be >= 0 months", field="onset_delay_months")
        if not self.half_time_months > 0:
            raise InputError("must be > 0 months", field="half_time_months")
        if not 0.0 <= self.ceiling <= 1.0:
            raise InputError("ceiling must be between 0 and 1", field="ceiling")

    def recovered_fraction(self, interval_days: ArrayLike) -> NDArray[np.float64]:
        months = _months(interval_days)
        elapsed = np.maximum(0.0, months - self.onset_delay_months)
        return (self.ceiling * (1.0 - np.exp2(-elapsed / self.half_time_months)))[()]

    def parameters_text(self) -> str:
        return (
            f"onset {self.onset_delay_months:g} mo, half-time {self.half_time_months:g} mo, "
            f"ceiling {100 * self.ceiling:g} %"
        )


_BUILTIN: dict[str, RecoveryModel] = {}


def _register(model: RecoveryModel) -> None:
    _BUILTIN[model.name] = model


_register(NoRecovery())
_register(
    FixedRecovery(
        name="marinova2026-fixed-50",
        fraction=0.5,
        citation=(
            "Marinova L et al., Med Clin Res 2026;11(3):1-12 (case report): 'after an interval "
            "of 2 years ... 50% of the realized dose is reduced'"
        ),
        evidence="convention stated in a case report; no data behind the number",
        # the report states the 50 % for an interval of 2 years
        supported_interval_days=(730.5, None),
    )
)
_register(
    TableRecovery(
        name="nieder-step",
        points=((0.0, 0.0), (6.0, 0.25), (12.0, 0.5)),
        interpolation="step",
        citation=(
            "step rule (0 % < 6 months, 25 % at 6-12 months, 50 % > 12 months): Doi H, Tamari K, "
            "Oh RJ, Nieder C. New clinical data on human spinal cord re-irradiation tolerance. "
            "Strahlenther Onkol 2021;197:463-473, introduction (time-dependent recovery of 25 % "
            "after 6 months and 50 % after 12 months, quoted from their reference 10), for the "
            "spinal cord"
        ),
        evidence=(
            "clinical convention for spinal cord from small retrospective series; "
            "low evidence, not validated for other organs"
        ),
        # the patients of Doi et al. 2021 (abstract) were re-irradiated after 6-97 months
        supported_interval_days=(6 * DAYS_PER_MONTH, 97 * DAYS_PER_MONTH),
    )
)


def _interval_range(value) -> tuple[float | None, float | None]:
    try:
        low, high = value
        low = None if low is None else float(low)
        high = None if high is None else float(high)
    except (TypeError, ValueError):
        raise InputError(
            "supported_interval_days is [minimum, maximum] in days (null for an open end)",
            field="recovery.supported_interval_days",
        ) from None
    if (low is not None and low < 0) or (low is not None and high is not None and high < low):
        raise InputError(
            "supported_interval_days must be 0 <= minimum <= maximum",
            field="recovery.supported_interval_days",
        )
    return low, high


def builtin_recovery_models() -> dict[str, RecoveryModel]:
    """The named models shipped with reirrad (a copy; keys are the names used in case files)."""
    return dict(_BUILTIN)


def recovery_model_from_spec(spec: str | dict | RecoveryModel) -> RecoveryModel:
    """Build a model from a built-in name or a mapping such as ``{"model": "fixed", ...}``.

    Mapping forms (``citation`` and ``evidence`` are required for user-defined models so
    that every result can state where its recovery assumption came from)::

        {model: fixed, fraction: 0.5, min_interval_days: 0, citation: ..., evidence: ...}
        {model: table, points: [[0, 0], [6, 0.25], [12, 0.5]], interpolation: step, ...}
        {model: exponential, onset_delay_months: 2.3, half_time_months: 6, ceiling: 0.7, ...}
    """
    if isinstance(spec, RecoveryModel):
        return spec
    if isinstance(spec, str):
        try:
            return _BUILTIN[spec]
        except KeyError:
            raise InputError(
                f"unknown recovery model {spec!r}; built-in models: {', '.join(sorted(_BUILTIN))}"
                " (or define one with model: fixed/table/exponential)",
                field="recovery",
            ) from None
    if not isinstance(spec, dict) or "model" not in spec:
        raise InputError("a recovery model is a name or a mapping with 'model'", field="recovery")
    options = dict(spec)
    kind = options.pop("model")
    if kind == "none":
        return NoRecovery()
    if kind in _BUILTIN and not options:
        return _BUILTIN[kind]
    for key in ("citation", "evidence"):
        if not str(options.get(key, "")).strip():
            raise InputError(
                f"a user-defined recovery model needs '{key}' (where the numbers come from)",
                field=f"recovery.{key}",
            )
    classes = {"fixed": FixedRecovery, "table": TableRecovery, "exponential": ExponentialRecovery}
    if kind not in classes:
        raise InputError(
            f"unknown recovery model type {kind!r}; use none, fixed, table or exponential",
            field="recovery.model",
        )
    options.setdefault("name", options.pop("id", f"user-{kind}"))
    if "supported_interval_days" in options:
        options["supported_interval_days"] = _interval_range(options["supported_interval_days"])
    if "points" in options:
        options["points"] = tuple(tuple(p) for p in options["points"])
    try:
        return classes[kind](**options)
    except TypeError as error:
        raise InputError(
            f"bad option for a {kind} recovery model: {error}", field="recovery"
        ) from None


def credit_window(
    model: RecoveryModel, horizon_days: int = 3653, share: float = 0.99
) -> tuple[int, int] | None:
    """Days after a course over which ``model`` credits recovery, for a timeline.

    Returns ``(first, full)``: the first interval (days) with any recovered fraction, and the
    first at which the fraction reaches ``share`` of its largest value within
    ``horizon_days`` (a saturating model never reaches its ceiling exactly, so the window
    ends where 99 % of it is credited; this is a display convention, not a published
    parameter). ``None`` when the model credits nothing within the horizon.
    """
    days = np.arange(horizon_days + 1)
    fraction = np.asarray(model.recovered_fraction(days), dtype=float)
    largest = float(fraction.max())
    if largest <= 0:
        return None
    first = int(np.argmax(fraction > 0))
    full = int(np.argmax(fraction >= share * largest))
    return first, full
