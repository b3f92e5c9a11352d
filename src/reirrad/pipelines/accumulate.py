"""Voxel-wise multi-course accumulation from a case file (the file-aware pipeline).

:func:`accumulate_case` reads every course's DICOM (RTDOSE phases, RTPLAN, RTSTRUCT, CT,
REG), maps every course onto the reference course's dose grid, converts each phase's
physical dose to EQD2 voxel by voxel with the reference structures' tissue maps, applies
each tissue's recovery to the earlier courses, adds, and evaluates cumulative DVHs and the
case's constraints on the sum, with per-course contributions, the structure-level methods as
a comparison, a sensitivity analysis over alpha/beta and recovery, and the ESTRO-EORTC
re-irradiation type. Every assumption is stated in :attr:`VoxelAssessment.assumptions`.

The pure pieces are in :mod:`reirrad.core.accumulate`, :mod:`reirrad.core.registration`,
:mod:`reirrad.core.sensitivity` and :mod:`reirrad.core.dvh`; the method is described in
``docs/accumulation.md`` and the case-file usage in ``docs/dicom.md``.

Formulas (per voxel, per phase of ``n`` fractions, physical dose ``D``, tissue ``a/b``):
``BED = D (1 + D / (n a/b))`` and ``EQD2 = BED / (1 + 2 / (a/b))`` (Fowler, Br J Radiol
1989;62:679-694; Bentzen et al., Radiother Oncol 2012;105:266-268). An earlier course with
recovered fraction ``f`` counts ``(1 - f) x EQD2`` (residual-dose convention of
:mod:`reirrad.core.recovery`); the newest course counts in full.

Speed and memory (large grids): maps on the reference grid are float32; structure
occupancies, DVHs and all per-structure quantities are computed on each structure's padded
bounding box (a sub-grid), never as full-grid passes per structure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from reirrad.core.accumulate import ReirradiationType, reirradiation_type
from reirrad.core.assessment import case_constraints, convert_statistic
from reirrad.core.case import Case, Course, StructureSpec
from reirrad.core.constraints import Constraint, ConstraintResult, evaluate
from reirrad.core.dvh import DVH, compute_dvh, structure_occupancy
from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.metrics import parse_metric
from reirrad.core.registration import Transform, register_deformable, register_rigid, resample_dose
from reirrad.core.sensitivity import Scenario, SensitivityOutcome, classify_scenarios, scenarios
from reirrad.errors import InputError

__all__ = [
    "CourseContribution",
    "CourseMapping",
    "StructureMetric",
    "VoxelAssessment",
    "VoxelConstraint",
    "VoxelStructure",
    "accumulate_case",
]

#: Progress callback: ``progress(stage, done, total)``.
Progress = Callable[[str, int, int], None]

#: Statistics always reported per structure (besides the constraints' metrics).
DEFAULT_STATISTICS = ("Dmean", "Dmax", "D2%", "D50%", "D95%", "D98%", "D0.035cc")

#: Threads for the per-structure DVHs (structures are independent).
_WORKERS = 2

_BOX_PAD = 2  # voxels around a structure's box: trilinear dose inside it is unchanged


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


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

    def metric(self, name: str) -> StructureMetric:
        key = parse_metric(name).name
        for item in self.metrics:
            if item.metric == key:
                return item
        raise KeyError(name)


@dataclass(frozen=True)
class VoxelMaps:
    """Per-voxel inputs kept on request (``accumulate_case(..., keep_maps=True)``).

    Attributes
    ----------
    phases
        Per course id, each phase's ``(fractions, physical dose in Gy)`` on the reference grid.
    occupancy
        Per case structure, ``(box, fraction of each voxel inside)``: ``box`` are the slices
        of the reference grid that the occupancy array covers.
    recovery_interval_days
        Per earlier course id, days from its end to the start of the newest course.
    """

    phases: Mapping[str, tuple[tuple[float, NDArray[np.float32]], ...]] = field(repr=False)
    occupancy: Mapping[str, tuple[tuple[slice, slice, slice], NDArray[np.float32]]] = field(
        repr=False
    )
    recovery_interval_days: Mapping[str, int]


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
    reference_ct: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict, repr=False)
    maps: VoxelMaps | None = field(default=None, repr=False)

    def structure(self, name: str) -> VoxelStructure:
        for item in self.structures:
            if item.name == name:
                return item
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# Reading
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
    import pydicom

    from reirrad.io.dicom import read_ct_series

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
        series = read_ct_series(paths)
    except InputError as error:
        raise error.located(field=field_name) from None
    slices = []
    for source in series.sources:
        ds = pydicom.dcmread(source)
        values = ds.pixel_array.astype(np.float32)
        values = values * float(ds.get("RescaleSlope", 1.0)) + float(
            ds.get("RescaleIntercept", 0.0)
        )
        slices.append(values)
    frame = series.frame_of_reference_uid
    if dose_frame and frame and frame != dose_frame:
        raise InputError(
            f"the CT is in frame of reference {frame}, the course's dose in {dose_frame}; give "
            "the CT the dose was planned on",
            field=field_name,
        )
    return np.stack(slices), series.grid, str(series.sources[0]), frame


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
    lo = np.clip(lo, 0, shape_ijk - 1).astype(int)
    hi = np.clip(hi, 0, shape_ijk - 1).astype(int)
    if np.any(hi < lo):
        return None
    box = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    shape = (hi[2] - lo[2] + 1, hi[1] - lo[1] + 1, hi[0] - lo[0] + 1)
    return box, _subgrid(grid, np.array([lo[2], lo[1], lo[0]]), shape)


# --------------------------------------------------------------------------------------
# Conversion (vectorised, float32 maps)
# --------------------------------------------------------------------------------------


def _eqd2(physical: NDArray, fractions: float, alpha_beta: NDArray | float) -> NDArray:
    """EQD2 = D (D/n + a/b) / (2 + a/b) (Fowler 1989; Bentzen 2012), element-wise."""
    return physical * (physical / fractions + alpha_beta) / (2.0 + alpha_beta)


def _bed(physical: NDArray, fractions: float, alpha_beta: NDArray | float) -> NDArray:
    """BED = D (1 + D / (n a/b)) (Fowler 1989), element-wise."""
    return physical * (1.0 + physical / (fractions * alpha_beta))


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


@dataclass
class _CourseData:
    course: Course
    phases: list  # PhaseDose
    transform: Transform
    resampled: list[NDArray[np.float32]]  # physical dose per phase on the reference grid
    resampled_oar: list[NDArray[np.float32]] | None
    coverage: NDArray[np.bool_] | None
    recovery_interval: int | None
    frame_uid: str | None


@dataclass
class _StructureData:
    spec: StructureSpec
    roi: str
    structure: object
    box: tuple[slice, slice, slice]
    grid: Grid
    occupancy: NDArray[np.float32]
    alpha_beta: float
    model: object
    rank: int = 0


def _structure_tissue(
    s: _StructureData,
    structures: Sequence[_StructureData],
    rule: str | Sequence[str],
    intervals: Mapping[int, int],
) -> tuple[NDArray[np.float64], dict[int, NDArray[np.float64]]]:
    """alpha/beta and recovered-fraction maps for the DVH of one structure, on its box.

    Inside the structure each voxel has the structure's own tissue, merged by the overlap rule
    with every other structure that *geometrically* overlaps it in that voxel: occupancies
    adding up to more than 1 prove an overlap, whereas two structures that merely share a
    boundary voxel may be disjoint inside it (the global maps, which count any touch, would
    then give an organ at risk its neighbouring target's tissue and inflate its maximum).
    Voxels of the box outside the structure only serve to interpolate the dose at its
    boundary: they take the tissue of the nearest voxel inside it, so that a homogeneous dose
    gives exactly the structure's own EQD2 and an enclosing structure's tissue carries on
    across the boundary.
    """
    from scipy import ndimage

    occupancy = s.occupancy
    ab = np.full(occupancy.shape, s.alpha_beta, dtype=float)
    fractions = {
        i: np.full(occupancy.shape, float(s.model.recovered_fraction(days)), dtype=float)
        for i, days in intervals.items()
    }
    priority = rule != "most_conservative"
    for other in structures:
        if other is s or (priority and other.rank > s.rank):
            continue
        lo = [max(a.start, b.start) for a, b in zip(s.box, other.box, strict=True)]
        hi = [min(a.stop, b.stop) for a, b in zip(s.box, other.box, strict=True)]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            continue
        mine = tuple(
            slice(low - a.start, h - a.start) for low, h, a in zip(lo, hi, s.box, strict=True)
        )
        theirs = tuple(
            slice(low - b.start, h - b.start) for low, h, b in zip(lo, hi, other.box, strict=True)
        )
        overlap = occupancy[mine] + other.occupancy[theirs] > 1.0 + 1e-6
        if not overlap.any():
            continue
        sub_ab = ab[mine]
        if priority:
            sub_ab[overlap] = other.alpha_beta
        else:
            sub_ab[overlap] = np.fmin(sub_ab[overlap], other.alpha_beta)
        for i, days in intervals.items():
            f = float(other.model.recovered_fraction(days))
            sub_f = fractions[i][mine]
            sub_f[overlap] = f if priority else np.fmin(sub_f[overlap], f)
    outside = occupancy <= 0.0
    if outside.any() and not outside.all():
        nearest = ndimage.distance_transform_edt(
            outside, return_distances=False, return_indices=True
        )
        index = tuple(nearest)
        ab = ab[index]
        fractions = {i: f[index] for i, f in fractions.items()}
    return ab, fractions


def _structure_value(dvh: DVH, metric: str) -> float:
    return float(dvh.metric(metric))


# --------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------


def accumulate_case(
    case_or_path: Case | str | Path,
    *,
    reference: str | None = None,
    progress: Progress | None = None,
    constraint_sets: Sequence[str] | None = None,
    base: Path | None = None,
    keep_maps: bool = False,
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
        Called as ``progress(stage, done, total)`` during long steps (registration,
        resampling, structures).
    constraint_sets
        Extra constraint sets (packaged names or YAML paths) on top of the case's own.
    keep_maps
        Keep the per-phase physical doses on the reference grid and the structure
        occupancies (:class:`VoxelMaps`), e.g. for the voxel-wise fractionation explorer.

    Raises
    ------
    InputError
        A course without DICOM, a missing file, a frame-of-reference mismatch with identity
        mapping, a FRACTION/BEAM dose without stated fractions, an RTPLAN disagreeing with
        the case, a structure outside the reference grid...
    """
    from reirrad.io.casefile import load_case
    from reirrad.io.constraint_sets import load_constraints
    from reirrad.io.dicom import read_rtstruct
    from reirrad.io.dicom_case import course_phases, roi_name
    from reirrad.io.registration_io import read_spatial_registration

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    if not isinstance(case_or_path, Case):
        base = Path(case_or_path).resolve().parent
        case = load_case(case_or_path)
    else:
        case = case_or_path
    without = [c.id for c in case.courses if c.dicom is None]
    if without:
        raise InputError(
            f"the voxel-wise accumulation needs DICOM for every course; course(s) {without} "
            "have no dicom section",
            field="courses",
        )
    analysis = case.analysis
    ids = [c.id for c in case.courses]
    reference_id = reference or analysis.reference_course or ids[-1]
    if reference_id not in ids:
        raise InputError(
            f"unknown reference course {reference_id!r}; courses: {ids}", field="--reference"
        )
    newest = case.courses[-1]
    assumptions: list[str] = []
    warnings: list[str] = []

    # ---- read every course's phases -------------------------------------------------
    data: list[_CourseData] = []
    for index, course in enumerate(case.courses):
        report("read", index, len(case.courses))
        phases = course_phases(course, base=base)
        for phase in phases:
            assumptions.extend(phase.notes)
        frames = {p.frame_of_reference_uid for p in phases}
        if len(frames) > 1:
            raise InputError(
                f"the phases of course {course.id} are in different frames of reference; "
                "give them as separate courses with their registrations",
                field=f"courses[{course.id}].dicom.phases",
            )
        interval = None if course is newest else (newest.start - course.end).days
        data.append(
            _CourseData(
                course, phases, Transform.identity(), [], None, None, interval, frames.pop()
            )
        )
    ref_data = data[ids.index(reference_id)]
    ref_grid = ref_data.phases[0].dose.grid
    ref_frame = ref_data.frame_uid
    structure_set_path = _path(base, ref_data.course.dicom.rtstruct)
    structure_set = read_rtstruct(structure_set_path)
    if (
        structure_set.frame_of_reference_uid
        and ref_frame
        and structure_set.frame_of_reference_uid != ref_frame
    ):
        raise InputError(
            f"the reference RTSTRUCT is in frame {structure_set.frame_of_reference_uid}, its "
            f"dose in {ref_frame}; they must share the frame of reference",
            source=str(structure_set_path),
        )
    lap("read")

    # ---- registration ----------------------------------------------------------------
    ref_ct = None
    for index, item in enumerate(data):
        course = item.course
        where = f"courses[{course.id}].dicom.registration"
        if item is ref_data:
            item.transform = Transform.identity(ref_frame)
            continue
        spec = course.dicom.registration
        method = spec.method if spec is not None else "identity"
        report("registration", index, len(data))
        if method == "identity":
            if item.frame_uid and ref_frame and item.frame_uid != ref_frame:
                raise InputError(
                    f"course {course.id} is in frame of reference {item.frame_uid}, the "
                    f"reference course {reference_id} in {ref_frame}: identity mapping is "
                    "wrong here; give registration: {method: reg, file: REG.dcm} or "
                    "{method: rigid} with the CTs",
                    field=where,
                )
            item.transform = Transform.identity(ref_frame)
        elif method == "reg":
            path = _path(base, spec.file)
            if not path.exists():
                raise InputError(
                    "registration file not found", source=str(path), field=f"{where}.file"
                )
            item.transform = read_spatial_registration(
                path, moving_frame_uid=item.frame_uid, reference_frame_uid=ref_frame
            )
        else:
            if ref_ct is None:
                ref_ct = _read_ct(ref_data.course, base, ref_frame)
            moving_ct = _read_ct(course, base, item.frame_uid)
            options = dict(
                fixed_frame_uid=ref_frame,
                moving_frame_uid=item.frame_uid,
            )
            if method == "rigid":
                item.transform = register_rigid(
                    ref_ct[0], ref_ct[1], moving_ct[0], moving_ct[1], **options
                )
            else:
                item.transform = register_deformable(
                    ref_ct[0],
                    ref_ct[1],
                    moving_ct[0],
                    moving_ct[1],
                    method=spec.deformable,
                    **options,
                )
                warnings.append(
                    f"course {course.id} mapped by deformable registration: UNCERTAIN (no ground "
                    "truth between courses; check the mapping)"
                )
    if ref_ct is not None:
        ref_ct_path = ref_ct[2]
    elif ref_data.course.dicom.ct is not None:
        ref_ct_path = _first_ct(ref_data.course, base)
    else:
        ref_ct_path = None
    lap("registration")

    # ---- structures on the reference grid (boxes) -------------------------------------
    structures: list[_StructureData] = []
    available = list(structure_set.structures)
    for spec in case.structures:
        try:
            roi = roi_name(ref_data.course, spec.name, available)
        except InputError as error:
            if spec.name in ref_data.course.dicom.structure_map:
                raise error.located(source=str(structure_set_path)) from None
            warnings.append(
                f"structure {spec.name!r} is not in the reference RTSTRUCT ({structure_set_path.name}); "
                "not evaluated voxel-wise and not in the tissue maps"
            )
            continue
        structure = structure_set.structures[roi]
        if structure.is_empty:
            raise InputError(f"ROI {roi!r} has no contours", source=str(structure_set_path))
        boxed = _structure_box(structure, ref_grid)
        if boxed is None:
            raise InputError(
                f"ROI {roi!r} lies outside the reference dose grid of course {reference_id}",
                source=str(structure_set_path),
            )
        box, grid = boxed
        occupancy = structure_occupancy(structure, grid)
        alpha_beta, model = case.tissue(spec)
        structures.append(
            _StructureData(spec, roi, structure, box, grid, occupancy, alpha_beta, model)
        )
    lap("structures")

    # ---- tissue maps --------------------------------------------------------------------
    default = analysis.default_tissue
    oar_default = case.tissue_defaults.get("organ_at_risk")
    default_ab = (default.alpha_beta if default else None) or (
        oar_default.alpha_beta if oar_default else None
    )
    default_recovery = (default.recovery if default and default.recovery is not None else None) or (
        oar_default.recovery if oar_default else None
    )
    if default_ab is None or default_recovery is None:
        raise InputError(
            "voxels outside every structure need a tissue: set analysis.default_tissue "
            "{alpha_beta: ..., recovery: ...} (or tissue_defaults.organ_at_risk)",
            field="analysis.default_tissue",
        )
    from reirrad.core.recovery import recovery_model_from_spec

    default_model = recovery_model_from_spec(default_recovery)
    earlier = [i for i, d in enumerate(data) if d.recovery_interval is not None]
    ab_map = np.full(ref_grid.shape, np.nan, dtype=np.float32)
    f_maps = {i: np.full(ref_grid.shape, np.nan, dtype=np.float32) for i in earlier}
    oar_mask = np.zeros(ref_grid.shape, dtype=bool)
    rule = analysis.overlap_rule
    if rule == "most_conservative":
        ordered = structures
        rule_text = "most conservative (lowest alpha/beta and, independently, least recovery of the structures covering a voxel)"
    else:
        rank = {name: n for n, name in enumerate(rule)}
        ordered = sorted(structures, key=lambda s: rank.get(s.spec.name, len(rank)))
        rule_text = "priority order " + " > ".join(s.spec.name for s in ordered)
    for rank, s in enumerate(ordered):
        s.rank = rank
        covered = s.occupancy > 0.0
        sub_ab = ab_map[s.box]
        if rule == "most_conservative":
            sub_ab[covered] = np.fmin(sub_ab[covered], s.alpha_beta)
        else:
            free = covered & np.isnan(sub_ab)
            sub_ab[free] = s.alpha_beta
        for i in earlier:
            f = float(s.model.recovered_fraction(data[i].recovery_interval))
            sub_f = f_maps[i][s.box]
            if rule == "most_conservative":
                sub_f[covered] = np.fmin(sub_f[covered], f)
            else:
                sub_f[free] = f
        if s.spec.role == "organ_at_risk":
            oar_mask[s.box] |= covered
    np.nan_to_num(ab_map, copy=False, nan=float(default_ab))
    for i in earlier:
        f_default = float(default_model.recovered_fraction(data[i].recovery_interval))
        np.nan_to_num(f_maps[i], copy=False, nan=f_default)
    assumptions.append(
        f"tissue maps on the reference grid: {rule_text}; a voxel belongs to a structure when any "
        f"part of it lies inside; voxels in no structure: alpha/beta {default_ab:g} Gy, recovery "
        f"{default_model.describe()}"
    )
    lap("tissue maps")

    # ---- resampling ------------------------------------------------------------------
    n_steps = sum(len(d.phases) for d in data)
    step = 0
    max_footprint = analysis.resampling == "max_footprint_oar"
    for item in data:
        coverage = None
        for phase in item.phases:
            report("resampling", step, n_steps)
            step += 1
            dose = phase.dose
            if item.transform.kind == "identity" and dose.grid == ref_grid:
                values = np.asarray(dose.values, dtype=np.float32)
                cover = None
            elif item.transform.kind != "deformable":
                values, cover = _resample_rigid(dose.values, dose.grid, ref_grid, item.transform)
            else:
                mapped = resample_dose(dose, ref_grid, item.transform)
                values = mapped.dose.values.astype(np.float32)
                cover = mapped.coverage
                if max_footprint:
                    conservative = resample_dose(dose, ref_grid, item.transform, "max_footprint")
                    values = np.where(oar_mask, conservative.dose.values.astype(np.float32), values)
            item.resampled.append(values)
            if cover is not None:
                coverage = cover if coverage is None else coverage & cover
        item.coverage = coverage
    report("resampling", n_steps, n_steps)
    lap("resampling")

    # ---- conversion and sum ------------------------------------------------------------
    total = np.zeros(ref_grid.shape, dtype=np.float32)
    total_nr = np.zeros(ref_grid.shape, dtype=np.float32)
    for index, item in enumerate(data):
        course_eqd2 = np.zeros(ref_grid.shape, dtype=np.float32)
        for phase, values in zip(item.phases, item.resampled, strict=True):
            course_eqd2 += _eqd2(values, np.float32(phase.fractions), ab_map)
        total_nr += course_eqd2
        if index in f_maps:
            course_eqd2 *= 1.0 - f_maps[index]
        total += course_eqd2
        del course_eqd2
    lap("conversion and sum")

    # ---- per-course assumptions ------------------------------------------------------
    mappings = []
    for item in data:
        course = item.course
        cover = 1.0 if item.coverage is None else float(item.coverage.mean())
        if item.coverage is not None and cover < 0.9995:
            assumptions.append(
                f"course {course.id}: its dose grid covers {100 * cover:.1f} % of the reference "
                "grid; it contributes 0 Gy elsewhere"
            )
        transform = item.transform
        if item is ref_data:
            text = "reference course (its dose grid and structures are the reference)"
        elif transform.kind == "identity":
            text = "identity (same frame of reference, checked)"
        else:
            text = f"{transform.label}: {transform.description}"
        assumptions.append(f"course {course.id}: mapped by {text}")
        phases = tuple((p.label, p.fractions, p.fractions_source) for p in item.phases)
        assumptions.append(
            f"course {course.id}: "
            + "; ".join(
                f"phase {label}: {n} fractions (from the {src})" for label, n, src in phases
            )
            + ", each phase converted with its own voxel dose per fraction"
        )
        if item.recovery_interval is not None:
            assumptions.append(
                f"course {course.id}: recovery over {item.recovery_interval} days (end of course "
                f"{course.end} to start of the newest course {newest.start}), per tissue"
            )
        mappings.append(
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
    assumptions.append(
        "resampling: trilinear"
        + (
            "; inside organs at risk the maximum over each reference voxel's footprint in the "
            "moving grid (conservative)"
            if max_footprint
            else ""
        )
        + f"; reference grid: dose grid of course {reference_id} {tuple(ref_grid.shape)} "
        f"({', '.join(f'{s:g}' for s in ref_grid.spacing)} mm)"
    )
    assumptions.append(
        "EQD2 per voxel: BED = D (1 + d/(a/b)), EQD2 = BED / (1 + 2/(a/b)), d = voxel dose per "
        "fraction (Fowler 1989; Bentzen 2012); earlier courses count (1 - f) x EQD2"
    )
    for s in structures:
        assumptions.append(
            f"{s.spec.name} ({s.spec.role}, ROI {s.roi!r}): alpha/beta {s.alpha_beta:g} Gy; "
            f"recovery {s.model.describe()}"
        )

    # ---- per structure: DVHs, contributions, structure-level methods, constraints -----
    sets = load_constraints(list(case.constraints.sets) + list(constraint_sets or []), base=base)
    constraints = case_constraints(case, sets)
    gaps = [(b.start - a.end).days for a, b in zip(case.courses, case.courses[1:], strict=False)]
    min_interval = min(gaps) if gaps else None
    sens = analysis.sensitivity
    shift = sens.alpha_beta_shift_gy
    shifts = (-shift, 0.0, shift) if shift > 0 else (0.0,)
    scenario_list = scenarios(shifts, sens.recovery_scales)
    results: list[VoxelStructure] = []
    evaluated: list[VoxelConstraint] = []
    concern: bool | None = None

    def one(s: _StructureData) -> tuple[VoxelStructure, list[VoxelConstraint], list[str]]:
        """Everything about one structure (on its box); independent of the others."""
        local_warnings: list[str] = []
        local_constraints: list[VoxelConstraint] = []
        box = s.box
        outside = s.occupancy <= 0.0
        ab, fbox = _structure_tissue(
            s, structures, rule, {i: data[i].recovery_interval for i in earlier}
        )
        phys = [[v[box].astype(float) for v in item.resampled] for item in data]
        any_recovery = any(bool(f.any()) for f in fbox.values())
        shift_here = np.where(outside, s.spec.role == "organ_at_risk", oar_mask[box])

        def effective(
            quantity: str = "eqd2",
            alpha_beta: float | None = None,
            recovery_scale: float = 1.0,
            ab_shift: float = 0.0,
            only: int | None = None,
            ab=ab,
            phys=phys,
            fbox=fbox,
            shift_here=shift_here,
        ) -> NDArray:
            a = np.full(ab.shape, alpha_beta) if alpha_beta is not None else ab
            if ab_shift:
                a = np.where(shift_here, a + ab_shift, a)
                if np.any(a <= 0):
                    raise InputError(
                        f"alpha/beta shift {ab_shift:+g} Gy gives alpha/beta <= 0 Gy; use a "
                        "smaller analysis.sensitivity.alpha_beta_shift_gy",
                        field="analysis.sensitivity.alpha_beta_shift_gy",
                    )
            out = np.zeros(ab.shape)
            for i, item in enumerate(data):
                if only is not None and i != only:
                    continue
                part = np.zeros(ab.shape)
                for phase, values in zip(item.phases, phys[i], strict=True):
                    if quantity == "physical":
                        part += values
                    elif quantity == "eqd2":
                        part += _eqd2(values, phase.fractions, a)
                    else:
                        part += _bed(values, phase.fractions, a)
                if i in fbox and recovery_scale and quantity != "physical":
                    part *= 1.0 - recovery_scale * fbox[i]
                out += part
            return out

        cache: dict[tuple, DVH] = {}

        def dvh_for(
            quantity: str = "eqd2",
            alpha_beta: float | None = None,
            recovery_scale: float = 1.0,
            ab_shift: float = 0.0,
            only: int | None = None,
            s=s,
            cache=cache,
            effective=effective,
        ) -> DVH:
            """DVH of one variant of the map on the structure's box (each computed once)."""
            if quantity == "physical":
                alpha_beta, recovery_scale, ab_shift = None, 0.0, 0.0
            if not any_recovery or only == len(data) - 1:
                recovery_scale = 0.0  # nothing to recover: same map
            key = (quantity, alpha_beta, float(recovery_scale), float(ab_shift), only)
            if key not in cache:
                values = effective(quantity, alpha_beta, recovery_scale, ab_shift, only)
                dose = Dose(
                    s.grid,
                    values,
                    DoseKind.PHYSICAL if quantity == "physical" else DoseKind.EFFECTIVE,
                    None,
                    quantity if quantity == "physical" else quantity.upper(),
                    {"structure box": s.roi},
                )
                cache[key] = compute_dvh(dose, s.structure)
            return cache[key]

        dvh = dvh_for()
        dvh_nr = dvh_for(recovery_scale=0.0)
        if dvh.covered_fraction < 0.999:
            local_warnings.append(
                f"{s.spec.name}: the reference dose grid covers {100 * dvh.covered_fraction:.1f} % "
                "of the structure; metrics refer to the covered part"
            )
        # per-course physical DVHs (mapped doses) for the structure-level methods
        course_dvhs = [dvh_for("physical", only=i) for i in range(len(data))]
        # contributions (occupancy-weighted mean and max over partly covered voxels)
        w = s.occupancy.astype(float)
        wsum = float(w.sum())
        inside = w > 0
        contributions = []
        for i, item in enumerate(data):
            nr = effective(only=i, recovery_scale=0.0)
            with_rec = nr * (1.0 - fbox[i]) if i in fbox else nr
            contributions.append(
                CourseContribution(
                    course=item.course.id,
                    mean_gy=float((with_rec * w).sum() / wsum) if wsum else float("nan"),
                    max_gy=float(with_rec[inside].max()) if inside.any() else float("nan"),
                    mean_no_recovery_gy=float((nr * w).sum() / wsum) if wsum else float("nan"),
                    max_no_recovery_gy=float(nr[inside].max()) if inside.any() else float("nan"),
                )
            )
        applicable = [
            c
            for c, target in constraints
            if target == f"structure:{s.spec.name}"
            or (s.spec.organ is not None and target == f"organ:{s.spec.organ}")
        ]
        names = list(DEFAULT_STATISTICS)
        for c in applicable:
            name = parse_metric(c.metric).name
            if parse_metric(name).is_dose and name not in names:
                names.append(name)
        metrics = []
        for name in names:
            per_course = {
                item.course.id: _structure_value(d, name)
                for item, d in zip(data, course_dvhs, strict=True)
            }
            metrics.append(
                StructureMetric(
                    metric=name,
                    eqd2_gy=_structure_value(dvh, name),
                    eqd2_no_recovery_gy=_structure_value(dvh_nr, name),
                    physical_per_course_gy=per_course,
                    structure_level=_structure_level(case, s, data, per_course),
                )
            )
        structure_result = VoxelStructure(
            name=s.spec.name,
            roi=s.roi,
            role=s.spec.role,
            organ=s.spec.organ,
            alpha_beta=s.alpha_beta,
            recovery=s.model.describe(),
            volume_cc=dvh.volume_cc,
            covered_fraction=dvh.covered_fraction,
            metrics=tuple(metrics),
            contributions=tuple(contributions),
            dvh=dvh,
            dvh_no_recovery=dvh_nr,
        )
        # constraints
        for constraint in applicable:
            local_constraints.extend(
                _evaluate_constraint(
                    constraint, s, data, dvh_for, course_dvhs, scenario_list, min_interval
                )
            )
        return structure_result, local_constraints, local_warnings

    # Structures are independent: two threads (numpy releases the GIL in the heavy parts)
    from concurrent.futures import ThreadPoolExecutor

    done = 0
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for structure_result, local_constraints, local_warnings in pool.map(one, structures):
            report("structures", done, len(structures))
            done += 1
            results.append(structure_result)
            evaluated.extend(local_constraints)
            warnings.extend(local_warnings)
            if structure_result.role != "organ_at_risk":
                continue
            for item in local_constraints:
                if item.course is not None:
                    continue
                bad = item.result.status == "fail" or (
                    item.sensitivity is not None and item.sensitivity.status != "pass in all"
                )
                concern = bool(concern) or bad
    report("structures", len(structures), len(structures))
    lap("structures: DVHs and constraints")

    # ---- re-irradiation type ---------------------------------------------------------
    reirr = None
    threshold = analysis.reirradiation_type_threshold_gy
    newest_index = len(data) - 1
    if threshold is None:
        warnings.append(
            "re-irradiation type not assessed: set analysis.reirradiation_type_threshold_gy (the "
            "isodose defining each course's irradiated volume; the consensus gives no number)"
        )
    elif len(data) > 1:

        def physical(item: _CourseData) -> Dose:
            values = (
                item.resampled[0] if len(item.resampled) == 1 else np.sum(item.resampled, axis=0)
            )
            return Dose(ref_grid, values, DoseKind.PHYSICAL, None, "physical", {})

        reirr = reirradiation_type(
            [physical(d) for d in data[:newest_index]],
            physical(data[newest_index]),
            threshold,
            cumulative_dose_concern=concern,
        )
        assumptions.append(
            f"re-irradiation type (ESTRO-EORTC, Andratschke 2022): irradiated volume = inside the "
            f"{threshold:g} Gy physical isodose of each course on the reference grid; cumulative "
            "organ dose 'of concern' = an organ-at-risk constraint failing in some scenario"
            + (" (no organ-at-risk constraint evaluated: not assessed)" if concern is None else "")
        )
    lap("re-irradiation type")

    uncertain = any(m.uncertain for m in mappings)
    methods = ", ".join(sorted({m.mapping for m in mappings}))
    provenance = {
        "courses": ids,
        "assumptions": list(assumptions),
        "uncertain": uncertain,
        "method": "voxel-wise EQD2 sum",
        "mapping": methods,
        "alpha_beta_values_gy": [
            float(v)
            for v in np.unique(np.round([s.alpha_beta for s in structures] + [default_ab], 3))
        ],
        "alpha_beta_rule": "most conservative" if rule == "most_conservative" else "priority list",
    }
    plan_uids = tuple(p.plan_uid for d in data for p in d.phases if p.plan_uid)
    return VoxelAssessment(
        case=case,
        reference_course=reference_id,
        grid=ref_grid,
        total=Dose(
            ref_grid, total, DoseKind.EFFECTIVE, None, "EQD2", {**provenance, "recovery": "applied"}
        ),
        total_no_recovery=Dose(
            ref_grid, total_nr, DoseKind.EFFECTIVE, None, "EQD2", {**provenance, "recovery": "none"}
        ),
        courses=tuple(mappings),
        structures=tuple(results),
        constraints=tuple(evaluated),
        reirradiation=reirr,
        assumptions=tuple(assumptions),
        warnings=tuple(warnings),
        uncertain=uncertain,
        frame_of_reference_uid=ref_frame,
        plan_uids=plan_uids,
        reference_ct=ref_ct_path,
        timings=timings,
        maps=(
            VoxelMaps(
                phases={
                    item.course.id: tuple(
                        (float(phase.fractions), values)
                        for phase, values in zip(item.phases, item.resampled, strict=True)
                    )
                    for item in data
                },
                occupancy={s.spec.name: (s.box, s.occupancy) for s in structures},
                recovery_interval_days={
                    item.course.id: item.recovery_interval
                    for item in data
                    if item.recovery_interval is not None
                },
            )
            if keep_maps
            else None
        ),
    )


def _first_ct(course: Course, base: Path | None) -> str | None:
    spec = course.dicom.ct
    if isinstance(spec, list):
        return str(_path(base, spec[0])) if spec else None
    path = _path(base, spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return str(files[0]) if files else None
    return str(path)


def _structure_level(
    case: Case, s: _StructureData, data: list[_CourseData], per_course: Mapping[str, float]
) -> dict[str, float | None]:
    """Cumulative EQD2 (after recovery) of the three structure-level methods.

    The ``prescription`` method uses the case's primary prescription of each course; a course
    without one in the case but with a single-phase RTPLAN stating an unambiguous target
    prescription uses that plan's dose per fraction. ``None`` where neither exists.
    """
    from reirrad.core.case import Prescription

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
    data: list[_CourseData],
    dvh_for: Callable,
    course_dvhs: Sequence[DVH],
    scenario_list: Sequence[Scenario],
    min_interval: int | None,
) -> list[VoxelConstraint]:
    """One constraint on the structure's voxel-wise DVH(s), with its sensitivity.

    Sensitivity: every alpha/beta shift is evaluated; of the recovery scales only the
    smallest and largest, because each voxel's effective dose ``(1 - s f) EQD2`` does not
    increase with the scale ``s``, so every DVH metric is monotone in it and the metric at an
    intermediate scale lies between the two (the classification cannot change).
    """
    metric = constraint.metric
    parsed = parse_metric(metric)
    quantity = constraint.quantity
    ab = constraint.alpha_beta_gy
    at = f"alpha/beta {ab:g} Gy" if ab is not None else "tissue alpha/beta map"
    out = []
    if constraint.scope == "course":
        for i, item in enumerate(data):
            if (
                quantity != "physical"
                and ab is not None
                and len(item.phases) == 1
                and parsed.kind != "mean"
            ):
                # a dose-at-volume metric commutes with a monotone per-voxel transform of one
                # scalar alpha/beta and one fraction number: the exact voxel-wise value
                physical = course_dvhs[i].metric(metric)
                n = item.phases[0].fractions
                value = float(
                    _bed(physical, n, ab) if quantity == "bed" else _eqd2(physical, n, ab)
                )
            else:
                value = dvh_for(quantity, ab, 0.0, 0.0, i).metric(metric)
            out.append(
                VoxelConstraint(
                    structure=s.spec.name,
                    result=evaluate(constraint, value, interval_days=min_interval),
                    quantity_text=f"voxel-wise {quantity} of course {item.course.id} ({at})",
                    course=item.course.id,
                )
            )
        return out
    credit = constraint.recovery_credit and quantity != "physical"
    scale = 1.0 if credit else 0.0
    value = dvh_for(quantity, ab, scale).metric(metric)
    if quantity == "physical":
        text = "voxel-wise cumulative physical dose (no recovery)"
    else:
        text = (
            f"voxel-wise cumulative {quantity.upper()} ({at}, "
            f"{'after' if credit else 'without'} recovery)"
        )
    sensitivity = None
    if quantity != "physical":
        scales = [sc.recovery_scale for sc in scenario_list]
        extremes = {min(scales), max(scales)}
        values = []
        for scenario in scenario_list:
            if scenario.recovery_scale not in extremes:
                continue
            # a limit stated at its own alpha/beta keeps it; without recovery credit the sum
            # without recovery is compared in every scenario
            shift = 0.0 if ab is not None else scenario.alpha_beta_shift
            number = dvh_for(quantity, ab, scenario.recovery_scale * scale, shift).metric(metric)
            values.append((scenario, number))
        sensitivity = classify_scenarios(constraint, values, interval_days=min_interval)
    out.append(
        VoxelConstraint(
            structure=s.spec.name,
            result=evaluate(constraint, value, interval_days=min_interval),
            quantity_text=text,
            sensitivity=sensitivity,
        )
    )
    return out
