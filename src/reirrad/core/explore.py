"""Fractionation explorer: the highest re-irradiation dose per fraction for each fraction number.

Problem
-------
Each organ at risk carries a residual EQD2 ``R_i`` (Gy, at the organ's alpha/beta, already
discounted for recovery) per voxel, or one value for the whole structure.  The new plan
gives voxel ``i`` the fraction ``r_i`` of the prescription dose per fraction ``d``, so the
voxel's own dose per fraction is ``r_i d`` and its new-course EQD2 (LQ; Fowler 1989,
Bentzen et al. 2012, see :mod:`reirrad.core.radiobiology`) is::

    EQD2_i(n, d) = n r_i d (1 + r_i d / ab) / (1 + 2 / ab)

A cumulative constraint bounds a statistic of ``R_i + EQD2_i`` over the structure.  For
each number of fractions n the explorer finds the largest d satisfying every constraint.
All three statistics have exact solutions, so no iterative search is needed:

* ``Dmax``: per voxel the remaining budget ``L - R_i`` is inverted with
  :func:`reirrad.core.radiobiology.dose_for_eqd2`, ``d_i = dose_for_eqd2(L - R_i, n, ab) / (n r_i)``,
  and ``d_max = min_i d_i``.
* ``Dmean`` (mean of the EQD2 over voxels, volume-weighted): the mean is a quadratic in d,
  ``E[R] + n (ab E[r] d + E[r^2] d^2) / (ab + 2) <= L``, solved in closed form (its
  positive root).  This replaces a bisection and is exact.
* ``Dx%`` / ``Dxcc`` (minimum EQD2 in the hottest x of the volume): ``Dx <= L`` holds
  exactly when the volume with EQD2 above L is less than x.  Voxel i is above L exactly when
  ``d > d_i`` (``d_i`` as for Dmax), so ``d_max`` is the weighted order statistic of the
  ``d_i``: sort them, and take the first whose cumulative volume reaches x.  Exact, and
  monotone in the residual by construction.

A voxel with ``r_i = 0`` never limits d; a voxel whose residual already exceeds the limit
makes that constraint infeasible at any dose (reported as d_max = 0).

Tumour quantities are evaluated at the prescription (``relative_dose`` of the target,
default 1) with the tumour's alpha/beta; cumulative values add the tumour's residual EQD2.

Windows and criteria (data with their sources)
----------------------------------------------
* :data:`HF_REIRRADIATION_WINDOW`: Marinova L, Vasileva V, Kahchiev N, Sergieva K,
  "Hypofractionated Radiosurgery Re-irradiation in Nasopharyngeal Recurrence after Complex
  Treatment", Med Clin Res 2026;11(3):1-12 (Discussion): "Most authors applying
  hypofractionated re-radiosurgery (HF re-RS) use 3-6 fractions with a fraction dose of
  4.25-15 Gy", citing Wu SX et al. IJROBP 2007;69(3):761-769, Seo Y et al. Radiother Oncol
  2009;93(3):570-574 and Xiao JP et al. IJROBP 2001;51(1):164-170.  A description of
  practice, not a tolerance.
* :data:`JANSSEN_2010_CURATIVE`: the same case report writes "The total dose at
  re-irradiation improves overall survival. Therefore, re-irradiation with curative intent
  should only be applied if a sufficient total dose of >= 46 Gy can be given", citing
  Janssen S et al., "Re-irradiation of head and neck cancer - impact of total dose on
  outcome", Anticancer Res 2010;30(9):3781-3786.  The quantity is the *total dose of the
  re-irradiation course* (not the cumulative dose of both courses) in a series given in
  conventional fractions (as quoted; the original was not checked here).  For
  hypofractionated schemes reirrad compares the re-irradiation course's EQD2 at the
  tumour's alpha/beta by default (assumption: 46 Gy in ~2 Gy fractions is equieffective
  with EQD2 46 Gy); ``quantity`` can select the physical dose or the cumulative EQD2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.core.metrics import Metric, parse_metric
from reirrad.core.radiobiology import bed, dose_for_eqd2, eqd2
from reirrad.errors import InputError

__all__ = [
    "DEFAULT_FRACTIONS",
    "HF_REIRRADIATION_WINDOW",
    "JANSSEN_2010_CURATIVE",
    "CumulativeConstraint",
    "CurativeCriterion",
    "ExplorerResult",
    "FractionationWindow",
    "OrganAtRisk",
    "SchemeEvaluation",
    "SchemeRow",
    "Target",
    "evaluate_schemes",
    "explore",
]

FloatArray = NDArray[np.float64]

DEFAULT_FRACTIONS: tuple[int, ...] = tuple(range(1, 11)) + tuple(range(25, 36))

# Bound on the number of float64 elements of a temporary (schemes x voxels) block: 2**22
# elements = 32 MiB per array; a few such arrays live at once.
CHUNK_ELEMENTS = 2**22

MARINOVA_2026 = (
    "Marinova L, Vasileva V, Kahchiev N, Sergieva K, Med Clin Res 2026;11(3):1-12 (case "
    "report, Discussion)"
)


@dataclass(frozen=True)
class FractionationWindow:
    """A published range of fraction numbers and doses per fraction (both inclusive)."""

    min_fractions: int = 3
    max_fractions: int = 6
    min_dose_per_fraction_gy: float = 4.25
    max_dose_per_fraction_gy: float = 15.0
    source: str = (
        f"{MARINOVA_2026}: 'Most authors applying hypofractionated re-radiosurgery (HF re-RS) "
        "use 3-6 fractions with a fraction dose of 4.25-15 Gy' (citing Wu 2007, Seo 2009, "
        "Xiao 2001); practice range, not a tolerance"
    )


HF_REIRRADIATION_WINDOW = FractionationWindow()

_CURATIVE_QUANTITIES = ("reirradiation_eqd2", "reirradiation_physical", "cumulative_eqd2")


@dataclass(frozen=True)
class CurativeCriterion:
    """Threshold for a curative re-irradiation dose.

    Attributes
    ----------
    threshold_gy
        Minimum dose (Gy).
    quantity
        ``"reirradiation_eqd2"`` (EQD2 of the new course at the tumour's alpha/beta),
        ``"reirradiation_physical"`` (physical total dose of the new course) or
        ``"cumulative_eqd2"`` (tumour residual + new course, EQD2).
    source
        Where the threshold comes from and what quantity it was stated for.
    """

    threshold_gy: float = 46.0
    quantity: str = "reirradiation_eqd2"
    source: str = (
        f"{MARINOVA_2026}: 're-irradiation with curative intent should only be applied if a "
        "sufficient total dose of >= 46 Gy can be given', citing Janssen S et al., Anticancer "
        "Res 2010;30(9):3781-3786 (total dose of the re-irradiation course, conventional "
        "fractionation; original not checked). Applied to the new course's EQD2 at the "
        "tumour alpha/beta (assumption)"
    )

    def __post_init__(self) -> None:
        if self.quantity not in _CURATIVE_QUANTITIES:
            raise InputError(
                f"unknown quantity {self.quantity!r}; use one of {list(_CURATIVE_QUANTITIES)}",
                field="curative.quantity",
            )
        if not self.threshold_gy > 0:
            raise InputError("must be > 0 Gy", field="curative.threshold_gy")


JANSSEN_2010_CURATIVE = CurativeCriterion()


@dataclass(frozen=True)
class CumulativeConstraint:
    """A limit on a statistic of the cumulative EQD2 (residual + new course) of one organ.

    Attributes
    ----------
    metric
        ``"Dmax"``, ``"Dmean"``, ``"D2%"``, ``"D0.1cc"`` ... (the project's metric grammar;
        volume metrics such as V20Gy are not supported here).
    limit_eqd2_gy
        Limit in EQD2 (Gy) at the organ's alpha/beta.
    source
        Citation of the limit.
    """

    metric: str
    limit_eqd2_gy: float
    source: str = ""

    def __post_init__(self) -> None:
        parsed = parse_metric(self.metric)
        if parsed.kind not in ("max", "mean", "dose_at_volume"):
            raise InputError(
                f"metric {self.metric!r}: the explorer supports Dmax, Dmean and Dx%/Dxcc",
                field="constraint.metric",
            )
        if not (np.isfinite(self.limit_eqd2_gy) and self.limit_eqd2_gy >= 0):
            raise InputError("must be finite and >= 0 Gy", field="constraint.limit_eqd2_gy")

    @property
    def parsed(self) -> Metric:
        """The parsed metric."""
        return parse_metric(self.metric)


def _as_array(name: str, value: ArrayLike, *, allow_negative: bool = False) -> FloatArray:
    # a private read-only copy: derived data (Pareto front, pruning) is cached on the organ
    a = np.array(value, dtype=float).ravel()
    a.flags.writeable = False
    if a.size == 0:
        raise InputError("is empty", field=name)
    if not np.all(np.isfinite(a)) or (not allow_negative and np.any(a < 0)):
        raise InputError("must be finite and >= 0", field=name)
    return a


@dataclass(frozen=True)
class OrganAtRisk:
    """An organ at risk: residual EQD2, relative new dose and cumulative constraints.

    Attributes
    ----------
    name
        Structure name.
    alpha_beta_gy
        alpha/beta (Gy) for the LQ conversion of the new course and the constraints.
    relative_dose
        Per voxel, the new plan's dose per fraction as a fraction of the prescription dose
        per fraction (1.0 = 100 %); or one value for a structure statistic.
    residual_eqd2_gy
        Residual EQD2 (Gy) carried from earlier courses after recovery: a scalar (same for
        every voxel) or one value per voxel.
    constraints
        The cumulative constraints on this organ.
    voxel_volume_cc
        Voxel volumes (cc), scalar or per voxel; needed for Dxcc constraints, used as
        weights for Dmean and Dx%.  ``None`` means equal weights.
    single_statistic
        True when ``relative_dose``/``residual_eqd2_gy`` are structure statistics rather
        than voxel values (see :meth:`from_statistic`).
    """

    name: str
    alpha_beta_gy: float
    relative_dose: ArrayLike
    residual_eqd2_gy: ArrayLike
    constraints: tuple[CumulativeConstraint, ...]
    voxel_volume_cc: ArrayLike | None = None
    single_statistic: bool = False

    def __post_init__(self) -> None:
        where = f"organs[{self.name}]"
        if not (np.isfinite(self.alpha_beta_gy) and self.alpha_beta_gy > 0):
            raise InputError("alpha/beta must be > 0 Gy", field=f"{where}.alpha_beta_gy")
        r = _as_array(f"{where}.relative_dose", self.relative_dose)
        res = _as_array(f"{where}.residual_eqd2_gy", self.residual_eqd2_gy)
        if res.size not in (1, r.size):
            raise InputError(
                f"{res.size} residual values for {r.size} voxels; give a scalar or one per voxel",
                field=f"{where}.residual_eqd2_gy",
            )
        object.__setattr__(self, "relative_dose", r)
        residual = np.broadcast_to(res, r.shape).copy()
        residual.flags.writeable = False
        object.__setattr__(self, "residual_eqd2_gy", residual)
        if self.voxel_volume_cc is not None:
            vol = _as_array(f"{where}.voxel_volume_cc", self.voxel_volume_cc)
            if vol.size not in (1, r.size):
                raise InputError("give a scalar or one volume per voxel", field=f"{where}.voxel")
            vol = np.broadcast_to(vol, r.shape).copy()
            vol.flags.writeable = False
            object.__setattr__(self, "voxel_volume_cc", vol)
        constraints = tuple(self.constraints)
        if not constraints:
            raise InputError("no constraints given", field=f"{where}.constraints")
        for c in constraints:
            m = c.parsed
            if m.kind == "dose_at_volume" and m.unit == "cc":
                if self.voxel_volume_cc is None:
                    raise InputError(
                        f"{c.metric} needs voxel volumes in cc (voxel_volume_cc)", field=where
                    )
                if m.value > float(np.sum(self.voxel_volume_cc)) * (1 + 1e-12):
                    raise InputError(
                        f"{c.metric}: the structure has only {np.sum(self.voxel_volume_cc):g} cc",
                        field=where,
                    )
        object.__setattr__(self, "constraints", constraints)

    @classmethod
    def from_statistic(
        cls,
        name: str,
        alpha_beta_gy: float,
        percent_of_prescription: float,
        residual_eqd2_gy: float,
        constraints: tuple[CumulativeConstraint, ...],
    ) -> OrganAtRisk:
        """An organ described by one statistic of the new plan, in % of the prescription."""
        return cls(
            name=name,
            alpha_beta_gy=alpha_beta_gy,
            relative_dose=[percent_of_prescription / 100.0],
            residual_eqd2_gy=[residual_eqd2_gy],
            constraints=tuple(constraints),
            single_statistic=True,
        )

    @cached_property
    def _moments(self) -> tuple[float, float, float]:
        """Volume-weighted E[r], E[r^2], E[R] (cached: organs are reused across calls)."""
        w = self.weights / float(self.weights.sum())
        r, res = np.asarray(self.relative_dose), np.asarray(self.residual_eqd2_gy)
        # elementwise sums rather than BLAS dot, which was ~100x slower here (threading)
        return float(np.sum(w * r)), float(np.sum(w * r * r)), float(np.sum(w * res))

    @cached_property
    def _front(self) -> NDArray[np.intp]:
        """Voxels that can carry the maximum EQD2 (cached)."""
        return _pareto_front(np.asarray(self.relative_dose), np.asarray(self.residual_eqd2_gy))

    @cached_property
    def _subsets(self) -> dict[float, NDArray[np.intp]]:
        return {}

    def _quantile_subset(self, target: float) -> NDArray[np.intp]:
        """Voxels that can decide a Dx statistic whose volume is ``target`` (exact pruning).

        A voxel dominated (r and R both strictly smaller) by a set of voxels holding at least
        ``target`` volume can neither be among the hottest ``target`` nor change the order
        statistic, for any scheme: all of that set is at least as hot.  The dominating set
        is searched as the upper-right quadrant {r >= r*, R >= R*} at a few quantile levels.
        """
        cached = self._subsets.get(target)
        if cached is not None:
            return cached
        r, res, w = (
            np.asarray(self.relative_dose),
            np.asarray(self.residual_eqd2_gy),
            self.weights,
        )
        keep = np.arange(r.size)
        share = target / float(w.sum())
        for factor in (1.5, 3.0, 6.0, 12.0, 25.0, 50.0):
            level = min(1.0, share * factor)
            if level >= 1.0:
                break
            r_star = np.quantile(r, 1.0 - level)
            res_star = np.quantile(res, 1.0 - level)
            if w[(r >= r_star) & (res >= res_star)].sum() >= target:
                keep = np.flatnonzero(~((r < r_star) & (res < res_star)))
                break
        self._subsets[target] = keep
        return keep

    @property
    def weights(self) -> FloatArray:
        """Voxel weights (cc when voxel volumes are known, else 1 per voxel)."""
        if self.voxel_volume_cc is None:
            return np.ones_like(self.relative_dose)
        return np.asarray(self.voxel_volume_cc)


@dataclass(frozen=True)
class Target:
    """The re-irradiated tumour.

    Attributes
    ----------
    alpha_beta_gy
        Tumour alpha/beta (Gy).
    residual_eqd2_gy
        Tumour residual EQD2 from earlier courses (Gy); 0 treats the recurrence as having
        no effective dose.
    relative_dose
        Tumour dose per fraction as a fraction of the prescription (1.0: the prescription).
    name
        Label.
    """

    alpha_beta_gy: float
    residual_eqd2_gy: float = 0.0
    relative_dose: float = 1.0
    name: str = "target"

    def __post_init__(self) -> None:
        if not self.alpha_beta_gy > 0:
            raise InputError("alpha/beta must be > 0 Gy", field="target.alpha_beta_gy")
        if not (self.residual_eqd2_gy >= 0 and self.relative_dose > 0):
            raise InputError("residual must be >= 0 and relative dose > 0", field="target")


# --------------------------------------------------------------------------------------
# Prepared constraint data and exact solutions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    label: str
    organ: OrganAtRisk
    constraint: CumulativeConstraint
    kind: str  # "max", "mean", "quantile"
    volume_target: float  # x as weight (same unit as weights) for quantile
    r: FloatArray
    residual: FloatArray
    weights: FloatArray
    budget: FloatArray  # limit - residual per voxel
    moments: tuple[float, float, float]  # E[r], E[r^2], E[R] (weighted)
    front: NDArray[np.intp]  # Pareto-maximal voxels in (r, R) for max values
    uniform: bool  # all voxel weights equal: order statistics by partition, not sort


def _pareto_front(r: FloatArray, residual: FloatArray) -> NDArray[np.intp]:
    """Indices of a superset of the voxels not dominated in (r, R).

    The cumulative EQD2 ``R + n (ab r d + r^2 d^2)/(ab + 2)`` increases in both r and R, and
    the per-voxel dose limit ``d_i`` decreases in both, so a voxel with r and R no larger
    than another's can never carry the maximum EQD2 nor the minimum ``d_i``.  (Voxels tied
    in r may keep a dominated one; a superset is harmless.)
    """
    # Cheap exact pre-filter: voxels maximising r s + R for a few slopes s are on the front;
    # drop every voxel that one of them dominates before sorting the rest.
    candidates = np.arange(r.size)
    scale = max(float(residual.max() - residual.min()), 1e-12) / max(float(r.max()), 1e-12)
    for slope in (0.0, 0.25, 1.0, 4.0, np.inf):
        score = r if np.isinf(slope) else r * (slope * scale) + residual
        a = int(np.argmax(score[candidates])) if candidates.size else 0
        anchor = candidates[a]
        dominated = (r[candidates] <= r[anchor]) & (residual[candidates] <= residual[anchor])
        dominated[a] = False
        candidates = candidates[~dominated]
    rc, resc = r[candidates], residual[candidates]
    order = np.argsort(-rc)  # r descending; one key is much faster than lexsort
    running = np.maximum.accumulate(resc[order])
    keep = np.empty(order.size, dtype=bool)
    keep[0] = True
    keep[1:] = resc[order][1:] > running[:-1]
    return candidates[order[keep]]


def _prepare(organs: list[OrganAtRisk] | tuple[OrganAtRisk, ...]) -> list[_Prepared]:
    if not organs:
        raise InputError("no organs at risk given", field="organs")
    prepared = []
    seen = set()
    for organ in organs:
        r = np.asarray(organ.relative_dose)
        res = np.asarray(organ.residual_eqd2_gy)
        w = organ.weights
        total = float(w.sum())
        if not total > 0:
            raise InputError("voxel volumes sum to zero", field=f"organs[{organ.name}]")
        moments = organ._moments
        front = organ._front
        for c in organ.constraints:
            m = c.parsed
            label = f"{organ.name}:{m.name}"
            if label in seen:
                label = f"{label}<={c.limit_eqd2_gy:g}"
            seen.add(label)
            if m.kind == "max" or (m.kind == "dose_at_volume" and m.value == 0):
                kind, target = "max", 0.0
            elif m.kind == "mean":
                kind, target = "mean", 0.0
            else:
                kind = "quantile"
                target = m.value / 100.0 * total if m.unit == "%" else float(m.value)
            sub = organ._quantile_subset(target) if kind == "quantile" else slice(None)
            rq, resq, wq = r[sub], res[sub], w[sub]
            prepared.append(
                _Prepared(
                    label=label,
                    organ=organ,
                    constraint=c,
                    kind=kind,
                    volume_target=target,
                    r=rq,
                    residual=resq,
                    weights=wq,
                    budget=c.limit_eqd2_gy - resq,
                    moments=moments,
                    front=front,
                    uniform=bool(np.all(wq == wq[0])),
                )
            )
    return prepared


def _voxel_dmax(p: _Prepared, n: FloatArray, idx: slice | NDArray[np.intp]) -> FloatArray:
    """Per-voxel highest prescription dose per fraction, shape (len(n), voxels in idx)."""
    budget = p.budget[idx]
    r = p.r[idx]
    # dose_for_eqd2 broadcasts: the voxel's total physical dose that uses up its budget.
    total = dose_for_eqd2(np.maximum(budget, 0.0)[None, :], n[:, None], p.organ.alpha_beta_gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.asarray(total) / (n[:, None] * r[None, :])
    d = np.where(r[None, :] > 0, d, np.inf)
    return np.where(budget[None, :] < 0, 0.0, d)


def _dmax_for_fractions(p: _Prepared, n: FloatArray) -> FloatArray:
    """Exact highest prescription dose per fraction for each fraction number in ``n``."""
    ab = p.organ.alpha_beta_gy
    size = p.r.size
    if p.kind == "mean":
        er, er2, eres = p.moments
        q = (p.constraint.limit_eqd2_gy - eres) * (ab + 2.0) / n  # a d^2 + b d - q <= 0
        a, b = er2, ab * er
        with np.errstate(divide="ignore", invalid="ignore"):
            root = 2.0 * q / (b + np.sqrt(b * b + 4.0 * a * np.maximum(q, 0.0)))
        root = np.where(q < 0, 0.0, root)
        return np.where((a == 0) & (b == 0), np.where(q >= 0, np.inf, 0.0), root)
    if p.kind == "max":
        # the minimum of d_i lies on the (r, R) Pareto front
        out = np.full(n.size, np.inf)
        step = max(1, CHUNK_ELEMENTS // max(1, n.size))
        for start in range(0, p.front.size, step):
            block = _voxel_dmax(p, n, p.front[start : start + step])
            out = np.minimum(out, block.min(axis=1))
        return out
    # quantile: weighted order statistic of the per-voxel d_i, for each n (rows in chunks)
    out = np.empty(n.size)
    rows = max(1, CHUNK_ELEMENTS // max(1, size))
    tolerance = 1e-12 * float(p.weights.sum())
    for start in range(0, n.size, rows):
        block = _voxel_dmax(p, n[start : start + rows], slice(None))
        if p.uniform:
            k = _uniform_rank(p, tolerance)
            out[start : start + rows] = np.partition(block, k, axis=1)[:, k]
            continue
        order = np.argsort(block, axis=1)
        cum = np.cumsum(p.weights[order], axis=1)
        # first voxel (ascending d_i) whose cumulative volume reaches x
        k = (cum < p.volume_target - tolerance).sum(axis=1)
        k = np.minimum(k, size - 1)
        out[start : start + rows] = np.take_along_axis(
            block, np.take_along_axis(order, k[:, None], 1), 1
        )[:, 0]
    return out


def _uniform_rank(p: _Prepared, tolerance: float) -> int:
    """0-based rank of the first voxel whose cumulative volume reaches x (equal weights)."""
    w = float(p.weights[0])
    k = int(np.ceil((p.volume_target - tolerance) / w)) - 1
    return min(max(k, 0), p.r.size - 1)


def _new_eqd2(r: FloatArray, residual: FloatArray, n: FloatArray, d: FloatArray, ab: float):
    """Cumulative EQD2 (S, V) for schemes (n, d) of shape (S,) and voxels (V,)."""
    x = r[None, :] * d[:, None]
    return residual[None, :] + n[:, None] * (ab * x + x * x) / (ab + 2.0)


def _statistic_values(p: _Prepared, n: FloatArray, d: FloatArray, quantiles: bool) -> FloatArray:
    """Cumulative EQD2 statistic of constraint ``p`` for schemes (n, d)."""
    ab = p.organ.alpha_beta_gy
    if p.kind == "mean":
        er, er2, eres = p.moments
        return eres + n * (ab * er * d + er2 * d * d) / (ab + 2.0)
    if p.kind == "max":
        r, res = p.r[p.front], p.residual[p.front]
        out = np.empty(n.size)
        rows = max(1, CHUNK_ELEMENTS // max(1, r.size))
        for s in range(0, n.size, rows):
            sl = slice(s, s + rows)
            out[sl] = _new_eqd2(r, res, n[sl], d[sl], ab).max(axis=1)
        return out
    if not quantiles:
        return np.full(n.size, np.nan)
    # Dx = EQD2 of the first voxel (descending EQD2) whose cumulative volume reaches x.
    out = np.empty(n.size)
    rows = max(1, CHUNK_ELEMENTS // max(1, p.r.size))
    tolerance = 1e-12 * float(p.weights.sum())
    for s in range(0, n.size, rows):
        sl = slice(s, s + rows)
        values = _new_eqd2(p.r, p.residual, n[sl], d[sl], ab)
        if p.uniform:
            k = p.r.size - 1 - _uniform_rank(p, tolerance)  # k-th largest = (V-1-k)-th smallest
            out[sl] = np.partition(values, k, axis=1)[:, k]
            continue
        order = np.argsort(-values, axis=1)
        cum = np.cumsum(p.weights[order], axis=1)
        k = np.minimum((cum < p.volume_target - tolerance).sum(axis=1), p.r.size - 1)
        out[sl] = np.take_along_axis(values, np.take_along_axis(order, k[:, None], 1), 1)[:, 0]
    return out


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

_BASE_ASSUMPTIONS = (
    "LQ model with complete repair between fractions; each voxel's own dose per fraction "
    "(relative dose x prescription dose per fraction) is used.",
    "The earlier courses' residual EQD2 already includes their recovery discount.",
    "Dx constraints: Dx <= L is evaluated as 'volume with cumulative EQD2 above L is less "
    "than x'; Dx is the minimum EQD2 within the hottest x of the volume (voxel-exact, no DVH "
    "interpolation).",
)


@dataclass(frozen=True)
class SchemeEvaluation:
    """Feasibility of arbitrary (fractions, dose per fraction) schemes.

    Attributes
    ----------
    fractions, dose_per_fraction_gy
        The schemes, shape (S,).
    labels
        Constraint labels ``organ:metric``, shape (C,).
    limit_dose_per_fraction_gy
        Per scheme and constraint the exact highest dose per fraction at that scheme's
        fraction number, shape (S, C).
    statistic_eqd2_gy
        Per scheme and constraint the cumulative EQD2 statistic (Gy), shape (S, C); NaN for
        Dx constraints unless requested (they need a sort per scheme).
    limits_eqd2_gy
        The limits, shape (C,).
    feasible
        All constraints hold, shape (S,).
    binding
        Index of the constraint with the least dose-per-fraction headroom, shape (S,).

    A flat table for output is :func:`reirrad.present.explore.scheme_frame`.
    """

    fractions: FloatArray
    dose_per_fraction_gy: FloatArray
    labels: tuple[str, ...]
    limit_dose_per_fraction_gy: FloatArray
    statistic_eqd2_gy: FloatArray
    limits_eqd2_gy: FloatArray
    feasible: NDArray[np.bool_]
    binding: NDArray[np.intp]
    assumptions: tuple[str, ...] = field(default=_BASE_ASSUMPTIONS)


def evaluate_schemes(
    organs: list[OrganAtRisk] | tuple[OrganAtRisk, ...],
    fractions: ArrayLike,
    dose_per_fraction_gy: ArrayLike,
    *,
    quantile_values: bool = False,
) -> SchemeEvaluation:
    """Check many candidate schemes (e.g. an n x d grid) against cumulative constraints.

    The exact per-fraction-number limits are computed once per distinct n (vectorised
    over voxels, in chunks); each scheme is then compared with them.  Statistic values are
    computed vectorised over schemes x voxels in chunks: Dmax on the Pareto-maximal voxels
    only, Dmean from weighted moments (exact, as EQD2 is quadratic in d), Dx only when
    ``quantile_values`` is set.

    Parameters
    ----------
    organs
        Organs at risk with their constraints.
    fractions, dose_per_fraction_gy
        Schemes; broadcast together to shape (S,).
    quantile_values
        Also compute Dx statistic values (a sort of all voxels per scheme).
    """
    n, d = np.broadcast_arrays(
        np.asarray(fractions, dtype=float).ravel(), np.asarray(dose_per_fraction_gy, float).ravel()
    )
    if np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise InputError("numbers of fractions must be > 0", field="fractions")
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise InputError("doses per fraction must be finite and >= 0 Gy", field="dose_per_fraction")
    prepared = _prepare(organs)
    unique_n, inverse = np.unique(n, return_inverse=True)
    limits = np.column_stack([_dmax_for_fractions(p, unique_n) for p in prepared])[inverse]
    values = np.column_stack([_statistic_values(p, n, d, quantile_values) for p in prepared])
    headroom = limits - d[:, None]
    # relative tolerance: a scheme exactly at a limit is feasible
    feasible = np.all(headroom >= -1e-9 * np.maximum(1.0, d[:, None]), axis=1)
    return SchemeEvaluation(
        fractions=n.copy(),
        dose_per_fraction_gy=d.copy(),
        labels=tuple(p.label for p in prepared),
        limit_dose_per_fraction_gy=limits,
        statistic_eqd2_gy=values,
        limits_eqd2_gy=np.array([p.constraint.limit_eqd2_gy for p in prepared]),
        feasible=feasible,
        binding=np.argmin(headroom, axis=1),
    )


@dataclass(frozen=True)
class SchemeRow:
    """The explorer's answer for one number of fractions.

    Attributes
    ----------
    fractions
        Number of fractions (as given; a float).
    dose_per_fraction_gy
        Highest prescription dose per fraction keeping every constraint (Gy); ``inf`` when
        no constraint limits it and no cap is set, 0 when the history alone breaks one.
    total_dose_gy
        ``fractions x dose_per_fraction_gy`` (Gy).
    feasible
        A dose per fraction above 0 keeps every constraint (False also when unlimited).
    binding
        Label of the constraint that sets the dose, ``"cap"`` when the cap does, ``None``
        when nothing limits it.
    eqd2_new_gy, bed_new_gy
        Tumour EQD2 and BED (Gy) of the new course at the target's relative dose and
        alpha/beta (NaN when unlimited).
    eqd2_cumulative_gy, bed_cumulative_gy
        The same plus the tumour's residual.
    in_window
        The scheme lies inside the published fractionation window.
    window_reachable
        The fraction number is in the window and its dose per fraction reaches the window's
        lower bound (a dose inside the window is reachable by lowering it).
    curative
        Feasible and meeting the curative criterion.
    cumulative_eqd2_gy
        Per constraint label, the cumulative EQD2 statistic (Gy) at this scheme (read-only).
    margin_eqd2_gy
        Per constraint label, its limit minus that statistic (Gy; 0 for the binding one).
    """

    fractions: float
    dose_per_fraction_gy: float
    total_dose_gy: float
    feasible: bool
    binding: str | None
    eqd2_new_gy: float
    bed_new_gy: float
    eqd2_cumulative_gy: float
    bed_cumulative_gy: float
    in_window: bool
    window_reachable: bool
    curative: bool
    cumulative_eqd2_gy: Mapping[str, float] = field(default_factory=dict, hash=False)
    margin_eqd2_gy: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # read-only copies: a result must not change after it is returned
        object.__setattr__(
            self, "cumulative_eqd2_gy", MappingProxyType(dict(self.cumulative_eqd2_gy))
        )
        object.__setattr__(self, "margin_eqd2_gy", MappingProxyType(dict(self.margin_eqd2_gy)))


#: The scalar fields of :class:`SchemeRow`, in table order.
SCHEME_ROW_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(SchemeRow) if f.name not in ("cumulative_eqd2_gy", "margin_eqd2_gy")
)
_FLAGS = ("feasible", "in_window", "window_reachable", "curative")


@dataclass(frozen=True)
class ExplorerResult:
    """Highest feasible prescription dose per fraction for each fraction number.

    Attributes
    ----------
    rows
        One :class:`SchemeRow` per explored fraction number, in the order given.
    labels
        Constraint labels (``organ:metric``), the keys of each row's per-constraint mappings.
    target, window, curative
        Inputs used.
    sources
        Citations of the constraints, window and curative criterion.
    assumptions
        Assumptions behind the numbers.

    Examples
    --------
    ``result.column("dose_per_fraction_gy")`` is the dose per fraction of every row as an
    array; ``result.row(5).binding`` names the constraint that limits 5 fractions.
    """

    rows: tuple[SchemeRow, ...]
    labels: tuple[str, ...]
    target: Target
    window: FractionationWindow
    curative: CurativeCriterion
    sources: tuple[str, ...]
    assumptions: tuple[str, ...]

    def column(self, name: str) -> NDArray:
        """One scalar field of every row, in row order.

        Parameters
        ----------
        name
            A scalar :class:`SchemeRow` field, e.g. ``"dose_per_fraction_gy"``.

        Returns
        -------
        numpy.ndarray
            float64 for doses and fractions, bool for the flags, object (``str`` or
            ``None``) for ``binding``.
        """
        if name not in SCHEME_ROW_COLUMNS:
            raise KeyError(
                f"{name!r} is not a scalar SchemeRow field; use one of {list(SCHEME_ROW_COLUMNS)}"
                " (per constraint: cumulative_eqd2(label), margin_eqd2(label))"
            )
        values = [getattr(row, name) for row in self.rows]
        dtype = object if name == "binding" else np.bool_ if name in _FLAGS else np.float64
        return np.array(values, dtype=dtype)

    def cumulative_eqd2(self, label: str) -> FloatArray:
        """Cumulative EQD2 statistic (Gy) of constraint ``label`` for every row."""
        return np.array([row.cumulative_eqd2_gy[self._label(label)] for row in self.rows])

    def margin_eqd2(self, label: str) -> FloatArray:
        """Limit minus cumulative EQD2 statistic (Gy) of constraint ``label`` for every row."""
        return np.array([row.margin_eqd2_gy[self._label(label)] for row in self.rows])

    def row(self, fractions: float) -> SchemeRow:
        """The (first) row explored at ``fractions``; ``KeyError`` if it was not explored."""
        for row in self.rows:
            if row.fractions == fractions:
                return row
        raise KeyError(f"{fractions:g} fractions were not explored")

    def _label(self, label: str) -> str:
        if label not in self.labels:
            raise KeyError(f"no constraint {label!r}; the constraints are {list(self.labels)}")
        return label


def _scheme_rows(
    columns: dict[str, FloatArray | NDArray[np.bool_] | list[str | None]],
    labels: tuple[str, ...],
    values: FloatArray,
    margins: FloatArray,
) -> tuple[SchemeRow, ...]:
    """One :class:`SchemeRow` per scheme from the vectorised columns (Python scalars)."""
    scalars = {k: c.tolist() if isinstance(c, np.ndarray) else list(c) for k, c in columns.items()}
    per_eqd2, per_margin = values.tolist(), margins.tolist()
    return tuple(
        SchemeRow(
            **{name: column[i] for name, column in scalars.items()},
            cumulative_eqd2_gy=dict(zip(labels, per_eqd2[i], strict=True)),
            margin_eqd2_gy=dict(zip(labels, per_margin[i], strict=True)),
        )
        for i in range(len(per_eqd2))
    )


def explore(
    organs: list[OrganAtRisk] | tuple[OrganAtRisk, ...],
    target: Target,
    *,
    fractions: ArrayLike = DEFAULT_FRACTIONS,
    window: FractionationWindow = HF_REIRRADIATION_WINDOW,
    curative: CurativeCriterion = JANSSEN_2010_CURATIVE,
    max_dose_per_fraction_gy: float | None = None,
) -> ExplorerResult:
    """For each number of fractions, the highest prescription dose per fraction that keeps
    every cumulative constraint, with the tumour dose it gives.

    Parameters
    ----------
    organs
        Organs at risk with residual EQD2, relative new dose and constraints.
    target
        Tumour alpha/beta, residual EQD2 and relative dose.
    fractions
        Fraction numbers to explore (default 1-10 and 25-35).
    window
        Published hypofractionated re-irradiation window to flag.
    curative
        Curative dose criterion to flag.
    max_dose_per_fraction_gy
        Optional cap on the prescription dose per fraction (binding ``"cap"`` when hit).
    """
    n = np.asarray(fractions, dtype=float).ravel()
    if n.size == 0 or np.any(~np.isfinite(n)) or np.any(n <= 0):
        raise InputError("fractions must be a non-empty list of numbers > 0", field="fractions")
    prepared = _prepare(organs)
    labels = tuple(p.label for p in prepared)
    limits = np.column_stack([_dmax_for_fractions(p, n) for p in prepared])  # (N, C)
    best = limits.min(axis=1)
    binding: list[str | None] = [labels[i] for i in np.argmin(limits, axis=1)]
    binding = [None if not np.isfinite(b) else lab for b, lab in zip(best, binding, strict=True)]
    if max_dose_per_fraction_gy is not None:
        capped = best > max_dose_per_fraction_gy
        best = np.where(capped, max_dose_per_fraction_gy, best)
        binding = ["cap" if c else lab for c, lab in zip(capped, binding, strict=True)]
    finite = np.isfinite(best)
    d_eval = np.where(finite, best, 0.0)
    values = np.column_stack([_statistic_values(p, n, d_eval, True) for p in prepared])
    values[~finite] = np.nan
    feasible = finite & (best > 0)

    r_t, ab_t = target.relative_dose, target.alpha_beta_gy
    total_target = np.where(finite, n * best * r_t, np.nan)
    safe_total = np.nan_to_num(total_target)
    new_eqd2 = np.where(finite, eqd2(safe_total, n, ab_t), np.nan)
    new_bed = np.where(finite, bed(safe_total, n, ab_t), np.nan)
    res_bed = target.residual_eqd2_gy * (1.0 + 2.0 / ab_t)
    quantity = {
        "reirradiation_eqd2": new_eqd2,
        "reirradiation_physical": total_target,
        "cumulative_eqd2": new_eqd2 + target.residual_eqd2_gy,
    }[curative.quantity]
    w = window
    window_n = (n >= w.min_fractions) & (n <= w.max_fractions)
    columns = {
        "fractions": n,
        "dose_per_fraction_gy": best,
        "total_dose_gy": n * best,
        "feasible": feasible,
        "binding": binding,
        "eqd2_new_gy": new_eqd2,
        "bed_new_gy": new_bed,
        "eqd2_cumulative_gy": new_eqd2 + target.residual_eqd2_gy,
        "bed_cumulative_gy": new_bed + res_bed,
        "in_window": window_n
        & (best >= w.min_dose_per_fraction_gy)
        & (best <= w.max_dose_per_fraction_gy),
        "window_reachable": window_n & (best >= w.min_dose_per_fraction_gy),
        "curative": feasible & (np.nan_to_num(quantity) >= curative.threshold_gy),
    }
    margins = np.array([p.constraint.limit_eqd2_gy for p in prepared]) - values
    rows = _scheme_rows(columns, labels, values, margins)
    assumptions = list(_BASE_ASSUMPTIONS)
    assumptions.append(
        f"Target EQD2/BED at alpha/beta {ab_t:g} Gy and {r_t:g} x the prescription dose per "
        f"fraction; cumulative values add the target residual EQD2 {target.residual_eqd2_gy:g} Gy."
    )
    assumptions.append(f"Curative criterion: {curative.quantity} >= {curative.threshold_gy:g} Gy.")
    for organ in {id(p.organ): p.organ for p in prepared}.values():
        if organ.single_statistic:
            assumptions.append(
                f"{organ.name}: given as one structure statistic; exact for Dmax/Dx (EQD2 is "
                "monotone in dose) but for Dmean it is the EQD2 of the mean dose, which is "
                "below the mean EQD2 (EQD2 is convex in dose): not conservative."
            )
    sources = tuple(
        f"{p.label} <= {p.constraint.limit_eqd2_gy:g} Gy EQD2: {p.constraint.source or 'no source given'}"
        for p in prepared
    ) + (f"window: {w.source}", f"curative: {curative.source}")
    return ExplorerResult(
        rows=rows,
        labels=labels,
        target=target,
        window=window,
        curative=curative,
        sources=sources,
        assumptions=tuple(assumptions),
    )
