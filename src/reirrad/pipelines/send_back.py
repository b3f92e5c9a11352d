"""The two RTDOSE objects sent back to the planning system for a re-irradiation plan.

* the cumulative EQD2 (with recovery) of every course, DoseType EFFECTIVE (see
  :func:`reirrad.io.export.write_rtdose`);
* the residual budget of the new course (:mod:`reirrad.core.residual_budget`): per voxel, the
  physical dose in the new plan's number of fractions that brings the voxel to its tightest
  cumulative Dmax limit, DoseType PHYSICAL (:func:`reirrad.io.export.write_residual_budget`).

Both are on the new (newest) course's dose grid and frame of reference, with the new plan's
patient and study (copied from its RTDOSE), so a planner can load them beside the plan and
optimise against the history. The per-voxel residuals are the explorer's
(:func:`reirrad.pipelines.explore.voxel_residuals`); only maximum-dose limits give a
per-voxel budget (mean and Dx% limits are statements on whole structures and are listed as
not used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from reirrad.core.assessment import case_constraints
from reirrad.core.case import Case
from reirrad.core.metrics import parse_metric
from reirrad.core.residual_budget import VoxelLimit, residual_budget
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.constraint_sets import load_constraints
from reirrad.io.export import write_cumulative_rtdose, write_residual_budget
from reirrad.pipelines.accumulate import accumulate_case
from reirrad.pipelines.explore import voxel_residuals

__all__ = ["SendBackObjects", "write_send_back"]


@dataclass(frozen=True)
class SendBackObjects:
    """The written files and what a physicist checks before sending them."""

    cumulative_path: Path
    budget_path: Path
    fractions: int
    frame_of_reference_uid: str
    limits_used: tuple[str, ...]
    limits_not_used: tuple[str, ...]
    exhausted: tuple[str, ...]
    statistics: dict[str, dict[str, float]]


def _new_plan_dose(case: Case, base: Path) -> Path:
    new = case.courses[-1]
    dicom = new.dicom
    files = list(dicom.rtdose) or [f for phase in dicom.phases for f in phase.rtdose]
    if not files:
        raise InputError(
            f"course {new.id} has no RTDOSE file", field=f"courses[{new.id}].dicom.rtdose"
        )
    return (base / files[0]).resolve()


def _limits(case, new_id, constraints, voxel) -> tuple[list[VoxelLimit], list[str]]:
    skipped: list[str] = []
    exceeded: list[str] = []
    limits = []
    for item in voxel_residuals(case, new_id, constraints, voxel, skipped, exceeded):
        metric = parse_metric(item.metric)
        if not (metric.kind == "max" or (metric.kind == "dose_at_volume" and metric.value == 0)):
            skipped.append(
                f"{item.label}: {item.metric} bounds the whole structure, no voxel budget"
            )
            continue
        mask = np.zeros(voxel.grid.shape, dtype=bool)
        residual = np.zeros(voxel.grid.shape)
        mask[item.box] = item.inside  # the box is a view: voxels in C order, as the residuals
        residual[item.box][item.inside] = item.residual_eqd2_gy
        limits.append(
            VoxelLimit(item.label, mask, item.alpha_beta_gy, item.limit_eqd2_gy, residual)
        )
    return limits, skipped


def _planned_fractions(phases: Sequence[tuple[float, object]], course_id: str) -> int:
    """The new plan's number of fractions; a course of several phases (e.g. a sequential
    boost) has no single fractionation for the budget, so the caller must name one."""
    if len(phases) != 1:
        raise InputError(
            f"course {course_id} has {len(phases)} phases: give the number of fractions the "
            "residual budget is for",
            field="fractions",
        )
    return int(round(phases[0][0]))


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"max_gy": float(values.max()), "mean_gy": float(values.mean())}


def write_send_back(
    case_or_path: Case | str | Path,
    out_dir: str | Path,
    *,
    constraint_sets: Sequence[str] | None = None,
    fractions: int | None = None,
    base: Path | None = None,
) -> SendBackObjects:
    """Write the cumulative-EQD2 and residual-budget RTDOSEs of the newest course.

    Parameters
    ----------
    case_or_path
        Case file (or validated case with ``base``); every course must have DICOM.
    out_dir
        Folder for ``cumulative_eqd2.dcm`` and ``residual_budget.dcm``.
    constraint_sets
        Extra constraint sets on top of the case's own.
    fractions
        Fractions of the planned new course; default the new plan's.
    """
    if isinstance(case_or_path, Case):
        case, base = case_or_path, Path(base or ".")
    else:
        base = Path(case_or_path).resolve().parent
        case = load_case(case_or_path)
    if any(c.dicom is None for c in case.courses):
        raise InputError(
            "the send-back doses need DICOM for every course (a voxel-wise accumulation)",
            field="courses[].dicom",
        )
    new = case.courses[-1]
    voxel = accumulate_case(
        case, reference=new.id, base=base, keep_maps=True, constraint_sets=constraint_sets
    )
    if fractions is None:
        fractions = _planned_fractions(voxel.maps.course(new.id).phases, new.id)
    sets = load_constraints(list(case.constraints.sets) + list(constraint_sets or []), base=base)
    limits, skipped = _limits(case, new.id, case_constraints(case, sets), voxel)
    budget = residual_budget(limits, tuple(voxel.grid.shape), int(fractions))
    template = pydicom.dcmread(_new_plan_dose(case, base), stop_before_pixels=True)
    new_plan = [
        str(r.ReferencedSOPInstanceUID) for r in template.get("ReferencedRTPlanSequence", [])
    ]
    common = {"reference_ct": template, "frame_of_reference_uid": voxel.frame_of_reference_uid}
    out = Path(out_dir)
    cumulative_path = write_cumulative_rtdose(
        voxel, out / "cumulative_eqd2.dcm", includes_current_plan=True, **common
    )
    budget_path = write_residual_budget(
        budget, voxel.grid, out / "residual_budget.dcm", referenced_plan_uid=new_plan, **common
    )
    exhausted = tuple(
        limit.name
        for i, limit in enumerate(limits)
        if (budget.exhausted & (budget.limiting == i)).any()
    )
    return SendBackObjects(
        cumulative_path=cumulative_path,
        budget_path=budget_path,
        fractions=int(fractions),
        frame_of_reference_uid=voxel.frame_of_reference_uid,
        limits_used=tuple(limit.name for limit in limits),
        limits_not_used=tuple(skipped),
        exhausted=exhausted,
        statistics={
            "cumulative_eqd2": _stats(np.asarray(voxel.total.values)),
            "residual_budget": _stats(budget.values[budget.constrained]),
        },
    )
