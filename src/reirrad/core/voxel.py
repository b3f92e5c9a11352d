"""Typed results of the voxel-wise cumulative assessment (produced by
:func:`reirrad.pipelines.accumulate.accumulate_case`, shown by :mod:`reirrad.present`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from reirrad.core.accumulate import CoursePhysical, ReirradiationType
from reirrad.core.case import Case
from reirrad.core.constraints import ConstraintResult
from reirrad.core.dvh import DVH
from reirrad.core.geometry import Dose, Grid
from reirrad.core.metrics import parse_metric
from reirrad.core.sensitivity import SensitivityOutcome
from reirrad.core.structures import Structure
from reirrad.core.tissue import TissueModel, TissueRegion

__all__ = [
    "CourseContribution",
    "CourseMapping",
    "StructureMetric",
    "VoxelAssessment",
    "VoxelConstraint",
    "VoxelMaps",
    "VoxelStructure",
]


@dataclass(frozen=True)
class CourseMapping:
    """One course as read and mapped onto the reference grid.

    ``phases`` holds ``(label, fractions, where the fractions came from)``; ``mapping`` the
    registration label (``deformable (UNCERTAIN)`` when uncertain); ``recovery_interval_days``
    the interval from the course's end to the newest course's start (``None`` for the newest).
    """

    course: str
    label: str | None
    phases: tuple[tuple[str, int, str], ...]
    mapping: str
    uncertain: bool
    mapping_description: str
    recovery_interval_days: int | None
    coverage_fraction: float
    frame_of_reference_uid: str | None


@dataclass(frozen=True)
class CourseContribution:
    """A course's EQD2 contribution to a structure (occupancy-weighted mean and maximum, Gy)."""

    course: str
    mean_gy: float
    max_gy: float
    mean_no_recovery_gy: float
    max_no_recovery_gy: float


@dataclass(frozen=True)
class StructureMetric:
    """A cumulative statistic of a structure: voxel-wise, and the structure-level methods.

    ``structure_level`` maps ``structure`` / ``prescription`` / ``none`` to the cumulative
    EQD2 (after recovery) those methods give from the per-course physical statistics of the
    mapped doses (``None`` where a method cannot be applied, e.g. no prescription).
    """

    metric: str
    eqd2_gy: float
    eqd2_no_recovery_gy: float
    physical_per_course_gy: Mapping[str, float]
    structure_level: Mapping[str, float | None]


@dataclass(frozen=True)
class VoxelConstraint:
    """A constraint evaluated on the voxel-wise cumulative (or per-course) DVH."""

    structure: str
    result: ConstraintResult
    quantity_text: str
    sensitivity: SensitivityOutcome | None = None
    course: str | None = None
    #: Verdict-level flags (e.g. partial dose-grid coverage): shown with the verdict.
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class VoxelStructure:
    """One reference structure: tissue, volume, cumulative metrics, contributions."""

    name: str
    roi: str
    role: str
    organ: str | None
    alpha_beta: float
    recovery: str
    volume_cc: float
    covered_fraction: float
    metrics: tuple[StructureMetric, ...]
    contributions: tuple[CourseContribution, ...]
    dvh: DVH = field(repr=False)
    dvh_no_recovery: DVH = field(repr=False)
    #: Per course id, the fraction of the structure its dose grid covers.
    course_coverage: Mapping[str, float] = field(default_factory=dict)
    #: Per course id, the DVH of its physical dose mapped onto the reference grid.
    course_physical: Mapping[str, DVH] = field(default_factory=dict, repr=False)
    #: Verdict-level flags (partial coverage): repeated on every constraint of the structure.
    flags: tuple[str, ...] = ()
    #: ROI Display Color (3006,002A) of the reference RTSTRUCT's ROI as ``(r, g, b)`` 0-255,
    #: ``None`` when the file gives none (figures then pick a palette colour).
    display_color: tuple[int, int, int] | None = None

    def metric(self, name: str) -> StructureMetric:
        key = parse_metric(name).name
        for item in self.metrics:
            if item.metric == key:
                return item
        raise KeyError(name)


@dataclass(frozen=True)
class VoxelMaps:
    """The per-voxel inputs of a run, kept for the explorer, the report and NTCP.

    Attributes
    ----------
    courses
        Every course's physical dose on the reference grid, phase by phase (oldest first).
    tissue
        The tissue model (alpha/beta and recovered fractions per voxel).
    occupancy
        Per case structure, ``(box, fraction of each voxel inside)``: ``box`` are the slices
        of the reference grid that the occupancy array covers.
    recovery_interval_days
        Per earlier course id, days from its end to the start of the newest course.
    regions
        Per case structure, its region of the tissue model (box, owned voxels, tissue).
    contours
        Per case structure, its contours (``reirrad.core.structures.Structure``) and the
        grid of its box, for DVHs of any variant
        (:func:`reirrad.pipelines.accumulate.structure_dvh`).
    """

    courses: tuple[CoursePhysical, ...] = field(repr=False)
    tissue: TissueModel = field(repr=False)
    occupancy: Mapping[str, tuple[tuple[slice, slice, slice], NDArray[np.float32]]] = field(
        repr=False
    )
    recovery_interval_days: Mapping[str, int]
    regions: Mapping[str, TissueRegion] = field(default_factory=dict, repr=False)
    contours: Mapping[str, tuple[Structure, Grid]] = field(default_factory=dict, repr=False)

    def course(self, course_id: str) -> CoursePhysical:
        for item in self.courses:
            if item.course == course_id:
                return item
        raise KeyError(course_id)


@dataclass(frozen=True)
class VoxelAssessment:
    """The voxel-wise cumulative assessment of a case.

    Attributes
    ----------
    total, total_no_recovery
        Cumulative EQD2 on the reference grid (kind EFFECTIVE), with and without recovery.
    courses
        How each course was read and mapped (oldest first).
    structures, constraints
        Per reference structure results; every constraint evaluated (with sensitivity).
    reirradiation
        ESTRO-EORTC type (``None`` when no threshold was set).
    assumptions, warnings
        Everything assumed; anything the reader must check.
    uncertain
        True when a course was mapped by deformable registration.
    """

    case: Case = field(repr=False)
    reference_course: str
    grid: Grid = field(repr=False)
    total: Dose = field(repr=False)
    total_no_recovery: Dose = field(repr=False)
    courses: tuple[CourseMapping, ...]
    structures: tuple[VoxelStructure, ...]
    constraints: tuple[VoxelConstraint, ...]
    reirradiation: ReirradiationType | None
    assumptions: tuple[str, ...]
    warnings: tuple[str, ...]
    uncertain: bool
    frame_of_reference_uid: str | None
    plan_uids: tuple[str, ...] = ()
    #: SOP Instance UIDs of every course's RTDOSE objects (the sources of ``total``).
    dose_uids: tuple[str, ...] = ()
    reference_ct: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict, repr=False)
    maps: VoxelMaps | None = field(default=None, repr=False)
    #: The overlap rule in words (stated in every output).
    tissue_rule: str = ""

    def structure(self, name: str) -> VoxelStructure:
        for item in self.structures:
            if item.name == name:
                return item
        raise KeyError(name)
