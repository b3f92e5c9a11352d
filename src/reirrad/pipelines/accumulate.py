"""Voxel-wise multi-course accumulation of a case file (the file-aware pipeline).

:func:`accumulate_case` runs these steps once, each a function of its own:

1. :func:`read_courses`: every course's DICOM phases (RTDOSE, RTPLAN), frames of reference
   and recovery intervals;
2. :func:`register_courses`: the mapping of each course onto the reference course (identity,
   DICOM REG, computed rigid or deformable registration);
3. :func:`reference_structures`: the case's structures in the reference RTSTRUCT, each on its
   padded box of the reference grid with its partial-volume occupancy and tissue;
4. :func:`tissue_model`: one alpha/beta and recovered fraction per voxel
   (:func:`reirrad.core.tissue.build_tissue_model`, order-independent);
5. :func:`resample_courses`: every phase's physical dose on the reference grid;
6. :func:`reirrad.core.accumulate.cumulative_maps`: the cumulative EQD2 with and without
   recovery, each voxel converted with its own dose per fraction and tissue;
7. :func:`evaluate_structure`: per structure the DVHs *of that cumulative map* (so a DVH of
   the exported RTDOSE equals the table), coverage by every course, contributions, the
   structure-level methods as a comparison, the constraints and their sensitivity;
8. the ESTRO-EORTC re-irradiation type.

Every assumption is stated in :attr:`VoxelAssessment.assumptions`; the method is described in
``docs/accumulation.md`` and the case-file usage in ``docs/dicom.md``.

Speed and memory (large grids): maps on the reference grid are float32; structure
occupancies, DVHs and all per-structure quantities are computed on each structure's padded
bounding box (a sub-grid), never as full-grid passes per structure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from reirrad.core.accumulate import (
    EDGE_DOSE_FRACTION,
    CoursePhysical,
    ReirradiationType,
    cumulative_maps,
    edge_dose_fraction,
    effective_sum,
    reirradiation_type,
)
from reirrad.core.assessment import case_constraints, convert_statistic, recovery_warnings
from reirrad.core.case import Case, Course, Prescription, StructureSpec
from reirrad.core.constraints import Constraint, evaluate
from reirrad.core.dvh import DVH, compute_dvh, structure_occupancy
from reirrad.core.geometry import Dose, Grid
from reirrad.core.metrics import parse_metric
from reirrad.core.radiobiology import lq_effective
from reirrad.core.recovery import RecoveryModel, recovery_model_from_spec
from reirrad.core.registration import Transform, register_deformable, register_rigid, resample_dose
from reirrad.core.sensitivity import Scenario, classify_scenarios, scenarios
from reirrad.core.structures import Structure, StructureSet
from reirrad.core.tissue import (
    Tissue,
    TissueModel,
    TissueRegion,
    build_tissue_model,
    membership,
    structure_tissue,
)
from reirrad.core.voxel import (
    CourseContribution,
    CourseMapping,
    StructureMetric,
    VoxelAssessment,
    VoxelConstraint,
    VoxelMaps,
    VoxelStructure,
)
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.constraint_sets import load_constraints
from reirrad.io.dicom import check_frame_of_reference, read_ct_volume
from reirrad.io.dicom_case import (
    PhaseDose,
    course_phases,
    extra_rtstruct_notes,
    read_course_structures,
    roi_name,
)
from reirrad.io.registration_io import read_spatial_registration

__all__ = [
    "CourseContribution",
    "CourseMapping",
    "StructureMetric",
    "VoxelAssessment",
    "VoxelConstraint",
    "VoxelStructure",
    "accumulate_case",
    "course_dvhs",
    "structure_dvh",
]

#: Progress callback: ``progress(stage, done, total)``.
Progress = Callable[[str, int, int], None]

#: Statistics always reported per structure (besides the constraints' metrics).
DEFAULT_STATISTICS = ("Dmean", "Dmax", "D2%", "D50%", "D95%", "D98%", "D0.035cc")

#: A structure's share of a course's dose grid below this is "partly covered".
FULL_COVERAGE = 0.999

_BOX_PAD = 2  # voxels around a structure's box: trilinear dose inside it is unchanged


# --------------------------------------------------------------------------------------
# Working state of one run
# --------------------------------------------------------------------------------------


@dataclass
class _CourseData:
    course: Course
    phases: list[PhaseDose]
    recovery_interval: int | None
    frame_uid: str | None
    transform: Transform = field(default_factory=Transform.identity)
    resampled: list[NDArray[np.float32]] = field(default_factory=list)
    coverage: NDArray[np.bool_] | None = None


@dataclass
class _StructureData:
    spec: StructureSpec
    roi: str
    structure: Structure
    box: tuple[slice, slice, slice]
    grid: Grid
    occupancy: NDArray[np.float32]
    alpha_beta: float
    model: RecoveryModel
    role: str
    region: TissueRegion | None = None


@dataclass
class _Notes:
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


# --------------------------------------------------------------------------------------
# 1. Reading
# --------------------------------------------------------------------------------------


def _load(case_or_path: Case | str | Path, base: Path | None) -> tuple[Case, Path | None]:
    if isinstance(case_or_path, Case):
        return case_or_path, base
    return load_case(case_or_path), Path(case_or_path).resolve().parent


def _reference_id(case: Case, reference: str | None) -> str:
    without = [c.id for c in case.courses if c.dicom is None]
    if without:
        raise InputError(
            f"the voxel-wise accumulation needs DICOM for every course; course(s) {without} "
            "have no dicom section",
            field="courses",
        )
    ids = [c.id for c in case.courses]
    if reference is not None and not reference.strip():
        raise InputError(f"the reference course is empty; courses: {ids}", field="--reference")
    reference_id = reference or case.analysis.reference_course or ids[-1]
    if reference_id not in ids:
        raise InputError(
            f"unknown reference course {reference_id!r}; courses: {ids}", field="--reference"
        )
    return reference_id


def read_courses(
    case: Case, base: Path | None, notes: _Notes, progress: Progress | None = None
) -> list[_CourseData]:
    """Every course's phases (physical dose totals, fractions), frame and recovery interval."""
    newest = case.courses[-1]
    data = []
    for index, course in enumerate(case.courses):
        _report(progress, "read", index, len(case.courses))
        phases = course_phases(course, base=base)
        for phase in phases:
            notes.assumptions.extend(phase.notes)
            edge = edge_dose_fraction(phase.dose.values)
            if edge >= EDGE_DOSE_FRACTION:
                notes.warnings.append(
                    f"course {course.id}, phase {phase.label}: the dose on the edge of its dose "
                    f"grid reaches {100 * edge:.0f} % of the maximum: the high-dose region touches "
                    "the grid's edge (truncated or misplaced grid?); check the RTDOSE"
                )
        frames = {p.frame_of_reference_uid for p in phases}
        if len(frames) > 1:
            raise InputError(
                f"the phases of course {course.id} are in different frames of reference; "
                "give them as separate courses with their registrations",
                field=f"courses[{course.id}].dicom.phases",
            )
        interval = None if course is newest else (newest.start - course.end).days
        data.append(_CourseData(course, phases, interval, frames.pop()))
    return data


def read_structure_sets(
    data: Sequence[_CourseData], ref: _CourseData, base: Path | None
) -> tuple[StructureSet, Path]:
    """Every course's RTSTRUCT, each in its dose's frame of reference; returns the reference's.

    Only the reference course's structures are evaluated, but every listed structure set is
    read and checked: a broken or mismatched file in the case is refused, never ignored.
    """
    reference = None
    for item in data:
        structure_set, path = read_course_structures(item.course, base)
        check_frame_of_reference(item.phases[0].dose, structure_set)
        if item is ref:
            reference = (structure_set, path)
    return reference


# --------------------------------------------------------------------------------------
# 2. Registration
# --------------------------------------------------------------------------------------


def register_courses(
    data: Sequence[_CourseData],
    ref: _CourseData,
    base: Path | None,
    notes: _Notes,
    progress: Progress | None = None,
) -> str | None:
    """Set each course's mapping onto the reference; returns the reference CT's first file."""
    ref_ct = None
    for index, item in enumerate(data):
        if item is ref:
            item.transform = Transform.identity(ref.frame_uid)
            continue
        _report(progress, "registration", index, len(data))
        spec = item.course.dicom.registration
        method = spec.method if spec is not None else "identity"
        where = f"courses[{item.course.id}].dicom.registration"
        if method == "identity":
            if item.frame_uid and ref.frame_uid and item.frame_uid != ref.frame_uid:
                raise InputError(
                    f"course {item.course.id} is in frame of reference {item.frame_uid}, the "
                    f"reference course {ref.course.id} in {ref.frame_uid}: identity mapping is "
                    "wrong here; give registration: {method: reg, file: REG.dcm} or "
                    "{method: rigid} with the CTs",
                    field=where,
                )
            item.transform = Transform.identity(ref.frame_uid)
        elif method == "reg":
            path = _path(base, spec.file)
            if not path.is_file():
                raise InputError(
                    "registration file not found", source=str(path), field=f"{where}.file"
                )
            item.transform = read_spatial_registration(
                path, moving_frame_uid=item.frame_uid, reference_frame_uid=ref.frame_uid
            )
        else:
            if ref_ct is None:
                ref_ct = _read_ct(ref.course, base, ref.frame_uid)
            moving = _read_ct(item.course, base, item.frame_uid)
            options = dict(fixed_frame_uid=ref.frame_uid, moving_frame_uid=item.frame_uid)
            if method == "rigid":
                item.transform = register_rigid(
                    ref_ct[0], ref_ct[1], moving[0], moving[1], **options
                )
            else:
                item.transform = register_deformable(
                    ref_ct[0], ref_ct[1], moving[0], moving[1], method=spec.deformable, **options
                )
                notes.warnings.append(
                    f"course {item.course.id} mapped by deformable registration: UNCERTAIN (no "
                    "ground truth between courses; check the mapping)"
                )
    if ref_ct is not None:
        return ref_ct[2]
    return _first_ct(ref.course, base) if ref.course.dicom.ct is not None else None


# --------------------------------------------------------------------------------------
# 3-4. Structures and the tissue model
# --------------------------------------------------------------------------------------


def _role(spec: StructureSpec, structure: Structure) -> str:
    """The tissue-model role: the external contour never overrides another structure."""
    if spec.role == "external" or (structure.roi_type or "").upper() == "EXTERNAL":
        return "external"
    return spec.role


def reference_structures(
    case: Case,
    ref: _CourseData,
    structure_set: StructureSet,
    path: Path,
    notes: _Notes,
) -> list[_StructureData]:
    """The case's structures in the reference RTSTRUCT: box, occupancy, tissue, role."""
    grid = ref.phases[0].dose.grid
    available = list(structure_set.structures)
    out = []
    for spec in case.structures:
        try:
            roi = roi_name(ref.course, spec.name, available)
        except InputError as error:
            if spec.name in ref.course.dicom.structure_map:
                raise error.located(source=str(path)) from None
            if spec.role == "target":
                raise InputError(
                    f"target {spec.name!r} is not in the reference RTSTRUCT; map it under "
                    f"structure_map (ROIs: {', '.join(available)})",
                    source=str(path),
                    field=f"courses[{ref.course.id}].dicom.structure_map",
                ) from None
            notes.warnings.append(
                f"structure {spec.name!r} is not in the reference RTSTRUCT ({path.name}): not "
                "evaluated voxel-wise and not in the tissue model"
            )
            continue
        structure = structure_set.structures[roi]
        if structure.is_empty:
            raise InputError(f"ROI {roi!r} has no contours", source=str(path))
        boxed = _structure_box(structure, grid)
        if boxed is None:
            raise InputError(
                f"ROI {roi!r} lies outside the reference dose grid of course {ref.course.id}",
                source=str(path),
            )
        box, sub = boxed
        alpha_beta, model = case.tissue(spec)
        role = _role(spec, structure)
        if role == "external" and spec.role != "external":
            notes.assumptions.append(
                f"{spec.name}: RT ROI Interpreted Type EXTERNAL, so it only replaces the "
                "default tissue (it overrides no other structure)"
            )
        out.append(
            _StructureData(
                spec, roi, structure, box, sub, structure_occupancy(structure, sub),
                alpha_beta, model, role,
            )
        )  # fmt: skip
    return out


def _default_tissue(case: Case) -> tuple[float, RecoveryModel]:
    default = case.analysis.default_tissue
    oar = case.tissue_defaults.get("organ_at_risk")
    alpha_beta = (default.alpha_beta if default else None) or (oar.alpha_beta if oar else None)
    recovery = (default.recovery if default and default.recovery is not None else None) or (
        oar.recovery if oar else None
    )
    if alpha_beta is None or recovery is None:
        raise InputError(
            "voxels outside every structure need a tissue: set analysis.default_tissue "
            "{alpha_beta: ..., recovery: ...} (or tissue_defaults.organ_at_risk)",
            field="analysis.default_tissue",
        )
    return alpha_beta, recovery_model_from_spec(recovery)


def tissue_model(
    case: Case,
    structures: Sequence[_StructureData],
    data: Sequence[_CourseData],
    shape: tuple[int, int, int],
    notes: _Notes,
) -> TissueModel:
    """One alpha/beta and recovered fraction per voxel of the reference grid."""
    intervals = {d.course.id: d.recovery_interval for d in data if d.recovery_interval is not None}

    def tissue(alpha_beta: float, model: RecoveryModel) -> Tissue:
        recovered = {c: float(model.recovered_fraction(days)) for c, days in intervals.items()}
        return Tissue(alpha_beta, recovered)

    default_ab, default_model = _default_tissue(case)
    for s in structures:
        s.region = TissueRegion(
            s.spec.name, s.role, tissue(s.alpha_beta, s.model), s.box, membership(s.occupancy),
            touched=s.occupancy > 0.0,
        )  # fmt: skip
    regions = [s.region for s in structures]
    rule = case.analysis.overlap_rule
    model = build_tissue_model(
        shape,
        regions,
        tissue(default_ab, default_model),
        rule,
        courses=list(intervals),
    )
    notes.assumptions.append(
        f"tissue model on the reference grid: {model.description}; voxels in no structure: "
        f"alpha/beta {default_ab:g} Gy, recovery {default_model.describe()}"
    )
    for s in structures:
        notes.assumptions.append(
            f"{s.spec.name} ({s.role}, ROI {s.roi!r}): alpha/beta {s.alpha_beta:g} Gy; "
            f"recovery {s.model.describe()}"
        )
    return model


# --------------------------------------------------------------------------------------
# 5. Resampling onto the reference grid
# --------------------------------------------------------------------------------------


def resample_courses(
    data: Sequence[_CourseData],
    grid: Grid,
    organ_voxels: NDArray[np.bool_] | None,
    progress: Progress | None = None,
) -> None:
    """Each phase's physical dose on the reference grid, and where each course's grid covers it.

    ``organ_voxels``: with ``analysis.resampling: max_footprint_oar``, the voxels where a
    deformably mapped course takes the maximum over each voxel's footprint (conservative).
    """
    total = sum(len(d.phases) for d in data)
    step = 0
    for item in data:
        coverage = None
        item.resampled = []
        for phase in item.phases:
            _report(progress, "resampling", step, total)
            step += 1
            dose = phase.dose
            if item.transform.kind == "identity" and dose.grid == grid:
                values, cover = np.asarray(dose.values, dtype=np.float32), None
            elif item.transform.kind != "deformable":
                values, cover = _resample_rigid(dose.values, dose.grid, grid, item.transform)
            else:
                mapped = resample_dose(dose, grid, item.transform)
                values, cover = mapped.dose.values.astype(np.float32), mapped.coverage
                if organ_voxels is not None:
                    wide = resample_dose(dose, grid, item.transform, "max_footprint")
                    values = np.where(organ_voxels, wide.dose.values.astype(np.float32), values)
            item.resampled.append(values)
            if cover is not None:
                coverage = cover if coverage is None else coverage & cover
        item.coverage = coverage
    _report(progress, "resampling", total, total)


def _organ_voxels(model_regions: Sequence[_StructureData], shape) -> NDArray[np.bool_]:
    mask = np.zeros(shape, dtype=bool)
    for s in model_regions:
        if s.role == "organ_at_risk":
            mask[s.box] |= s.occupancy > 0.0
    return mask


# --------------------------------------------------------------------------------------
# 7. Per structure: coverage, DVHs of the cumulative map, contributions, constraints
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """What every structure's evaluation reads (shared, read-only)."""

    case: Case
    grid: Grid
    data: Sequence[_CourseData]
    courses: tuple[CoursePhysical, ...]
    tissue: TissueModel
    total: NDArray[np.float32]
    total_no_recovery: NDArray[np.float32]
    constraints: Sequence[tuple[Constraint, str]]
    scenarios: Sequence[Scenario]
    min_interval: int | None


def course_coverage(s: _StructureData, data: Sequence[_CourseData], reference_covered: float):
    """Per course id, the fraction of the structure its dose grid covers.

    The reference grid's own coverage (from the DVH engine) times the occupancy-weighted
    share of the structure's voxels inside the course's mapped grid.
    """
    weights = s.occupancy.astype(np.float64)
    total = float(weights.sum())
    out = {}
    for item in data:
        share = 1.0
        if item.coverage is not None and total > 0:
            share = float((weights * item.coverage[s.box]).sum()) / total
        out[item.course.id] = reference_covered * share
    return out


def coverage_flags(s: _StructureData, coverage: Mapping[str, float], data) -> tuple[str, ...]:
    """One coverage rule for every command: refuse for a target or a course covering none of
    a structure; flag (at verdict level) a partly covered organ or external contour."""
    flags = []
    for item in data:
        covered = coverage[item.course.id]
        if covered >= FULL_COVERAGE:
            continue
        allowed = item.course.dicom.allow_partial_coverage
        where = f"courses[{item.course.id}].dicom"
        text = (
            f"the dose grid of course {item.course.id} covers {100 * covered:.1f} % of "
            f"{s.spec.name} (ROI {s.roi!r})"
        )
        if covered <= 0.0 and s.role != "external" and not allowed:
            raise InputError(
                text + ": a course whose dose grid misses the structure would count 0 Gy there; "
                "check the registration and the dose grid, or set allow_partial_coverage: true",
                field=where,
            )
        if s.role == "target" and not allowed:
            raise InputError(
                text + "; a target must be covered by every course's dose grid: extend the "
                "grid, or set allow_partial_coverage: true to evaluate the covered part",
                field=where,
            )
        flags.append(
            f"PARTIAL COVERAGE: {text}; metrics refer to the covered part, course "
            f"{item.course.id} contributes 0 Gy outside its grid"
        )
    return tuple(flags)


class _Variants:
    """DVHs of one structure, each variant computed once, on the structure's box.

    Every variant (cumulative EQD2 with and without recovery, a limit's own alpha/beta, a
    recovery scale, an alpha/beta shift, one course, physical dose) comes from the same
    engine (:func:`reirrad.core.accumulate.effective_sum`) with the structure's tissue maps
    (:func:`reirrad.core.tissue.structure_tissue`): the exported map's tissue in the voxels
    the structure owns, its own up to its contour.
    """

    def __init__(self, run: _Run, s: _StructureData) -> None:
        self.run, self.s = run, s
        self.courses = tuple(c.box(s.box) for c in run.courses)
        self.alpha_beta, self.recovered = structure_tissue(run.tissue, s.region, s.occupancy)
        self.any_recovery = any(bool(np.any(f > 0)) for f in self.recovered.values())
        # normal tissue for the alpha/beta sensitivity: voxels whose tissue is not a target's
        # (in the structure's own maps: all of an organ, none of a target's own voxels)
        if s.role == "target":
            # a target's DVH never shifts: inside it its own tissue, and the voxels around it
            # take the tissue of the nearest voxel inside (structure_tissue)
            self.normal = np.zeros(s.occupancy.shape, dtype=bool)
        else:
            self.normal = ~((run.tissue.target[s.box] == 1) & s.region.member)
        self.cache: dict[tuple, DVH] = {}

    def _dvh(self, values: NDArray, quantity: str) -> DVH:
        return compute_dvh(
            _box_dose(self.s.grid, values, quantity, self.s.roi),
            self.s.structure,
            **_dvh_options(self.s.role),
        )

    def values(
        self,
        quantity: str = "EQD2",
        alpha_beta: float | None = None,
        recovery_scale: float = 1.0,
        ab_shift: float = 0.0,
        only: str | None = None,
    ) -> NDArray:
        a = self.alpha_beta if alpha_beta is None else np.float32(alpha_beta)
        if ab_shift:
            # the alpha/beta uncertainty of normal tissue: every voxel whose tissue is not a
            # target's (targets keep theirs)
            normal = self.normal
            a = np.where(normal, a + np.float32(ab_shift), a)
            if np.any(a <= 0):
                raise InputError(
                    f"alpha/beta shift {ab_shift:+g} Gy gives alpha/beta <= 0 Gy; use a smaller "
                    "analysis.sensitivity.alpha_beta_shift_gy",
                    field="analysis.sensitivity.alpha_beta_shift_gy",
                )
        return effective_sum(
            self.courses, a, self.recovered, quantity=quantity,
            recovery_scale=recovery_scale, only=only,
        )  # fmt: skip

    def dvh(
        self,
        quantity: str = "EQD2",
        alpha_beta: float | None = None,
        recovery_scale: float = 1.0,
        ab_shift: float = 0.0,
        only: str | None = None,
    ) -> DVH:
        quantity = quantity if quantity == "physical" else quantity.upper()
        if quantity == "physical":
            alpha_beta, recovery_scale, ab_shift = None, 0.0, 0.0
        if not self.any_recovery or only == self.run.courses[-1].course:
            recovery_scale = 0.0  # nothing to recover: the same map
        key = (quantity, alpha_beta, float(recovery_scale), float(ab_shift), only)
        if key not in self.cache:
            values = self.values(quantity, alpha_beta, recovery_scale, ab_shift, only)
            self.cache[key] = self._dvh(values, quantity)
        return self.cache[key]


def structure_dvh(
    voxel: VoxelAssessment,
    name: str,
    quantity: str = "EQD2",
    *,
    course: str | None = None,
    recovery: bool = True,
    alpha_beta: float | None = None,
) -> DVH:
    """A DVH of one structure from a run kept with ``keep_maps=True``: the same engine and
    tissue maps as the run's own tables (e.g. one course's EQD2 or physical dose for the
    report, or the cumulative EQD2 at a fixed alpha/beta for NTCP).

    Parameters
    ----------
    voxel
        A result of :func:`accumulate_case` with maps.
    name
        Case structure name.
    quantity
        ``"EQD2"``, ``"BED"`` or ``"physical"``.
    course
        One course's contribution only (``None``: the cumulative dose).
    recovery
        Credit recovery (earlier courses count ``(1 - f)``).
    alpha_beta
        A fixed alpha/beta instead of the tissue maps.
    """
    maps = voxel.maps
    if maps is None:
        raise InputError("the run kept no maps; call accumulate_case(..., keep_maps=True)")
    if name not in maps.regions:
        raise InputError(f"structure {name!r} was not evaluated voxel-wise", field="structures")
    region = maps.regions[name]
    structure, grid = maps.contours[name]
    _, occupancy = maps.occupancy[name]
    ab, recovered = structure_tissue(maps.tissue, region, occupancy)
    values = effective_sum(
        tuple(c.box(region.box) for c in maps.courses),
        ab if alpha_beta is None else np.float32(alpha_beta),
        recovered if recovery else None,
        quantity=quantity if quantity == "physical" else quantity.upper(),
        only=course,
    )
    return compute_dvh(
        _box_dose(grid, values, quantity, name), structure, **_dvh_options(region.role)
    )


def _dvh_options(role: str) -> dict:
    """DVH engine options by role: a target's DVH always samples inside its voxels.

    The engine's voxel method (voxel-centre dose with a uniform intra-voxel spread, for
    structures of more than 20 000 voxels) read the median of a real 50 Gy breast target 5 %
    low against an independent fine sampling (``benchmarks/real_plan_check.py``), where the
    sub-voxel method agrees within 0.5 %; target coverage metrics (D95, D50) decide verdicts,
    so targets use the sub-voxel method within the engine's sample budget. Large normal-tissue
    structures (BODY) keep the fast voxel method.
    """
    if role == "target":
        return {"voxel_method_above": np.iinfo(np.int64).max}
    return {}


def _box_dose(grid: Grid, values: NDArray, quantity: str, name: str) -> Dose:
    provenance = {"structure box": name}
    if quantity == "physical":
        return Dose.physical(grid, values, provenance=provenance)
    return Dose.effective(grid, values, quantity.upper(), provenance=provenance)


def _contributions(v: _Variants) -> tuple[CourseContribution, ...]:
    """Each course's EQD2 over the structure: occupancy-weighted mean and maximum."""
    w = v.s.occupancy.astype(np.float64)
    wsum = float(w.sum())
    inside = w > 0
    out = []
    for course in v.courses:
        nr = v.values(recovery_scale=0.0, only=course.course).astype(np.float64)
        f = v.recovered.get(course.course)
        with_rec = nr * (1.0 - f) if f is not None else nr
        out.append(
            CourseContribution(
                course=course.course,
                mean_gy=float((with_rec * w).sum() / wsum) if wsum else float("nan"),
                max_gy=float(with_rec[inside].max()) if inside.any() else float("nan"),
                mean_no_recovery_gy=float((nr * w).sum() / wsum) if wsum else float("nan"),
                max_no_recovery_gy=float(nr[inside].max()) if inside.any() else float("nan"),
            )
        )
    return tuple(out)


def _applicable(run: _Run, s: _StructureData) -> list[Constraint]:
    return [
        c
        for c, target in run.constraints
        if target == f"structure:{s.spec.name}"
        or (s.spec.organ is not None and target == f"organ:{s.spec.organ}")
    ]


def evaluate_structure(
    run: _Run, s: _StructureData
) -> tuple[VoxelStructure, list[VoxelConstraint], list[str]]:
    """Everything about one structure, on its box; independent of the other structures."""
    v = _Variants(run, s)
    dvh, dvh_nr = v.dvh(), v.dvh(recovery_scale=0.0)
    coverage = course_coverage(s, run.data, dvh.covered_fraction)
    flags = coverage_flags(s, coverage, run.data)
    course_dvhs = {c.course: v.dvh("physical", only=c.course) for c in run.courses}
    applicable = _applicable(run, s)
    names = list(DEFAULT_STATISTICS)
    for course in run.case.courses:
        for name in course.dicom.statistics:
            if parse_metric(name).name not in names:
                names.append(parse_metric(name).name)
    for c in applicable:
        name = parse_metric(c.metric).name
        if parse_metric(name).is_dose and name not in names:
            names.append(name)
    metrics = []
    for name in names:
        per_course = {course: float(d.metric(name)) for course, d in course_dvhs.items()}
        metrics.append(
            StructureMetric(
                metric=name,
                eqd2_gy=float(dvh.metric(name)),
                eqd2_no_recovery_gy=float(dvh_nr.metric(name)),
                physical_per_course_gy=per_course,
                structure_level=_structure_level(run.case, s, run.data, per_course),
            )
        )
    result = VoxelStructure(
        name=s.spec.name,
        roi=s.roi,
        role=s.role,
        organ=s.spec.organ,
        alpha_beta=s.alpha_beta,
        recovery=s.model.describe(),
        volume_cc=dvh.volume_cc,
        covered_fraction=min(coverage.values()),
        metrics=tuple(metrics),
        contributions=_contributions(v),
        dvh=dvh,
        dvh_no_recovery=dvh_nr,
        course_coverage=coverage,
        flags=flags,
        course_physical=course_dvhs,
        display_color=s.structure.color,
    )
    evaluated = []
    for constraint in applicable:
        evaluated.extend(_evaluate_constraint(constraint, s, run, v, course_dvhs, flags))
    return result, evaluated, list(flags)


def evaluate_structures(
    run: _Run,
    structures: Sequence[_StructureData],
    workers: int,
    progress: Progress | None = None,
) -> list[tuple[VoxelStructure, list[VoxelConstraint], list[str]]]:
    """Every structure, in declaration order; on ``workers`` threads when > 1 (numpy releases
    the GIL in the heavy parts). A cohort runner running cases in parallel processes passes
    ``workers=1``: no nested threads."""
    out = []
    if workers > 1 and len(structures) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for index, item in enumerate(
                pool.map(lambda s: evaluate_structure(run, s), structures)
            ):
                _report(progress, "structures", index, len(structures))
                out.append(item)
    else:
        for index, s in enumerate(structures):
            _report(progress, "structures", index, len(structures))
            out.append(evaluate_structure(run, s))
    _report(progress, "structures", len(structures), len(structures))
    return out


def _structure_level(
    case: Case, s: _StructureData, data: Sequence[_CourseData], per_course: Mapping[str, float]
) -> dict[str, float | None]:
    """Cumulative EQD2 (after recovery) of the three structure-level methods.

    The ``prescription`` method uses the case's primary prescription of each course; a course
    without one in the case but with a single-phase RTPLAN stating an unambiguous target
    prescription uses that plan's dose per fraction. ``None`` where neither exists.
    """
    out: dict[str, float | None] = {}
    for method in ("structure", "prescription", "none"):
        total = 0.0
        try:
            for item in data:
                course = item.course
                if method == "prescription" and not course.prescriptions:
                    phase = item.phases[0]
                    if len(item.phases) != 1 or phase.prescribed_dose_gy is None:
                        raise InputError("no prescription")
                    course = course.model_copy(
                        update={
                            "prescriptions": [
                                Prescription(
                                    target="RTPLAN",
                                    dose_gy=phase.prescribed_dose_gy,
                                    fractions=phase.fractions,
                                    primary=True,
                                )
                            ]
                        }
                    )
                eqd2, _bed_value, _dpf = convert_statistic(
                    per_course[item.course.id], course, method, s.alpha_beta
                )
                if item.recovery_interval is not None:
                    eqd2 *= 1.0 - float(s.model.recovered_fraction(item.recovery_interval))
                total += eqd2
        except InputError:
            out[method] = None
            continue
        out[method] = total
    return out


def _evaluate_constraint(
    constraint: Constraint,
    s: _StructureData,
    run: _Run,
    v: _Variants,
    course_dvhs: Mapping[str, DVH],
    flags: tuple[str, ...],
) -> list[VoxelConstraint]:
    """One constraint on the structure's voxel-wise DVH(s), with its sensitivity.

    A limit stated at its own alpha/beta (e.g. a BED at 2 Gy) is evaluated over the whole
    structure at that alpha/beta. Sensitivity: every alpha/beta shift is evaluated; of the
    recovery scales only the smallest and largest, because each voxel's effective dose
    ``(1 - s f) EQD2`` does not increase with the scale ``s``, so every DVH metric is monotone
    in it and the metric at an intermediate scale lies between the two.
    """
    metric = constraint.metric
    parsed = parse_metric(metric)
    quantity = constraint.quantity
    ab = constraint.alpha_beta_gy
    at = f"alpha/beta {ab:g} Gy" if ab is not None else "tissue alpha/beta map"
    interval = run.min_interval
    if constraint.scope == "course":
        out = []
        for item in run.data:
            course = item.course.id
            if (
                quantity != "physical"
                and ab is not None
                and len(item.phases) == 1
                and parsed.kind != "mean"
            ):
                # a dose-at-volume metric commutes with a monotone per-voxel transform of one
                # scalar alpha/beta and one fraction number: the exact voxel-wise value
                physical = float(course_dvhs[course].metric(metric))
                value = float(
                    lq_effective(physical, item.phases[0].fractions, ab, quantity.upper())
                )
            else:
                value = v.dvh(quantity, ab, 0.0, 0.0, course).metric(metric)
            out.append(
                VoxelConstraint(
                    structure=s.spec.name,
                    result=evaluate(constraint, value, interval_days=interval),
                    quantity_text=f"voxel-wise {quantity} of course {course} ({at})",
                    course=course,
                    flags=flags,
                )
            )
        return out
    credit = constraint.recovery_credit and quantity != "physical"
    scale = 1.0 if credit else 0.0
    value = v.dvh(quantity, ab, scale).metric(metric)
    if quantity == "physical":
        text = "voxel-wise cumulative physical dose (no recovery)"
    else:
        text = (
            f"voxel-wise cumulative {quantity.upper()} ({at}, "
            f"{'after' if credit else 'without'} recovery)"
        )
    sensitivity = None
    if quantity != "physical":
        scales = [sc.recovery_scale for sc in run.scenarios]
        extremes = {min(scales), max(scales)}
        values = []
        for scenario in run.scenarios:
            if scenario.recovery_scale not in extremes:
                continue
            # a limit stated at its own alpha/beta keeps it; without recovery credit the sum
            # without recovery is compared in every scenario
            shift = 0.0 if ab is not None else scenario.alpha_beta_shift
            number = v.dvh(quantity, ab, scenario.recovery_scale * scale, shift).metric(metric)
            values.append((scenario, number))
        sensitivity = classify_scenarios(constraint, values, interval_days=interval)
    return [
        VoxelConstraint(
            structure=s.spec.name,
            result=evaluate(constraint, value, interval_days=interval),
            quantity_text=text,
            sensitivity=sensitivity,
            flags=flags,
        )
    ]


# --------------------------------------------------------------------------------------
# 8. Re-irradiation type, course assumptions, the pipeline
# --------------------------------------------------------------------------------------


def _course_mappings(
    data: Sequence[_CourseData], ref: _CourseData, newest: Course, notes: _Notes
) -> tuple[CourseMapping, ...]:
    out = []
    for item in data:
        course = item.course
        cover = 1.0 if item.coverage is None else float(item.coverage.mean())
        if cover < 0.9995:
            notes.assumptions.append(
                f"course {course.id}: its dose grid covers {100 * cover:.1f} % of the reference "
                "grid and contributes 0 Gy elsewhere; each structure's covered fraction is "
                "stated and a partly covered structure is flagged with its verdicts"
            )
        transform = item.transform
        if item is ref:
            text = "reference course (its dose grid and structures are the reference)"
        elif transform.kind == "identity":
            text = "identity (same frame of reference, checked)"
        else:
            text = f"{transform.label}: {transform.description}"
        notes.assumptions.append(f"course {course.id}: mapped by {text}")
        phases = tuple((p.label, p.fractions, p.fractions_source) for p in item.phases)
        notes.assumptions.append(
            f"course {course.id}: "
            + "; ".join(
                f"phase {label}: {n} fractions (from the {src})" for label, n, src in phases
            )
            + ", each phase converted with its own voxel dose per fraction"
        )
        if item.recovery_interval is not None:
            notes.assumptions.append(
                f"course {course.id}: recovery over {item.recovery_interval} days (end of course "
                f"{course.end} to start of the newest course {newest.start}), per tissue"
            )
        out.append(
            CourseMapping(
                course=course.id,
                label=course.label,
                phases=phases,
                mapping=transform.label,
                uncertain=transform.uncertain,
                mapping_description=text,
                recovery_interval_days=item.recovery_interval,
                coverage_fraction=cover,
                frame_of_reference_uid=item.frame_uid,
            )
        )
    return tuple(out)


def _reirradiation(
    case: Case, data: Sequence[_CourseData], grid: Grid, concern: bool | None, notes: _Notes
) -> ReirradiationType | None:
    threshold = case.analysis.reirradiation_type_threshold_gy
    if threshold is None:
        notes.warnings.append(
            "re-irradiation type (ESTRO-EORTC) not assessed: the case states no isodose that "
            "defines each course's irradiated volume (the consensus gives no number); to classify, "
            "state it in the case file (analysis.reirradiation_type_threshold_gy)"
        )
        return None
    if len(data) < 2:
        return None

    def physical(item: _CourseData) -> Dose:
        values = item.resampled[0] if len(item.resampled) == 1 else np.sum(item.resampled, axis=0)
        return Dose.physical(grid, values)

    result = reirradiation_type(
        [physical(d) for d in data[:-1]], physical(data[-1]), threshold,
        cumulative_dose_concern=concern,
    )  # fmt: skip
    notes.assumptions.append(
        f"re-irradiation type (ESTRO-EORTC, Andratschke 2022): irradiated volume = inside the "
        f"{threshold:g} Gy physical isodose of each course on the reference grid; cumulative "
        "organ dose 'of concern' = an organ-at-risk constraint failing in some scenario"
        + (" (no organ-at-risk constraint evaluated: not assessed)" if concern is None else "")
    )
    return result


def _concern(results) -> bool | None:
    concern = None
    for structure, constraints, _ in results:
        if structure.role != "organ_at_risk":
            continue
        for item in constraints:
            if item.course is not None:
                continue
            bad = item.result.status == "fail" or (
                item.sensitivity is not None and item.sensitivity.status != "pass in all"
            )
            concern = bool(concern) or bad
    return concern


def accumulate_case(
    case_or_path: Case | str | Path,
    *,
    reference: str | None = None,
    progress: Progress | None = None,
    constraint_sets: Sequence[str] | None = None,
    base: Path | None = None,
    keep_maps: bool = False,
    workers: int = 2,
) -> VoxelAssessment:
    """Voxel-wise cumulative EQD2 of a case whose courses all point at DICOM files.

    Parameters
    ----------
    case_or_path
        A YAML case file (paths in it relative to the file) or a validated :class:`Case`
        (paths relative to ``base``, default the working directory).
    reference
        Id of the reference course (its dose grid and structures are the reference);
        default ``analysis.reference_course``, else the newest course.
    progress
        Called as ``progress(stage, done, total)`` during long steps.
    constraint_sets
        Extra constraint sets (packaged names or YAML paths) on top of the case's own.
    keep_maps
        Keep the courses' physical doses on the reference grid, the tissue model and the
        structure occupancies (:class:`VoxelMaps`) for the explorer, NTCP and the report.
    workers
        Threads for the per-structure evaluation (1: none, e.g. inside a process pool).

    Raises
    ------
    InputError
        A course without DICOM, a missing file, a frame-of-reference mismatch with identity
        mapping, a FRACTION/BEAM dose without stated fractions, an RTPLAN disagreeing with
        the case, a target not covered by every course's dose grid...
    """
    if int(workers) < 1:
        raise InputError("workers must be >= 1", field="workers")
    timer = _Timer()
    case, base = _load(case_or_path, base)
    reference_id = _reference_id(case, reference)
    notes = _Notes()
    data = read_courses(case, base, notes, progress)
    ref = data[[c.id for c in case.courses].index(reference_id)]
    structure_set, structure_path = read_structure_sets(data, ref, base)
    notes.warnings.extend(f"{structure_path.name}: {w}" for w in structure_set.warnings)
    notes.assumptions.extend(extra_rtstruct_notes(ref.course, base))
    timer.lap("read")
    reference_ct = register_courses(data, ref, base, notes, progress)
    timer.lap("registration")
    structures = reference_structures(case, ref, structure_set, structure_path, notes)
    timer.lap("structures")
    grid = ref.phases[0].dose.grid
    max_footprint = case.analysis.resampling == "max_footprint_oar"
    organ_voxels = _organ_voxels(structures, grid.shape) if max_footprint else None
    resample_courses(data, grid, organ_voxels, progress)
    timer.lap("resampling")
    model = tissue_model(case, structures, data, tuple(grid.shape), notes)
    notes.warnings.extend(recovery_warnings(case))
    timer.lap("tissue model")
    run = _cumulative_run(case, grid, data, model, base, constraint_sets)
    timer.lap("conversion and sum")
    mappings = _course_mappings(data, ref, case.courses[-1], notes)
    _method_assumptions(notes, grid, reference_id, max_footprint)
    results = evaluate_structures(run, structures, int(workers), progress)
    timer.lap("structures: DVHs and constraints")
    reirr = _reirradiation(case, data, grid, _concern(results), notes)
    timer.lap("re-irradiation type")
    return VoxelAssessment(
        case=case,
        reference_course=reference_id,
        grid=grid,
        total=_total_dose(run, mappings, notes, recovery=True),
        total_no_recovery=_total_dose(run, mappings, notes, recovery=False),
        courses=mappings,
        structures=tuple(r for r, _, _ in results),
        constraints=tuple(c for _, cs, _ in results for c in cs),
        reirradiation=reirr,
        assumptions=tuple(notes.assumptions),
        warnings=tuple(notes.warnings + [w for _, _, local in results for w in local]),
        uncertain=any(m.uncertain for m in mappings),
        frame_of_reference_uid=ref.frame_uid,
        plan_uids=tuple(p.plan_uid for d in data for p in d.phases if p.plan_uid),
        dose_uids=tuple(uid for d in data for p in d.phases for uid in p.dose_uids),
        reference_ct=reference_ct,
        timings=timer.timings,
        maps=_maps(run, structures) if keep_maps else None,
        tissue_rule=model.description,
    )


class _Timer:
    """Seconds per stage (``VoxelAssessment.timings``)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._clock
        self._clock = now


def _cumulative_run(
    case: Case,
    grid: Grid,
    data: Sequence[_CourseData],
    model: TissueModel,
    base: Path | None,
    constraint_sets: Sequence[str] | None,
) -> _Run:
    """The cumulative maps (each course converted once) and what the structures need."""
    courses = tuple(
        CoursePhysical(
            d.course.id,
            tuple((float(p.fractions), v) for p, v in zip(d.phases, d.resampled, strict=True)),
        )
        for d in data
    )
    total, total_nr = cumulative_maps(courses, model.alpha_beta, model.recovered)
    sets = load_constraints(list(case.constraints.sets) + list(constraint_sets or []), base=base)
    gaps = [(b.start - a.end).days for a, b in zip(case.courses, case.courses[1:], strict=False)]
    sens = case.analysis.sensitivity
    shift = sens.alpha_beta_shift_gy
    return _Run(
        case=case, grid=grid, data=data, courses=courses, tissue=model, total=total,
        total_no_recovery=total_nr, constraints=case_constraints(case, sets),
        scenarios=scenarios((-shift, 0.0, shift) if shift > 0 else (0.0,), sens.recovery_scales),
        min_interval=min(gaps) if gaps else None,
    )  # fmt: skip


def _method_assumptions(notes: _Notes, grid: Grid, reference_id: str, max_footprint: bool) -> None:
    notes.assumptions.append(
        "resampling: trilinear"
        + ("; inside organs at risk the maximum over each reference voxel's footprint in the "
           "moving grid (conservative)" if max_footprint else "")
        + f"; reference grid: dose grid of course {reference_id} {tuple(grid.shape)} "
        f"({', '.join(f'{s:g}' for s in grid.spacing)} mm)"
    )  # fmt: skip
    notes.assumptions.append(
        "EQD2 per voxel: BED = D (1 + d/(a/b)), EQD2 = BED / (1 + 2/(a/b)), d = voxel dose per "
        "fraction (Fowler 1989; Bentzen 2012); earlier courses count (1 - f) x EQD2; the "
        "exported RTDOSE is this map, each voxel converted with its one tissue; a structure's "
        "DVH uses the same map's tissue in the voxels it owns and its own up to its contour"
    )


def _total_dose(run: _Run, mappings, notes: _Notes, *, recovery: bool) -> Dose:
    model = run.tissue
    provenance = {
        "courses": [c.id for c in run.case.courses],
        "assumptions": list(notes.assumptions),
        "uncertain": any(m.uncertain for m in mappings),
        "method": "voxel-wise EQD2 sum",
        "mapping": ", ".join(sorted({m.mapping for m in mappings})),
        "alpha_beta_values_gy": [
            float(v) for v in np.unique(np.round(model.alpha_beta[::4, ::4, ::4], 3))
        ],
        "alpha_beta_rule": model.description,
        "recovery": "applied" if recovery else "none",
    }
    values = run.total if recovery else run.total_no_recovery
    return Dose.effective(run.grid, values, "EQD2", provenance=provenance)


def _maps(run: _Run, structures: Sequence[_StructureData]) -> VoxelMaps:
    return VoxelMaps(
        courses=run.courses,
        tissue=run.tissue,
        occupancy={s.spec.name: (s.box, s.occupancy) for s in structures},
        recovery_interval_days={
            d.course.id: d.recovery_interval for d in run.data if d.recovery_interval is not None
        },
        regions={s.spec.name: s.region for s in structures},
        contours={s.spec.name: (s.structure, s.grid) for s in structures},
    )


# --------------------------------------------------------------------------------------
# Helpers: paths, CT, boxes, rigid resampling
# --------------------------------------------------------------------------------------


def _path(base: Path | None, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() or base is None else base / path


def _read_ct(
    course: Course, base: Path | None, dose_frame: str | None = None
) -> tuple[NDArray[np.float32], Grid, str, str | None]:
    """CT values (HU, ``[k, j, i]``), grid, first slice and frame of a course's ``dicom.ct``.

    The CT must be in the frame of reference of the course's dose (else the computed
    registration would map the wrong coordinates).
    """
    spec = course.dicom.ct
    field_name = f"courses[{course.id}].dicom.ct"
    if spec is None:
        raise InputError(
            "a computed registration needs the CT of both courses; give dicom.ct "
            "(directory or slice files)",
            field=field_name,
        )
    paths = _path(base, spec) if isinstance(spec, str) else [_path(base, p) for p in spec]
    try:
        values, grid, first, frame = read_ct_volume(paths)
    except InputError as error:
        raise error.located(field=field_name) from None
    if dose_frame and frame and frame != dose_frame:
        raise InputError(
            f"the CT is in frame of reference {frame}, the course's dose in {dose_frame}; give "
            "the CT the dose was planned on",
            field=field_name,
        )
    return values, grid, str(first), frame


def _subgrid(grid: Grid, lo: NDArray, shape: tuple[int, int, int]) -> Grid:
    """The grid of the box starting at index ``lo`` = (k, j, i)."""
    affine = np.array(grid.affine, dtype=float)
    affine[:3, 3] = affine[:3, :3] @ np.array([lo[2], lo[1], lo[0]], dtype=float) + affine[:3, 3]
    return Grid(shape, affine)


def _structure_box(structure, grid: Grid) -> tuple[tuple[slice, slice, slice], Grid] | None:
    """Padded index box (k, j, i slices) of the grid containing the structure, and its grid."""
    points = np.concatenate([np.asarray(c, dtype=float) for c in structure.contours])
    idx = grid.patient_to_index(points)  # (N, 3) as i, j, k
    # end caps reach half a contour spacing beyond the outer planes: pad by that
    zs = np.unique(np.round(idx[:, 2], 3))
    cap = 0.5 * float(np.median(np.diff(zs))) if len(zs) > 1 else 1.0
    lo = np.floor(idx.min(axis=0)) - _BOX_PAD
    hi = np.ceil(idx.max(axis=0)) + _BOX_PAD
    lo[2] -= np.ceil(cap)
    hi[2] += np.ceil(cap)
    shape_ijk = np.array(grid.shape)[::-1]
    if np.any(hi < 0) or np.any(lo > shape_ijk - 1):
        return None  # entirely outside the grid along some axis
    lo = np.clip(lo, 0, shape_ijk - 1).astype(int)
    hi = np.clip(hi, 0, shape_ijk - 1).astype(int)
    if np.any(hi < lo):
        return None
    box = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    shape = (hi[2] - lo[2] + 1, hi[1] - lo[1] + 1, hi[0] - lo[0] + 1)
    return box, _subgrid(grid, np.array([lo[2], lo[1], lo[0]]), shape)


def _resample_rigid(
    values: NDArray, moving: Grid, reference: Grid, transform: Transform, slab: int = 32
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Trilinear resampling under a rigid (or identity) mapping, as ``resample_dose`` does.

    Same rule as :func:`reirrad.core.registration.resample_dose` (trilinear at each reference
    voxel centre; within half a voxel beyond the moving grid's edge centres the edge value;
    farther out 0 and not covered), computed with ``scipy.ndimage.affine_transform`` in
    float32 from the index-to-index matrix, without per-voxel coordinate arrays. Tested
    against ``resample_dose``.
    """
    from scipy import ndimage

    # reference index (i, j, k) -> moving index (i, j, k)
    m = np.linalg.inv(moving.affine) @ np.linalg.inv(transform.matrix) @ reference.affine
    # the same map on [k, j, i] array axes
    perm = np.array([2, 1, 0])
    matrix = m[:3, :3][np.ix_(perm, perm)]
    offset = m[:3, 3][perm]
    source = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(reference.shape, dtype=np.float32)
    coverage = np.empty(reference.shape, dtype=bool)
    nk, nj, ni = reference.shape
    limit = np.asarray(moving.shape, dtype=float) - 0.5  # along k, j, i
    tol = 1e-6
    jj = np.arange(nj, dtype=float)[:, None]
    ii = np.arange(ni, dtype=float)[None, :]
    for k0 in range(0, nk, slab):
        k1 = min(nk, k0 + slab)
        part = ndimage.affine_transform(
            source,
            matrix,
            offset=offset + matrix[:, 0] * k0,
            output_shape=(k1 - k0, nj, ni),
            output=np.float32,
            order=1,
            mode="nearest",
        )
        inside = np.ones((k1 - k0, nj, ni), dtype=bool)
        ks = np.arange(k0, k1, dtype=float)[:, None, None]
        for axis in range(3):
            # float64: the edge test needs better than float32's 1e-5 at indices ~100
            plane = matrix[axis, 1] * jj + matrix[axis, 2] * ii + offset[axis]
            c = plane[None] + matrix[axis, 0] * ks
            inside &= (c >= -0.5 - tol) & (c <= limit[axis] + tol)
        part[~inside] = 0.0
        out[k0:k1] = part
        coverage[k0:k1] = inside
    return out, coverage


def _first_ct(course: Course, base: Path | None) -> str | None:
    spec = course.dicom.ct
    if isinstance(spec, list):
        return str(_path(base, spec[0])) if spec else None
    path = _path(base, spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return str(files[0]) if files else None
    return str(path)


# --------------------------------------------------------------------------------------
# Per-course DVHs of a run (for the report)
# --------------------------------------------------------------------------------------


def course_dvhs(
    voxel: VoxelAssessment, *, workers: int = 2
) -> dict[str, dict[str, tuple[DVH, DVH]]]:
    """Every course's DVHs on the reference grid: ``{course: {structure: (physical, EQD2)}}``.

    Each course's physical dose as mapped onto the reference grid, and its EQD2 with the
    run's tissue model (each voxel's alpha/beta, each phase at its own dose per fraction)
    without recovery: :func:`structure_dvh` with ``course=``, i.e. the same engine and maps
    as the cumulative DVHs, not a second reading of each course's DICOM.

    Parameters
    ----------
    voxel
        A result of :func:`accumulate_case` with maps (``keep_maps=True``).
    workers
        Threads, one structure at a time each (as :func:`evaluate_structures`).

    Returns
    -------
    dict
        Courses oldest first, structures in the run's order.
    """
    courses = [mapping.course for mapping in voxel.courses]

    def one(name: str) -> list[tuple[DVH, DVH]]:
        # the physical DVHs were computed by the run (structure-level comparison): reused
        physical = voxel.structure(name).course_physical
        return [
            (
                physical.get(course) or structure_dvh(voxel, name, "physical", course=course),
                structure_dvh(voxel, name, "EQD2", course=course, recovery=False),
            )
            for course in courses
        ]

    names = [s.name for s in voxel.structures]
    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pairs = list(pool.map(one, names))
    else:
        pairs = [one(name) for name in names]
    return {
        course: {name: pairs[n][c] for n, name in enumerate(names)}
        for c, course in enumerate(courses)
    }
