"""Dose constraints for organs at risk and their evaluation (pure; no file access).

A :class:`Constraint` is one published dose limit: organ, metric (in the one metric grammar
of :mod:`reirrad.core.metrics`), dose quantity (EQD2, BED or physical), scope (cumulative
over all courses, or each course separately), comparator and limit, the alpha/beta the
limit is expressed at, whether the limit is to be compared with the dose after the
recovery discount, a validity condition on the interval between courses, and the citation
and evidence level.  Constraint sets are packaged as YAML (``src/reirrad/data/constraints``,
documented in ``docs/constraints.md``) and loaded by :mod:`reirrad.io.constraint_sets`.

Evaluation rules (:func:`evaluate`)
-----------------------------------
* Upper limits (``<``, ``<=``): pass when ``value < limit`` / ``value <= limit``;
  ``margin = limit - value``.  Lower limits (``>``, ``>=``, for target coverage): pass when
  ``value > limit`` / ``value >= limit``; ``margin = value - limit``.  A positive margin is
  room left; at equality the margin is 0 and ``<`` / ``>`` fail while ``<=`` / ``>=`` pass.
* Interval condition (conservative by design): when a constraint has ``min_interval_days``
  (e.g. Nieder et al. 2006 validated their cumulative spinal-cord limit only for intervals of
  at least 6 months between courses), the result is ``"fail"`` with a warning if the
  interval is shorter than that **or unknown**, whatever the dose.  The limit says nothing
  about shorter intervals, so reirrad does not report a pass it cannot support.

The caller is responsible for giving ``value`` in the constraint's quantity, at
:meth:`Constraint.alpha_beta_for` of the tissue, summed over courses for ``cumulative``
scope and with (``recovery_credit=True``) or without the recovery discount.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from reirrad.core.metrics import Metric, parse_metric
from reirrad.errors import InputError

__all__ = [
    "COMPARATORS",
    "KNOWN_ORGANS",
    "QUANTITIES",
    "SCOPES",
    "Constraint",
    "ConstraintResult",
    "ConstraintSet",
    "evaluate",
]

Quantity = Literal["eqd2", "bed", "physical"]
Scope = Literal["cumulative", "course"]
Comparator = Literal["<", "<=", ">", ">="]
Status = Literal["pass", "fail"]

QUANTITIES: tuple[str, ...] = ("eqd2", "bed", "physical")
SCOPES: tuple[str, ...] = ("cumulative", "course")
#: ``<``/``<=`` are upper limits (organs at risk); ``>``/``>=`` lower limits (target coverage).
COMPARATORS: tuple[str, ...] = ("<", "<=", ">", ">=")

#: Canonical organ keys used by the packaged constraint sets (lower case, ``_`` separated).
#: User sets may use other keys of the same form; the case file maps structures to keys.
KNOWN_ORGANS: tuple[str, ...] = (
    "brainstem",
    "cochlea",
    "internal_carotid",
    "larynx",
    "lens",
    "mandible",
    "optic_chiasm",
    "optic_nerve",
    "oral_mucosa",
    "parotid",
    "pharyngeal_constrictors",
    "pharyngeal_mucosa",
    "spinal_cord",
    "submandibular",
    "temporal_lobe",
)

_ORGAN_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Constraint:
    """One published dose limit.

    Attributes
    ----------
    id
        Unique identifier, e.g. ``"nieder2006-cord-cumulative-bed"``.
    organ
        Canonical organ key (lower case, e.g. ``"spinal_cord"``; see :data:`KNOWN_ORGANS`).
    metric
        Metric name in the reirrad grammar (``"Dmean"``, ``"Dmax"``, ``"D1.5cc"``,
        ``"V50Gy"`` ...), validated with :func:`~reirrad.core.metrics.parse_metric`.
    quantity
        ``"eqd2"``, ``"bed"`` or ``"physical"``: the dose quantity the limit is in.
    scope
        ``"cumulative"`` (sum over courses) or ``"course"`` (each course separately).
    comparator
        ``"<"``, ``"<="`` (upper limits) or ``">"``, ``">="`` (lower limits).
    limit
        The limit in the metric's result unit: Gy of ``quantity`` for dose metrics,
        % or cm^3 for volume metrics.
    alpha_beta_gy
        The alpha/beta the limit is expressed at (e.g. 2 Gy for Nieder's Gy2 BED);
        ``None`` means the tissue's own alpha/beta.
    recovery_credit
        ``True``: compare the sum after the recovery discount (effective dose);
        ``False``: compare the nominal sum (the limit already includes recovery, as in
        Nieder et al. 2006).
    min_interval_days
        Validity condition: the limit was derived only for intervals between courses of at
        least this many days (``None``: no condition).
    tier
        Optional label, e.g. ``"TD5"``, ``"TD50"``, ``"hard"``, ``"optimal"``.
    endpoint
        The clinical endpoint the limit protects against.
    source
        Full citation.
    evidence
        Evidence level in words.
    note
        Anything else a user must know to apply the limit.
    """

    id: str
    organ: str
    metric: str
    quantity: Quantity
    scope: Scope
    comparator: Comparator
    limit: float
    alpha_beta_gy: float | None
    recovery_credit: bool
    min_interval_days: float | None
    tier: str | None
    endpoint: str
    source: str
    evidence: str
    note: str | None = None

    def __post_init__(self) -> None:
        # Checked here as well as in the YAML loader, so constraints built in code are safe.
        where = f"constraint {self.id!r}"
        if not str(self.id).strip():
            raise InputError("constraint id must not be empty")
        if not _ORGAN_KEY.match(self.organ):
            raise InputError(
                f"{where}: organ {self.organ!r} must be a lower-case key like 'spinal_cord'"
            )
        try:
            parse_metric(self.metric)
        except InputError as error:
            raise InputError(f"{where}: {error.problem}") from None
        for name, value, allowed in (
            ("quantity", self.quantity, QUANTITIES),
            ("scope", self.scope, SCOPES),
            ("comparator", self.comparator, COMPARATORS),
        ):
            if value not in allowed:
                raise InputError(f"{where}: {name} {value!r} must be one of {', '.join(allowed)}")
        if not (math.isfinite(self.limit) and self.limit > 0):
            raise InputError(f"{where}: limit must be a finite number > 0, not {self.limit!r}")
        if self.alpha_beta_gy is not None and not (
            math.isfinite(self.alpha_beta_gy) and self.alpha_beta_gy > 0
        ):
            raise InputError(f"{where}: alpha_beta_gy must be > 0 or null")
        if self.quantity == "physical" and self.alpha_beta_gy is not None:
            raise InputError(f"{where}: a physical-dose limit has no alpha/beta; use null")
        if self.min_interval_days is not None and not (
            math.isfinite(self.min_interval_days) and self.min_interval_days >= 0
        ):
            raise InputError(f"{where}: min_interval_days must be >= 0 or null")
        for name in ("endpoint", "source", "evidence"):
            if not str(getattr(self, name)).strip():
                raise InputError(f"{where}: {name} must not be empty")

    @property
    def parsed_metric(self) -> Metric:
        """The metric parsed with the reirrad grammar."""
        return parse_metric(self.metric)

    @property
    def is_upper_limit(self) -> bool:
        """True for ``<`` and ``<=`` (organ-at-risk limits)."""
        return self.comparator in ("<", "<=")

    def alpha_beta_for(self, tissue_alpha_beta_gy: float) -> float:
        """The alpha/beta to convert the dose with: the constraint's own, else the tissue's."""
        return self.alpha_beta_gy if self.alpha_beta_gy is not None else tissue_alpha_beta_gy

    def describe(self) -> str:
        """Short human-readable form, e.g. ``spinal_cord Dmax BED(a/b=2) <= 135.5 Gy``."""
        quantity = {"eqd2": "EQD2", "bed": "BED", "physical": "physical"}[self.quantity]
        if self.quantity != "physical":
            ab = f"{self.alpha_beta_gy:g}" if self.alpha_beta_gy is not None else "tissue"
            quantity += f"(a/b={ab})"
        unit = self.parsed_metric.result_unit
        return f"{self.organ} {self.metric} {quantity} {self.comparator} {self.limit:g} {unit}"


@dataclass(frozen=True)
class ConstraintResult:
    """The outcome of comparing one value with one constraint.

    ``margin`` is positive when there is room left (``limit - value`` for upper limits,
    ``value - limit`` for lower limits).  ``warnings`` record why a result failed other than
    by dose (interval condition) and anything the reader must know.
    """

    constraint: Constraint
    value: float
    status: Status
    margin: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConstraintSet:
    """A named collection of constraints loaded from one YAML file."""

    id: str
    title: str
    source: str
    constraints: tuple[Constraint, ...]
    description: str = ""
    origin: str = ""

    def for_organ(self, organ: str) -> tuple[Constraint, ...]:
        """The constraints of this set on ``organ`` (canonical key)."""
        return tuple(c for c in self.constraints if c.organ == organ)

    def get(self, constraint_id: str) -> Constraint:
        """The constraint with this id; :class:`InputError` if there is none."""
        for constraint in self.constraints:
            if constraint.id == constraint_id:
                return constraint
        raise InputError(f"constraint set {self.id!r} has no constraint {constraint_id!r}")


def _passes(comparator: str, value: float, limit: float) -> bool:
    if comparator == "<":
        return value < limit
    if comparator == "<=":
        return value <= limit
    if comparator == ">":
        return value > limit
    return value >= limit


def evaluate(
    constraint: Constraint, value: float, *, interval_days: float | None = None
) -> ConstraintResult:
    """Compare ``value`` with ``constraint``.

    Parameters
    ----------
    constraint
        The limit.
    value
        The metric value in the constraint's quantity and alpha/beta (Gy), or % / cm^3 for
        volume metrics.
    interval_days
        Time between the courses (for a cumulative value: the shortest interval between
        consecutive courses).  Only used when the constraint has ``min_interval_days``.

    Returns
    -------
    ConstraintResult
        ``"fail"`` if the dose condition is not met, or if the constraint's interval
        condition is not met or cannot be checked (``interval_days`` unknown), with a warning
        saying so (conservative: the limit was not validated for such intervals).
    """
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"constraint {constraint.id!r}: value must be a finite number")
    if interval_days is not None and not (
        math.isfinite(float(interval_days)) and interval_days >= 0
    ):
        raise InputError(f"constraint {constraint.id!r}: interval_days must be >= 0")
    limit = constraint.limit
    margin = (limit - value) if constraint.is_upper_limit else (value - limit)
    ok = _passes(constraint.comparator, value, limit)
    warnings: list[str] = []
    if constraint.min_interval_days is not None:
        minimum = constraint.min_interval_days
        if interval_days is None:
            ok = False
            warnings.append(
                f"interval between courses unknown: limit not validated for intervals < "
                f"{minimum:g} days; reported as fail (conservative)"
            )
        elif interval_days < minimum:
            ok = False
            warnings.append(
                f"limit not validated for intervals < {minimum:g} days "
                f"(interval {float(interval_days):g} days); reported as fail (conservative)"
            )
    return ConstraintResult(
        constraint=constraint,
        value=value,
        status="pass" if ok else "fail",
        margin=margin,
        warnings=tuple(warnings),
    )
