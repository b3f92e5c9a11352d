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
from reirrad.core.voxel import VoxelAssessment
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.pipelines.accumulate import Progress
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
        NTCP of the cumulative EQD2 DVHs (voxel-wise cases), one item per structure,
        parameter set and recovery variant.
    ntcp_unavailable
        Why no NTCP is given, if none is.
    """

    case: Case
    case_path: Path | None
    base: Path | None
    assessment: Assessment
    exploration: CaseExploration | None = None
    exploration_unavailable: str | None = None
    ntcp: tuple = ()
    ntcp_unavailable: str | None = None
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
    return CaseRun(
        case=case,
        case_path=path,
        base=base,
        assessment=assessment,
        exploration=exploration,
        exploration_unavailable=unavailable,
    )
