"""The public, file-aware entry points: what the CLI does, callable from a notebook.

These functions join the adapters (case files, constraint data, DICOM) to the pure core.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from reirrad.core import radiobiology as rb
from reirrad.core.assessment import Assessment, assess
from reirrad.core.case import Case
from reirrad.core.prognosis import case_prognosis
from reirrad.core.voxel import VoxelAssessment
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.constraint_sets import load_constraints
from reirrad.io.dicom_case import dicom_statistics
from reirrad.pipelines.accumulate import Progress, accumulate_case
from reirrad.pipelines.pet import measure_pet

__all__ = ["assess_case", "case_prognosis", "load_case", "load_constraints"]


def assess_case(
    case: Case | str | Path,
    *,
    methods: Mapping[str, str] | str | None = None,
    constraint_sets: Sequence[str] | None = None,
    lql: rb.LQL | None = None,
    repopulation: rb.Repopulation | None = None,
    base: Path | None = None,
    reference: str | None = None,
    keep_maps: bool = False,
    progress: Progress | None = None,
    workers: int = 2,
) -> Assessment:
    """Assess a case file (or a :class:`Case`) exactly as ``reirrad assess`` does.

    When every course gives DICOM the voxel-wise accumulation runs once and is the result
    (``Assessment.voxel``); the structure-level rows are computed from the same mapped doses
    (each course's physical statistics on the reference grid) as the comparison. When only
    some courses give DICOM, their statistics come from each course's own DVHs.

    Parameters
    ----------
    case
        A path to a YAML case file, or a validated case (relative paths from ``base``).
    methods
        ``"structure"``, ``"prescription"`` or ``"none"`` for every course, or a mapping
        course id -> method; default: the case's ``analysis.method``.
    constraint_sets
        Extra constraint sets (packaged names or YAML paths) on top of the case's own.
    lql, repopulation
        Optional LQ-L model and tumour repopulation correction (structure-level rows).
    reference, keep_maps, progress, workers
        Passed to :func:`reirrad.pipelines.accumulate.accumulate_case`.
    """
    if not isinstance(case, Case):
        base = Path(case).resolve().parent
        case = load_case(case)
    names = list(case.constraints.sets) + list(constraint_sets or [])
    sets = load_constraints(names, base=base)
    doses, notes, voxel, extra = None, [], None, ()
    if all(course.dicom is not None for course in case.courses):
        voxel = accumulate_case(
            case, reference=reference, constraint_sets=constraint_sets, base=base,
            keep_maps=keep_maps, progress=progress, workers=workers,
        )  # fmt: skip
        doses, notes = _voxel_statistics(case, voxel)
        if lql is not None or repopulation is not None:
            extra = (
                "the voxel-wise accumulation uses the linear-quadratic model without LQ-L or "
                "repopulation corrections; those options apply to the structure-level rows only",
            )
    elif any(course.dicom is not None for course in case.courses):
        doses, notes = dicom_statistics(case, base=base)
    volume = recurrence_pet_volume(case, base)
    if volume is not None:
        notes = [*notes, f"recurrence volume (Li 2018 rGTV) {volume[0]:.1f} ml from {volume[1]}"]
    result = assess(
        case,
        methods=methods,
        constraint_sets=sets,
        doses=doses,
        lql=lql,
        repopulation=repopulation,
        prognosis=case_prognosis(case, recurrence_volume=volume),
        extra_assumptions=notes,
    )
    if voxel is not None:
        result = dataclasses.replace(result, voxel=voxel, warnings=result.warnings + extra)
    return result


def recurrence_pet_volume(case: Case, base: Path | None) -> tuple[float, str] | None:
    """The recurrence volume (ml) from the case's PET threshold rule, and how it was measured."""
    recurrence = case.recurrence
    if recurrence is None or recurrence.pet is None:
        return None
    spec, root = recurrence.pet, base or Path.cwd()
    result = measure_pet(
        root / spec.series,
        structures=None if spec.structures is None else root / spec.structures,
        roi=spec.roi,
        box=spec.box,
        threshold=spec.threshold,
    )
    if not result.threshold_volume_cc:
        raise InputError(
            f"the PET threshold {spec.threshold} leaves no voxel in {result.region}",
            field="recurrence.pet.threshold",
        )
    how = f"PET {Path(spec.series).name}: {result.threshold.describe()} inside {result.region}"
    return result.threshold_volume_cc, how


def _voxel_statistics(
    case: Case, voxel: VoxelAssessment
) -> tuple[dict[str, dict[str, dict[str, float]]], list[str]]:
    """Per course, structure and statistic the physical dose of the mapped courses (the
    structure-level comparison of a voxel-wise run), merged over the typed-in doses."""
    doses: dict[str, dict[str, dict[str, float]]] = {}
    for course in case.courses:
        merged = {name: dict(stats) for name, stats in course.doses.items()}
        for structure in voxel.structures:
            stats = merged.setdefault(structure.name, {})
            for statistic in course.dicom.statistics:
                metric = structure.metric(statistic)
                stats[metric.metric] = metric.physical_per_course_gy[course.id]
        doses[course.id] = merged
    notes = [
        f"structure-level statistics of every course from its physical dose mapped onto the "
        f"reference grid of course {voxel.reference_course} (the same dose-volume histograms as the voxel-wise result)"
    ]
    return doses, notes
