"""Run a case once and hand the typed results on: what ``reirrad report`` (and later the web
application and the cohort runner) present.

:func:`run_case` reads the case file once, runs the structure-level assessment and, when
every course gives DICOM, the voxel-wise accumulation once (keeping its maps), then the
fractionation explorer on those maps and NTCP on the cumulative DVHs. Nothing downstream
reads a file or recomputes a dose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reirrad.core import radiobiology as rb
from reirrad.core.assessment import Assessment
from reirrad.core.case import Case
from reirrad.core.dvh import DVH
from reirrad.core.ntcp import StructureNTCP, structure_ntcp
from reirrad.core.voxel import VoxelAssessment
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.ntcp_data import load_ntcp_parameter_sets
from reirrad.pipelines.accumulate import Progress, course_dvhs
from reirrad.pipelines.assess import assess_case
from reirrad.pipelines.explore import CaseExploration, explore_case

__all__ = ["CaseRun", "run_case"]


@dataclass(frozen=True)
class CaseRun:
    """Everything computed for one case, once.

    Attributes
    ----------
    case
        The validated case.
    case_path
        The case file (``None`` for a case given as an object).
    base
        Directory the case's relative paths are resolved from.
    assessment
        The structure-level assessment; ``assessment.voxel`` is the voxel-wise result (with
        maps) when every course gives DICOM.
    exploration
        The fractionation explorer's result when the case has an ``exploration`` section.
    exploration_unavailable
        Why the explorer did not run (``None`` when it ran or was not asked for).
    ntcp
        NTCP of the cumulative EQD2 DVHs (voxel-wise cases) with the packaged parameter
        sets, one item per structure, matching parameter set and recovery variant
        (:func:`reirrad.core.ntcp.structure_ntcp`).
    ntcp_unavailable
        Why no NTCP is given, if none is.
    """

    case: Case
    case_path: Path | None
    base: Path | None
    assessment: Assessment
    exploration: CaseExploration | None = None
    exploration_unavailable: str | None = None
    ntcp: tuple[StructureNTCP, ...] = ()
    ntcp_unavailable: str | None = None
    #: ``{course: {structure: (physical DVH, EQD2 DVH)}}`` on the reference grid
    #: (:func:`reirrad.pipelines.accumulate.course_dvhs`); empty without the voxel-wise run.
    course_dvhs: Mapping[str, Mapping[str, tuple[DVH, DVH]]] = field(
        default_factory=dict, repr=False
    )
    timings: Mapping[str, float] = field(default_factory=dict, repr=False)

    @property
    def voxel(self) -> VoxelAssessment | None:
        """The voxel-wise result (``None`` unless every course gives DICOM)."""
        return self.assessment.voxel


def run_case(
    case: Case | str | Path,
    *,
    methods: Mapping[str, str] | str | None = None,
    constraint_sets: Sequence[str] | None = None,
    lql: rb.LQL | None = None,
    repopulation: rb.Repopulation | None = None,
    reference: str | None = None,
    explore: bool = True,
    dvhs: bool = True,
    progress: Progress | None = None,
    workers: int = 2,
) -> CaseRun:
    """Run a case once: assessment, voxel-wise accumulation, explorer, NTCP.

    Parameters
    ----------
    case
        A YAML case file, or a validated case (paths relative to the working directory).
    methods, constraint_sets, lql, repopulation
        As :func:`reirrad.pipelines.assess.assess_case`.
    reference
        Reference course of the voxel-wise accumulation (default: the case's, else newest).
    explore
        Run the explorer when the case has an ``exploration`` section.
    dvhs
        Compute every course's DVHs on the reference grid (``CaseRun.course_dvhs``).
    progress
        Progress callback of the voxel-wise accumulation.
    workers
        Threads for the per-structure work (1 inside a process pool).
    """
    path = None
    base = None
    if not isinstance(case, Case):
        path = Path(case)
        base = path.resolve().parent
        case = load_case(path)
    assessment = assess_case(
        case,
        methods=methods,
        constraint_sets=constraint_sets,
        lql=lql,
        repopulation=repopulation,
        base=base,
        reference=reference,
        keep_maps=True,
        progress=progress,
        workers=workers,
    )
    exploration, unavailable = None, None
    if explore and case.exploration is not None:
        try:
            exploration = explore_case(
                case, constraint_sets=list(constraint_sets or []), base=base,
                voxel=assessment.voxel,
            )  # fmt: skip
        except InputError as error:
            unavailable = f"the explorer could not run: {error}"
    ntcp, ntcp_unavailable = _ntcp(assessment.voxel)
    voxel = assessment.voxel
    per_course = course_dvhs(voxel, workers=workers) if voxel is not None and dvhs else {}
    return CaseRun(
        case=case,
        case_path=path,
        base=base,
        assessment=assessment,
        exploration=exploration,
        exploration_unavailable=unavailable,
        ntcp=ntcp,
        ntcp_unavailable=ntcp_unavailable,
        course_dvhs=per_course,
    )


def _ntcp(voxel: VoxelAssessment | None) -> tuple[tuple[StructureNTCP, ...], str | None]:
    """NTCP of the cumulative DVHs with the packaged parameter sets, or why there is none."""
    if voxel is None:
        return (), (
            "NTCP needs a dose-volume histogram of the cumulative EQD2, i.e. the voxel-wise "
            "accumulation (every course with DICOM doses)"
        )
    sets = load_ntcp_parameter_sets()
    found = structure_ntcp(voxel, sets.values())
    if found:
        return found, None
    return (), (
        "no packaged NTCP parameter set matches the organs of this case "
        f"(sets: {', '.join(sorted(sets))})"
    )
