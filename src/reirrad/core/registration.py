"""Mapping doses between courses: transforms, dose resampling, CT registration (SimpleITK).

Conventions
-----------
* A :class:`Transform` maps **moving** (earlier course) patient coordinates to **reference**
  patient coordinates: ``x_ref = M @ x_mov`` (4x4 homogeneous, mm). This is the direction of
  the DICOM Spatial Registration matrix (3006,00C6), which "transforms the coordinates of
  the Referenced Frame of Reference into the Registered RCS".
* SimpleITK transforms map the other way (fixed/reference point -> moving point, the
  direction resampling needs); :func:`register_rigid` converts.
* A deformable transform carries, in addition, a displacement field ``u`` sampled on a grid
  in reference space: ``x_mov = M^-1 @ x_ref + u(x_ref)``. Deformable results are always
  ``uncertain=True``: deformable registration between courses (anatomy changed, tumour
  shrank or regrew) has no ground truth and its dose mapping must be labelled as such.

Resampling modes (:func:`resample_dose`)
----------------------------------------
``"trilinear"``
    the moving dose interpolated trilinearly at each reference voxel centre.
``"max_footprint"``
    conservative for organs at risk: each reference voxel receives the maximum of the
    moving voxels that overlap its footprint (and never less than the trilinear value).
    The footprint is the reference voxel mapped into the moving grid; for a rotation its
    axis-aligned bounding box (half-extent ``e`` moving voxels per axis) is used, a
    superset. Along each moving axis, moving voxel ``m`` overlaps the footprint centred at
    continuous index ``p`` when ``|m - p| < e + 1/2``, a run of consecutive indices whose
    start and length depend on ``p``. The maximum over such a box is separable: it is read
    from forward running maxima (``scipy.ndimage.maximum_filter1d``, one volume per
    combination of run lengths, at most 2-3 per axis) at the run's start index, so it is
    exact for the bounding box, vectorised, and costs a few filtered copies of the moving
    dose. On the same grid with the identity this returns the dose unchanged; a single hot
    moving voxel is kept by every reference voxel it overlaps.

Points outside the moving grid (more than half a voxel beyond its edge centres) get 0 and
are reported in the coverage mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from numpy.typing import NDArray
from scipy import ndimage

from reirrad.core.geometry import Dose, Grid
from reirrad.errors import InputError

__all__ = [
    "ResampledDose",
    "Transform",
    "grid_from_sitk",
    "is_rigid",
    "register_deformable",
    "register_rigid",
    "resample_dose",
    "rigid_matrix",
    "sitk_from_array",
]

_KINDS = ("identity", "reg", "rigid", "deformable")


def is_rigid(matrix: NDArray, tol: float = 1e-4) -> bool:
    """True when ``matrix`` is a 4x4 proper rigid transform (rotation + translation)."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (4, 4) or not np.allclose(m[3], [0, 0, 0, 1], atol=tol):
        return False
    r = m[:3, :3]
    return bool(np.allclose(r @ r.T, np.eye(3), atol=tol) and abs(np.linalg.det(r) - 1) < tol)


def rigid_matrix(
    angles_deg=(0.0, 0.0, 0.0), translation_mm=(0.0, 0.0, 0.0), center_mm=(0.0, 0.0, 0.0)
) -> NDArray[np.float64]:
    """4x4 rigid matrix: rotation about x, then y, then z (degrees) about ``center``, then shift.

    ``x' = R (x - c) + c + t`` with ``R = Rz @ Ry @ Rx`` (rotation about x first). This
    helper builds known transforms for phantoms and tests; it states its own convention and
    is not meant to match any other library's Euler angles.
    """
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    r = rz @ ry @ rx
    c = np.asarray(center_mm, dtype=float)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = c + np.asarray(translation_mm, dtype=float) - r @ c
    return m


@dataclass(frozen=True)
class Transform:
    """Moving -> reference patient-coordinate mapping.

    Attributes
    ----------
    matrix
        4x4 rigid matrix, ``x_ref = matrix @ x_mov``.
    kind
        ``identity`` (same frame of reference), ``reg`` (from a DICOM Spatial Registration
        object), ``rigid`` (computed from the CTs) or ``deformable``.
    uncertain
        True for deformable mappings (and whenever the caller says so); carried into every
        output that uses this transform.
    moving_frame_uid, reference_frame_uid
        Frames of reference it connects, when known.
    displacement
        Deformable part only: array ``[k, j, i, 3]`` of (x, y, z) displacements in mm on
        ``displacement_grid`` (reference space), ``x_mov = matrix^-1 x_ref + u(x_ref)``.
    description
        Free text (source file, metric value, ...).
    """

    matrix: NDArray[np.float64] = field(default_factory=lambda: np.eye(4), repr=False)
    kind: str = "identity"
    uncertain: bool = False
    moving_frame_uid: str | None = None
    reference_frame_uid: str | None = None
    displacement: NDArray[np.float64] | None = field(default=None, repr=False)
    displacement_grid: Grid | None = field(default=None, repr=False)
    description: str = ""

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=float)
        if self.kind not in _KINDS:
            raise InputError(f"transform kind must be one of {_KINDS}", field="transform.kind")
        if not is_rigid(m, tol=1e-3):
            raise InputError(
                "the transform matrix is not rigid (rotation + translation)",
                field="transform.matrix",
            )
        m = m.copy()
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)
        if self.kind == "deformable":
            object.__setattr__(self, "uncertain", True)
            if self.displacement is None or self.displacement_grid is None:
                raise InputError(
                    "a deformable transform needs its displacement field", field="transform"
                )
            if tuple(self.displacement.shape) != (*self.displacement_grid.shape, 3):
                raise InputError("displacement field does not match its grid", field="transform")

    @classmethod
    def identity(cls, frame_uid: str | None = None) -> Transform:
        """Same frame of reference: no mapping."""
        return cls(
            np.eye(4),
            "identity",
            False,
            frame_uid,
            frame_uid,
            description="same frame of reference",
        )

    @property
    def label(self) -> str:
        """Short label for outputs, with the uncertainty stated."""
        return f"{self.kind} (UNCERTAIN)" if self.uncertain else self.kind

    def reference_to_moving(self, xyz_ref: NDArray) -> NDArray[np.float64]:
        """Moving patient coordinates (..., 3) of reference points (..., 3)."""
        xyz_ref = np.asarray(xyz_ref, dtype=float)
        inverse = np.linalg.inv(self.matrix)
        out = xyz_ref @ inverse[:3, :3].T + inverse[:3, 3]
        if self.displacement is not None:
            idx = self.displacement_grid.patient_to_index(xyz_ref)
            coords = [idx[..., 2], idx[..., 1], idx[..., 0]]
            for axis in range(3):
                out[..., axis] += ndimage.map_coordinates(
                    self.displacement[..., axis], coords, order=1, mode="nearest"
                )
        return out


@dataclass(frozen=True)
class ResampledDose:
    """A dose on the reference grid and where the moving grid covered it."""

    dose: Dose
    coverage: NDArray[np.bool_] = field(repr=False)
    mode: str = "trilinear"
    transform: Transform | None = field(default=None, repr=False)


def _footprint_half_extent(
    moving: Grid, reference: Grid, transform: Transform
) -> NDArray[np.float64]:
    """Half-extent (moving voxels, along moving i, j, k) of a reference voxel's footprint."""
    inv_m = np.linalg.inv(transform.matrix)[:3, :3]
    jac = np.linalg.inv(moving.affine[:3, :3]) @ inv_m @ reference.affine[:3, :3]
    return 0.5 * np.abs(jac).sum(axis=1)


class _FootprintMax:
    """Maximum of the moving voxels overlapping a box around continuous indices."""

    def __init__(self, values: NDArray, half_extent: NDArray) -> None:
        self.reach = half_extent + 0.5  # overlap when |m - p| < reach
        self.pad = int(np.ceil(2 * self.reach.max())) + 2
        self.values = np.pad(values, self.pad, mode="edge")
        self.cache: dict[tuple[int, int, int], NDArray] = {}

    def _volume(self, lengths: tuple[int, int, int]) -> NDArray:
        if lengths not in self.cache:
            out = self.values
            for axis, length in zip((2, 1, 0), lengths, strict=True):  # i, j, k -> array axes
                out = ndimage.maximum_filter1d(
                    out, size=length, axis=axis, origin=-(length // 2), mode="nearest"
                )
            self.cache[lengths] = out
        return self.cache[lengths]

    def __call__(self, idx: NDArray) -> NDArray[np.float64]:
        tol = 1e-6
        start = np.floor(idx - self.reach + tol).astype(int) + 1
        stop = np.ceil(idx + self.reach - tol).astype(int) - 1
        length = np.maximum(stop - start + 1, 1)
        out = np.empty(idx.shape[:-1])
        combos = np.unique(length.reshape(-1, 3), axis=0)
        for combo in combos:
            sel = np.all(length == combo, axis=-1)
            volume = self._volume(tuple(int(c) for c in combo))
            s = start[sel] + self.pad
            out[sel] = volume[s[:, 2], s[:, 1], s[:, 0]]
        return out


def resample_dose(
    dose: Dose,
    reference_grid: Grid,
    transform: Transform | None = None,
    mode: str = "trilinear",
    *,
    slab: int = 16,
) -> ResampledDose:
    """Map ``dose`` (on its own grid, moving frame) onto ``reference_grid``.

    Parameters
    ----------
    dose
        Dose on the moving grid (physical or effective; the kind is kept).
    reference_grid
        Target grid, in the reference frame.
    transform
        Moving -> reference mapping (identity when ``None``).
    mode
        ``"trilinear"`` or ``"max_footprint"`` (conservative, see the module docstring).
    slab
        Reference slices processed at once (bounds memory on large grids).

    Returns
    -------
    ResampledDose
        Dose on the reference grid (0 outside the moving grid) and the coverage mask.
    """
    if mode not in ("trilinear", "max_footprint"):
        raise InputError("resampling mode must be 'trilinear' or 'max_footprint'", field="mode")
    transform = transform or Transform.identity()
    source = np.asarray(dose.values, dtype=float)
    footprint = None
    if mode == "max_footprint":
        footprint = _FootprintMax(
            source, _footprint_half_extent(dose.grid, reference_grid, transform)
        )
    nk, nj, ni = reference_grid.shape
    out = np.zeros(reference_grid.shape)
    coverage = np.zeros(reference_grid.shape, dtype=bool)
    jj, ii = np.meshgrid(np.arange(nj), np.arange(ni), indexing="ij")
    shape_m = np.asarray(dose.grid.shape)[::-1]  # ni, nj, nk of the moving grid
    for k0 in range(0, nk, slab):
        k1 = min(nk, k0 + slab)
        kk = np.arange(k0, k1)[:, None, None] * np.ones((1, nj, ni))
        ijk = np.stack([np.broadcast_to(ii, kk.shape), np.broadcast_to(jj, kk.shape), kk], axis=-1)
        xyz_ref = reference_grid.index_to_patient(ijk)
        xyz_mov = transform.reference_to_moving(xyz_ref)
        idx = dose.grid.patient_to_index(xyz_mov)  # (..., 3) as i, j, k
        inside = np.all((idx >= -0.5 - 1e-6) & (idx <= shape_m - 0.5 + 1e-6), axis=-1)
        # a voxel's dose extends half a spacing beyond its centre: clamp within that margin
        clamped = np.clip(idx, 0, shape_m - 1)
        values = ndimage.map_coordinates(
            source, [clamped[..., 2], clamped[..., 1], clamped[..., 0]], order=1, mode="nearest"
        )
        if footprint is not None:
            values = np.maximum(values, footprint(idx))
        out[k0:k1] = np.where(inside, values, 0.0)
        coverage[k0:k1] = inside
    provenance = {
        **dose.provenance,
        "resampled": mode,
        "mapping": transform.label,
        "mapping_uncertain": transform.uncertain,
    }
    if transform.description:
        provenance["mapping_description"] = transform.description
    new = Dose(
        grid=reference_grid,
        values=out,
        kind=dose.kind,
        fractions=dose.fractions,
        quantity=dose.quantity,
        provenance=provenance,
    )
    return ResampledDose(new, coverage, mode, transform)


# --------------------------------------------------------------------------------------
# SimpleITK bridges and registration
# --------------------------------------------------------------------------------------


def sitk_from_array(values: NDArray, grid: Grid) -> sitk.Image:
    """SimpleITK image of an array indexed ``[k, j, i]`` on ``grid``.

    ``GetImageFromArray`` also takes ``[z, y, x]`` = ``[k, j, i]`` order; origin, spacing and
    direction come from the grid affine (direction stored row-major, columns = axis unit
    vectors, as ITK expects).
    """
    values = np.asarray(values)
    if values.shape != tuple(grid.shape):
        raise ValueError(f"array {values.shape} does not match grid {grid.shape}")
    image = sitk.GetImageFromArray(values)
    image.SetOrigin(tuple(float(v) for v in grid.origin))
    image.SetSpacing(tuple(float(v) for v in grid.spacing))
    image.SetDirection(tuple(float(v) for v in grid.direction.flatten()))
    return image


def grid_from_sitk(image: sitk.Image) -> tuple[NDArray, Grid]:
    """``(array [k, j, i], Grid)`` of a SimpleITK image."""
    values = sitk.GetArrayFromImage(image)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    grid = Grid.from_axes(image.GetOrigin(), image.GetSpacing(), values.shape, direction)
    return values, grid


def _sitk_affine(transform: sitk.Transform) -> NDArray[np.float64]:
    """4x4 matrix of a SimpleITK rigid/affine transform (fixed point -> moving point)."""
    t = (
        sitk.Euler3DTransform(transform)
        if not isinstance(transform, sitk.Euler3DTransform)
        else transform
    )
    r = np.asarray(t.GetMatrix(), dtype=float).reshape(3, 3)
    c = np.asarray(t.GetCenter(), dtype=float)
    tr = np.asarray(t.GetTranslation(), dtype=float)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = tr + c - r @ c
    return m


def _as_float_image(image: NDArray, grid: Grid) -> sitk.Image:
    return sitk.Cast(sitk_from_array(np.asarray(image, dtype=np.float32), grid), sitk.sitkFloat32)


def register_rigid(
    fixed_image: NDArray,
    fixed_grid: Grid,
    moving_image: NDArray,
    moving_grid: Grid,
    *,
    initial: Transform | None = None,
    shrink_factors: tuple[int, ...] = (4, 2, 1),
    smoothing_mm: tuple[float, ...] = (4.0, 2.0, 0.0),
    sampling_fraction: float = 0.2,
    iterations: int = 200,
    seed: int = 20221,
    fixed_frame_uid: str | None = None,
    moving_frame_uid: str | None = None,
) -> Transform:
    """Rigid (6 degrees of freedom) registration of two CTs with SimpleITK.

    Mattes mutual information (50 bins, random sampling of ``sampling_fraction`` of the
    voxels with a fixed seed so results repeat), Euler3D transform initialised at the image
    centres (or from ``initial``), regular-step gradient descent with physical-shift scales,
    three resolution levels.

    Returns
    -------
    Transform
        kind ``"rigid"``, ``x_ref = matrix @ x_mov`` with the fixed CT as reference; the
        final metric value is in ``description``.
    """
    fixed = _as_float_image(fixed_image, fixed_grid)
    moving = _as_float_image(moving_image, moving_grid)
    if initial is not None:
        inv = np.linalg.inv(initial.matrix)
        start = sitk.Euler3DTransform()
        start.SetMatrix(tuple(inv[:3, :3].flatten()))
        start.SetTranslation(tuple(inv[:3, 3]))
    else:
        start = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
        )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling_fraction, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=iterations, relaxationFactor=0.5
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(smoothing_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(start, inPlace=False)
    final = reg.Execute(fixed, moving)
    if isinstance(final, sitk.CompositeTransform):
        final = final.GetNthTransform(0)
    fixed_to_moving = _sitk_affine(sitk.Euler3DTransform(final))
    matrix = np.linalg.inv(fixed_to_moving)
    return Transform(
        matrix=matrix,
        kind="rigid",
        uncertain=False,
        moving_frame_uid=moving_frame_uid,
        reference_frame_uid=fixed_frame_uid,
        description=(
            f"SimpleITK rigid: Mattes MI {reg.GetMetricValue():.4f} after "
            f"{reg.GetOptimizerIteration()} iterations ({reg.GetOptimizerStopConditionDescription()})"
        ),
    )


def register_deformable(
    fixed_image: NDArray,
    fixed_grid: Grid,
    moving_image: NDArray,
    moving_grid: Grid,
    *,
    initial: Transform | None = None,
    method: str = "bspline",
    mesh_size: tuple[int, int, int] = (6, 6, 6),
    iterations: int = 50,
    seed: int = 20221,
    fixed_frame_uid: str | None = None,
    moving_frame_uid: str | None = None,
) -> Transform:
    """Deformable registration (B-spline with Mattes MI, or demons); always UNCERTAIN.

    A rigid registration (``initial``, or computed here) is applied first; the deformable
    part is returned as a displacement field on the fixed grid.

    Parameters
    ----------
    method
        ``"bspline"`` (B-spline free-form deformation, Mattes MI, L-BFGS-B, 2 levels) or
        ``"demons"`` (fast symmetric forces demons, for CTs of one modality).
    """
    if method not in ("bspline", "demons"):
        raise InputError("deformable method must be 'bspline' or 'demons'", field="method")
    rigid = initial or register_rigid(
        fixed_image,
        fixed_grid,
        moving_image,
        moving_grid,
        seed=seed,
        fixed_frame_uid=fixed_frame_uid,
        moving_frame_uid=moving_frame_uid,
    )
    fixed = _as_float_image(fixed_image, fixed_grid)
    moving = _as_float_image(moving_image, moving_grid)
    inv = np.linalg.inv(rigid.matrix)
    rigid_sitk = sitk.AffineTransform(3)
    rigid_sitk.SetMatrix(tuple(inv[:3, :3].flatten()))
    rigid_sitk.SetTranslation(tuple(inv[:3, 3]))
    # moving CT resampled into the fixed grid by the rigid part; the deformation is on top
    moving_on_fixed = sitk.Resample(moving, fixed, rigid_sitk, sitk.sitkLinear, -1000.0)
    if method == "bspline":
        bspline = sitk.BSplineTransformInitializer(fixed, list(mesh_size))
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(50)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(0.1, seed)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations)
        reg.SetShrinkFactorsPerLevel([2, 1])
        reg.SetSmoothingSigmasPerLevel([1, 0])
        reg.SetInitialTransform(bspline, inPlace=True)
        reg.Execute(fixed, moving_on_fixed)
        deform = bspline
        note = f"B-spline mesh {mesh_size}, Mattes MI {reg.GetMetricValue():.4f}"
    else:
        demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        demons.SetNumberOfIterations(iterations)
        demons.SetStandardDeviations(1.5)
        field_image = demons.Execute(fixed, moving_on_fixed)
        deform = sitk.DisplacementFieldTransform(sitk.Cast(field_image, sitk.sitkVectorFloat64))
        note = f"fast symmetric forces demons, {iterations} iterations"
    displacement_image = sitk.TransformToDisplacementField(
        deform,
        sitk.sitkVectorFloat64,
        fixed.GetSize(),
        fixed.GetOrigin(),
        fixed.GetSpacing(),
        fixed.GetDirection(),
    )
    # the deformation maps x -> x + u(x) into the rigidly resampled moving image, so the
    # moving point is x_mov = M^-1 (x + u) = M^-1 x + L u with L the linear part of M^-1
    u = sitk.GetArrayFromImage(displacement_image)  # [k, j, i, 3]
    u = u @ inv[:3, :3].T
    return Transform(
        matrix=rigid.matrix,
        kind="deformable",
        uncertain=True,
        moving_frame_uid=moving_frame_uid,
        reference_frame_uid=fixed_frame_uid,
        displacement=u,
        displacement_grid=fixed_grid,
        description=f"SimpleITK deformable ({note}) on top of {rigid.kind}: UNCERTAIN",
    )
