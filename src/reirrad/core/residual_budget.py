"""Residual budget: per voxel, the physical dose of the new course that uses up the limits.

For a voxel of a tissue with limit ``L`` (cumulative EQD2, Gy, at the tissue's alpha/beta
``ab``) that already carries the residual EQD2 ``R`` (earlier courses, after recovery; the
explorer's per-voxel residual, :mod:`reirrad.core.explore`), the new course may add at most
``L - R`` Gy EQD2. Given in ``n`` equal fractions, a total physical dose ``D`` has

    EQD2 = D (1 + D / (n ab)) / (1 + 2 / ab)

(linear-quadratic model, Fowler JF, Br J Radiol 1989;62:679-694; EQD2 notation of Bentzen SM
et al., Radiother Oncol 2012;105:266-268; evidence: a review of the LQ model and a terminology
paper, the standard formalism, not a clinical validation of budgets). Setting EQD2 = ``L - R`` gives the quadratic ``D (1 + D/(n ab)) = (L - R)(1 + 2/ab)``
whose positive root is :func:`reirrad.core.radiobiology.dose_for_eqd2` -- the same inversion
the explorer uses for its Dmax limits, so there is one LQ solver in the package.

Per voxel the budget is the minimum over every limit whose structure covers the voxel (the
most restrictive one). A voxel whose residual already reaches its limit gets 0. A voxel that
no limited structure covers has no constraint: it gets ``unconstrained_gy`` (``inf`` by
default; a file format needing finite values must choose a cap and say so, see
:mod:`reirrad.io.export`), and :attr:`ResidualBudget.constrained` marks the voxels that do
have one.

Only limits on the maximum (Dmax / D0) are voxel-wise statements; a mean or Dx% limit bounds
a statistic of the whole structure and has no per-voxel budget, so callers pass Dmax limits
only (the mean-type ones stay with the explorer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.core.radiobiology import dose_for_eqd2
from reirrad.errors import InputError

__all__ = ["ResidualBudget", "VoxelLimit", "residual_budget"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class VoxelLimit:
    """A cumulative maximum-dose limit of one structure, with its voxels' residual EQD2.

    Attributes
    ----------
    name
        Label used in messages (structure and constraint).
    mask
        Boolean array of the grid's shape: the voxels of the structure.
    alpha_beta_gy
        The tissue's (or the limit's) alpha/beta, Gy; ``residual_eqd2_gy`` is at this value.
    limit_eqd2_gy
        Cumulative limit, Gy EQD2.
    residual_eqd2_gy
        Residual EQD2 of the earlier courses after recovery: an array of the grid's shape, or
        one value per voxel of ``mask`` (in C order), or a scalar.
    """

    name: str
    mask: ArrayLike
    alpha_beta_gy: float
    limit_eqd2_gy: float
    residual_eqd2_gy: ArrayLike

    def residual_inside(self, shape: tuple[int, ...]) -> tuple[NDArray[np.bool_], FloatArray]:
        """The mask (grid shape) and the residual of its voxels, checked."""
        mask = np.asarray(self.mask, dtype=bool)
        if mask.shape != tuple(shape):
            raise InputError(
                f"{self.name}: mask shape {mask.shape} is not the grid's {tuple(shape)}",
                field=f"limits[{self.name}].mask",
            )
        res = np.asarray(self.residual_eqd2_gy, dtype=float)
        if res.shape == mask.shape:
            res = res[mask]
        elif res.ndim == 0 or res.size == int(mask.sum()):
            res = np.broadcast_to(res.reshape(-1) if res.ndim else res, (int(mask.sum()),))
        else:
            raise InputError(
                f"{self.name}: {res.size} residual values for {int(mask.sum())} voxels; give "
                "one per voxel of the mask, a grid-shaped array or a scalar",
                field=f"limits[{self.name}].residual_eqd2_gy",
            )
        if np.any(~np.isfinite(res)) or np.any(res < 0):
            raise InputError(
                f"{self.name}: residual EQD2 must be finite and >= 0 Gy",
                field=f"limits[{self.name}].residual_eqd2_gy",
            )
        if not (np.isfinite(self.limit_eqd2_gy) and self.limit_eqd2_gy > 0):
            raise InputError(
                f"{self.name}: limit must be > 0 Gy EQD2", field=f"limits[{self.name}].limit"
            )
        return mask, res


@dataclass(frozen=True)
class ResidualBudget:
    """Per-voxel budget (Gy, physical, in ``fractions`` fractions) and where it applies.

    Attributes
    ----------
    values
        Budget per voxel; ``unconstrained_gy`` where no limit applies, 0 where the residual
        already reaches the limit.
    constrained
        True where at least one limit covers the voxel.
    exhausted
        True where the residual already reaches the most restrictive limit (budget 0).
    limiting
        Per voxel the index (into the limits given) of the limit that sets the budget; -1
        where unconstrained.
    fractions
        Number of fractions of the planned new course.
    """

    values: FloatArray
    constrained: NDArray[np.bool_]
    exhausted: NDArray[np.bool_]
    limiting: NDArray[np.intp]
    fractions: int


def residual_budget(
    limits: list[VoxelLimit] | tuple[VoxelLimit, ...],
    shape: tuple[int, int, int],
    fractions: int,
    *,
    unconstrained_gy: float = np.inf,
) -> ResidualBudget:
    """Per voxel, the physical dose in ``fractions`` fractions that reaches the tightest limit.

    Parameters
    ----------
    limits
        Cumulative maximum-dose limits with their per-voxel residual EQD2.
    shape
        Grid shape ``(nk, nj, ni)`` (the new course's dose grid).
    fractions
        Number of fractions of the planned new course (> 0).
    unconstrained_gy
        Value written where no limit applies (``inf`` by default).

    Returns
    -------
    ResidualBudget
    """
    if not (isinstance(fractions, (int, np.integer)) and fractions > 0):
        raise InputError(
            f"fractions must be a whole number > 0, not {fractions!r}", field="fractions"
        )
    if not (np.isnan(unconstrained_gy) or unconstrained_gy >= 0):
        raise InputError("unconstrained_gy must be >= 0", field="unconstrained_gy")
    values = np.full(shape, np.inf)
    limiting = np.full(shape, -1, dtype=np.intp)
    for index, limit in enumerate(limits):
        mask, res = limit.residual_inside(shape)
        remaining = np.maximum(limit.limit_eqd2_gy - res, 0.0)
        budget = np.asarray(dose_for_eqd2(remaining, fractions, limit.alpha_beta_gy), dtype=float)
        current = values[mask]
        tighter = budget < current
        values[mask] = np.where(tighter, budget, current)
        limiting[mask] = np.where(tighter, index, limiting[mask])
    constrained = limiting >= 0
    values[~constrained] = unconstrained_gy
    return ResidualBudget(
        values=values,
        constrained=constrained,
        exhausted=constrained & (values <= 0.0),
        limiting=limiting,
        fractions=int(fractions),
    )
