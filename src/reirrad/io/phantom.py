"""Synthetic multi-course DICOM cases whose cumulative EQD2 is known exactly.

A test and demonstration tool (it writes files). :func:`default_phantom` describes a body
(water ellipse cylinder with a bony spine, an air cavity and a lung-like insert), a few
structures (spheres, cylinders) and two or three courses. Each course has

* its own frame of reference, related to the *reference frame* (that of the newest course)
  by a known rigid matrix ``to_reference`` (``x_ref = M @ x_course``); a course may share
  the reference frame (identity mapping) while having its own grids;
* a CT series, an RTSTRUCT (closed planar contours on the CT slices), an RTPLAN (fractions,
  prescription) and an RTDOSE (PLAN, PHYSICAL, GY) on its own dose grid;
* an analytic physical dose field, a sum of Gaussian blobs defined in the reference frame,
  so the exact dose of any course at any reference point is :meth:`Phantom.physical_dose`.
  Tests convert those exact values with :mod:`reirrad.core.radiobiology` to obtain the
  exact cumulative EQD2.

:func:`write_phantom_case` writes everything, plus one DICOM Spatial Registration object
per course whose frame differs from the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reirrad.core.geometry import Dose, Grid
from reirrad.core.registration import rigid_matrix

__all__ = [
    "Cylinder",
    "GaussianBlob",
    "Phantom",
    "PhantomCase",
    "PhantomCourse",
    "Sphere",
    "default_phantom",
    "write_phantom_case",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"


# --------------------------------------------------------------------------------------
# Geometry of the phantom (all in the reference frame, mm)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sphere:
    """A spherical structure."""

    name: str
    center: tuple[float, float, float]
    radius: float
    roi_type: str = "ORGAN"

    def contains(self, xyz: NDArray) -> NDArray[np.bool_]:
        return np.sum((np.asarray(xyz) - np.asarray(self.center)) ** 2, axis=-1) <= self.radius**2

    @property
    def volume_cc(self) -> float:
        return 4.0 / 3.0 * np.pi * self.radius**3 / 1000.0

    def bounds(self) -> tuple[NDArray, NDArray]:
        """Axis-aligned box (reference frame) containing the shape."""
        c = np.asarray(self.center, dtype=float)
        return c - self.radius, c + self.radius


@dataclass(frozen=True)
class Cylinder:
    """A finite circular cylinder (axis through ``center``, unit direction ``axis``)."""

    name: str
    center: tuple[float, float, float]
    radius: float
    half_length: float
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    roi_type: str = "ORGAN"

    def contains(self, xyz: NDArray) -> NDArray[np.bool_]:
        a = np.asarray(self.axis, dtype=float)
        a = a / np.linalg.norm(a)
        rel = np.asarray(xyz) - np.asarray(self.center)
        along = rel @ a
        radial2 = np.sum(rel**2, axis=-1) - along**2
        return (np.abs(along) <= self.half_length) & (radial2 <= self.radius**2)

    @property
    def volume_cc(self) -> float:
        return np.pi * self.radius**2 * 2 * self.half_length / 1000.0

    def bounds(self) -> tuple[NDArray, NDArray]:
        """Axis-aligned box (reference frame) containing the shape."""
        c = np.asarray(self.center, dtype=float)
        r = self.radius + self.half_length
        return c - r, c + r


@dataclass(frozen=True)
class GaussianBlob:
    """``amplitude * exp(-|x - c|^2 / (2 sigma^2))`` Gy (physical, whole course)."""

    center: tuple[float, float, float]
    sigma: float
    amplitude: float

    def dose(self, xyz: NDArray) -> NDArray[np.float64]:
        r2 = np.sum((np.asarray(xyz, dtype=float) - np.asarray(self.center)) ** 2, axis=-1)
        return self.amplitude * np.exp(-r2 / (2.0 * self.sigma**2))

    def gradient_norm(self, xyz: NDArray) -> NDArray[np.float64]:
        r = np.sqrt(np.sum((np.asarray(xyz, dtype=float) - np.asarray(self.center)) ** 2, axis=-1))
        return self.dose(xyz) * r / self.sigma**2


@dataclass(frozen=True)
class PhantomCourse:
    """One course: geometry of its frame and grids, fractionation, analytic dose."""

    label: str
    fractions: int
    prescription_gy: float
    blobs: tuple[GaussianBlob, ...]
    to_reference: NDArray[np.float64] = field(default_factory=lambda: np.eye(4), repr=False)
    shares_reference_frame: bool = False
    ct_spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)
    ct_shape: tuple[int, int, int] = (40, 64, 64)  # k, j, i
    dose_spacing: tuple[float, float, float] = (2.5, 2.5, 3.0)
    dose_half_extent: tuple[float, float, float] = (75.0, 66.0, 54.0)
    dose_center: tuple[float, float, float] = (0.0, 0.0, 0.0)  # reference frame
    date: str = "20200101"

    def ct_grid(self) -> Grid:
        """Axial CT grid in the course's own frame, centred on the anatomy."""
        center = np.linalg.inv(self.to_reference) @ np.array([0.0, 0.0, 0.0, 1.0])
        spacing = np.asarray(self.ct_spacing)
        shape_ijk = np.asarray(self.ct_shape)[::-1]
        origin = center[:3] - spacing * (shape_ijk - 1) / 2.0
        return Grid.from_axes(np.round(origin, 3), spacing, self.ct_shape)

    def dose_grid(self) -> Grid:
        """Axial dose grid in the course's own frame around ``dose_center``."""
        center = np.linalg.inv(self.to_reference) @ np.array([*self.dose_center, 1.0])
        spacing = np.asarray(self.dose_spacing)
        n = np.floor(2 * np.asarray(self.dose_half_extent) / spacing).astype(int) + 1
        origin = center[:3] - spacing * (n - 1) / 2.0
        return Grid.from_axes(np.round(origin, 3), spacing, (int(n[2]), int(n[1]), int(n[0])))


@dataclass(frozen=True)
class Phantom:
    """Anatomy, structures and courses; the last course defines the reference frame."""

    courses: tuple[PhantomCourse, ...]
    structures: tuple[Sphere | Cylinder, ...]
    body_semi_axes: tuple[float, float] = (85.0, 65.0)
    body_half_length: float = 52.0
    patient_id: str = "REIRRAD-PHANTOM"

    # ---- analytic answers (reference-frame points) ----
    def physical_dose(self, course: int, xyz_ref: ArrayLike) -> NDArray[np.float64]:
        """Exact physical dose (Gy, whole course) of course ``course`` at reference points."""
        xyz = np.asarray(xyz_ref, dtype=float)
        return sum(blob.dose(xyz) for blob in self.courses[course].blobs)

    def dose_gradient_bound(self, course: int, xyz_ref: ArrayLike) -> NDArray[np.float64]:
        """Upper bound of the dose gradient magnitude (Gy/mm) at reference points."""
        return sum(blob.gradient_norm(xyz_ref) for blob in self.courses[course].blobs)

    def to_reference_points(self, course: int, xyz_course: ArrayLike) -> NDArray[np.float64]:
        m = self.courses[course].to_reference
        return np.asarray(xyz_course, dtype=float) @ m[:3, :3].T + m[:3, 3]

    def hounsfield(self, xyz_ref: ArrayLike) -> NDArray[np.float64]:
        """CT number of the synthetic anatomy at reference points."""
        p = np.asarray(xyz_ref, dtype=float)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        a, b = self.body_semi_axes
        body = ((x / a) ** 2 + (y / b) ** 2 <= 1.0) & (np.abs(z) <= self.body_half_length)
        hu = np.where(body, 20.0, -1000.0)
        lung = ((x - 45) / 22) ** 2 + ((y + 5) / 28) ** 2 + (z / 38) ** 2 <= 1.0
        hu = np.where(lung, -750.0, hu)
        spine = ((x - 0) ** 2 + (y - 40) ** 2 <= 14**2) & (np.abs(z) <= self.body_half_length)
        canal = (x**2 + (y - 40) ** 2 <= 6**2) & (np.abs(z) <= self.body_half_length)
        hu = np.where(spine & ~canal, 900.0, hu)
        air = (x + 40) ** 2 + (y + 20) ** 2 + (z - 15) ** 2 <= 11**2
        hu = np.where(air, -1000.0, hu)
        bone = (x + 50) ** 2 + (y - 20) ** 2 + (z + 20) ** 2 <= 9**2
        hu = np.where(bone, 1200.0, hu)
        return hu

    def structure(self, name: str) -> Sphere | Cylinder:
        for s in self.structures:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def reference_index(self) -> int:
        return len(self.courses) - 1

    def course_dose(self, course: int) -> Dose:
        """The course's physical dose on its own dose grid (as written to its RTDOSE)."""
        c = self.courses[course]
        grid = c.dose_grid()
        xyz_course = _voxel_centres(grid)
        values = self.physical_dose(course, self.to_reference_points(course, xyz_course))
        return Dose.physical(
            grid, values, fractions=c.fractions, provenance={"source": f"phantom {c.label}"}
        )

    def course_ct(self, course: int) -> tuple[NDArray[np.int16], Grid]:
        """The course's CT (HU, ``[k, j, i]``) and grid."""
        grid = self.courses[course].ct_grid()
        xyz_ref = self.to_reference_points(course, _voxel_centres(grid))
        return self.hounsfield(xyz_ref).astype(np.int16), grid


def _voxel_centres(grid: Grid) -> NDArray[np.float64]:
    kk, jj, ii = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    return grid.index_to_patient(np.stack([ii, jj, kk], axis=-1))


def default_phantom(
    n_courses: int = 3, *, small: bool = True, ct_slices: int | None = None
) -> Phantom:
    """Two or three courses with different grids and frames.

    * course 1 (oldest): own frame, rotated (2, -1.5, 4) degrees about x, y, z and shifted
      (10, -6, 12) mm relative to the reference frame; 60 Gy in 30 fractions;
    * course 2 (three-course case): same frame as the reference course (identity mapping)
      but its own CT and dose grids; 24 Gy in 8 fractions near the spine;
    * last course (reference): 30 Gy in 5 fractions overlapping course 1.

    ``small`` uses 64 x 64 x 40 CT voxels of 3 mm (the size used in tests); otherwise
    128 x 128 x 80 of 1.5 mm.  ``ct_slices`` sets the number of axial CT slices of every
    course (same slice spacing, so a longer scan; e.g. 160 for a head-and-neck-sized series).
    """
    if n_courses not in (2, 3):
        raise ValueError("the default phantom has 2 or 3 courses")
    ct_spacing = (3.0, 3.0, 3.0) if small else (1.5, 1.5, 1.5)
    ct_shape = (40, 64, 64) if small else (80, 128, 128)
    if ct_slices is not None:
        if ct_slices < 2:
            raise ValueError("the phantom's CT needs at least 2 slices")
        ct_shape = (int(ct_slices), *ct_shape[1:])
    first = PhantomCourse(
        label="course 1 (2016, 60 Gy/30 fx)",
        fractions=30,
        prescription_gy=60.0,
        blobs=(
            GaussianBlob((-10.0, 5.0, 0.0), 24.0, 60.0),
            GaussianBlob((25.0, 10.0, -10.0), 30.0, 12.0),
        ),
        to_reference=rigid_matrix((2.0, -1.5, 4.0), (10.0, -6.0, 12.0)),
        ct_spacing=ct_spacing,
        ct_shape=ct_shape,
        dose_spacing=(2.5, 2.5, 3.0),
        dose_half_extent=(80.0, 72.0, 66.0),  # the dose has fallen below 2 Gy at its edges
        date="20160301",
    )
    middle = PhantomCourse(
        label="course 2 (2019, 24 Gy/8 fx)",
        fractions=8,
        prescription_gy=24.0,
        blobs=(GaussianBlob((5.0, 30.0, 10.0), 22.0, 24.0),),
        shares_reference_frame=True,
        ct_spacing=(ct_spacing[0] * 1.0, ct_spacing[1] * 1.0, ct_spacing[2] * 1.0),
        ct_shape=ct_shape,
        dose_spacing=(3.0, 3.0, 3.0),
        dose_center=(3.0, 5.0, 2.0),
        date="20190601",
    )
    last = PhantomCourse(
        label="course 3 (2023, 30 Gy/5 fx)" if n_courses == 3 else "course 2 (2023, 30 Gy/5 fx)",
        fractions=5,
        prescription_gy=30.0,
        blobs=(GaussianBlob((0.0, 0.0, 5.0), 18.0, 33.0),),
        shares_reference_frame=True,
        ct_spacing=ct_spacing,
        ct_shape=ct_shape,
        dose_spacing=(3.0, 3.0, 3.0),
        date="20230901",
    )
    courses = (first, middle, last) if n_courses == 3 else (first, last)
    structures = (
        Sphere("PTV_reirr", (0.0, 0.0, 5.0), 15.0, "PTV"),
        Cylinder("SpinalCanal", (0.0, 40.0, 0.0), 6.0, 45.0, roi_type="ORGAN"),
        Sphere("OAR_sphere", (20.0, 15.0, -5.0), 10.0, "ORGAN"),
        Cylinder(
            "OAR_tilted", (-25.0, -20.0, 0.0), 7.0, 25.0, axis=(0.3, 0.2, 1.0), roi_type="ORGAN"
        ),
    )
    return Phantom(courses=courses, structures=structures)


# --------------------------------------------------------------------------------------
# DICOM writing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomCourseFiles:
    """Files of one course."""

    ct: tuple[Path, ...]
    rtstruct: Path
    rtplan: Path
    rtdose: Path
    frame_of_reference_uid: str
    registration: Path | None  # REG to the reference frame (None when sharing it)


@dataclass(frozen=True)
class PhantomCase:
    """Where a written phantom case is, per course (oldest first)."""

    root: Path
    phantom: Phantom
    courses: tuple[PhantomCourseFiles, ...]


def _contours(
    shape, grid: Grid, to_reference: NDArray, raster_mm: float = 0.5
) -> list[tuple[int, NDArray]]:
    """Closed planar contours of ``shape`` on the axial planes of ``grid`` (course frame).

    The indicator is sampled on a fine in-plane raster and outlined with marching squares;
    the contour error is a fraction of ``raster_mm``.
    """
    from skimage import measure

    out = []
    # the shape's bounding box, mapped into the course frame, limits the raster
    lo, hi = shape.bounds()
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    inverse = np.linalg.inv(to_reference)
    corners = corners @ inverse[:3, :3].T + inverse[:3, 3]
    c_lo, c_hi = corners.min(axis=0) - 2 * raster_mm, corners.max(axis=0) + 2 * raster_mm
    nk = grid.shape[0]
    sz = grid.spacing[2]
    xs = np.arange(c_lo[0], c_hi[0] + raster_mm, raster_mm)
    ys = np.arange(c_lo[1], c_hi[1] + raster_mm, raster_mm)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    for k in range(nk):
        z = grid.origin[2] + sz * k
        if z < c_lo[2] or z > c_hi[2]:
            continue
        pts = np.stack([xx, yy, np.full_like(xx, z)], axis=-1)
        ref = pts @ to_reference[:3, :3].T + to_reference[:3, 3]
        inside = shape.contains(ref).astype(float)
        if not inside.any():
            continue
        for contour in measure.find_contours(np.pad(inside, 1), 0.5):
            rows, cols = contour[:, 0] - 1, contour[:, 1] - 1
            px = xs[0] + cols * raster_mm
            py = ys[0] + rows * raster_mm
            poly = np.stack([px, py, np.full_like(px, z)], axis=-1)[:-1]  # closed: drop repeat
            if len(poly) >= 3:
                out.append((k, poly))
    return out


def write_phantom_case(
    phantom: Phantom, directory: str | Path, *, contour_raster_mm: float = 0.5
) -> PhantomCase:
    """Write CT, RTSTRUCT, RTPLAN and RTDOSE of every course, and REG objects.

    Layout: ``directory/course<N>/CT/CT_<k>.dcm``, ``RS.dcm``, ``RP.dcm``, ``RD.dcm`` and,
    for a course in its own frame, ``REG_to_reference.dcm``.  ``contour_raster_mm`` is the
    in-plane raster the contours are traced on (coarser: fewer contour points, faster to
    write, contour error a fraction of the raster).
    """
    from pydicom.uid import generate_uid

    from reirrad.io.export import write_rtdose
    from reirrad.io.registration_io import write_spatial_registration

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    reference_for = generate_uid()
    out = []
    for index, course in enumerate(phantom.courses):
        folder = root / f"course{index + 1}"
        (folder / "CT").mkdir(parents=True, exist_ok=True)
        shares = course.shares_reference_frame or index == phantom.reference_index
        series = _CourseSeries(
            phantom, course, index, generate_uid(), reference_for if shares else generate_uid()
        )
        ct = _write_phantom_ct(series, folder)
        rs_path, rs_uid = _write_phantom_rtstruct(series, folder, ct, contour_raster_mm)
        rp = _phantom_rtplan(series, rs_uid)
        rp_path = folder / "RP.dcm"
        rp.save_as(rp_path, enforce_file_format=True)
        rd_path = write_rtdose(
            phantom.course_dose(index),
            folder / "RD.dcm",
            frame_of_reference_uid=series.frame_uid,
            series_description=f"{course.label} physical dose",
            summation_type="PLAN",
            study_instance_uid=series.study_uid,
            referenced_plan_uid=rp.SOPInstanceUID,
            patient={
                "PatientName": "Phantom^Reirrad",
                "PatientID": phantom.patient_id,
                "PatientSex": "O",
            },
        )
        reg_path = None
        if not shares:
            reg_path = write_spatial_registration(
                folder / "REG_to_reference.dcm",
                course.to_reference,
                moving_frame_uid=series.frame_uid,
                reference_frame_uid=reference_for,
                template=rp,  # the patient and study of the course, as a planning system writes
                study_instance_uid=series.study_uid,
                description=f"{course.label} to reference (phantom, exact)",
            )
        out.append(
            PhantomCourseFiles(ct.paths, rs_path, rp_path, rd_path, series.frame_uid, reg_path)
        )
    return PhantomCase(root, phantom, tuple(out))


@dataclass(frozen=True)
class _CourseSeries:
    """What every object of one phantom course shares: patient, study, frame of reference."""

    phantom: Phantom
    course: PhantomCourse
    index: int
    study_uid: str
    frame_uid: str

    def header(self, ds, modality: str, series_uid: str, description: str) -> None:
        """Patient, study, series and frame of reference attributes of one object."""
        ds.PatientName = "Phantom^Reirrad"
        ds.PatientID = self.phantom.patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = self.study_uid
        ds.StudyDate = self.course.date
        ds.StudyTime = "090000"
        ds.StudyID = str(self.index + 1)
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = self.course.label
        ds.Modality = modality
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = {"CT": 1, "RTSTRUCT": 2, "RTPLAN": 3}.get(modality, 4)
        ds.SeriesDescription = description[:64]
        ds.Manufacturer = "reirrad phantom"
        ds.FrameOfReferenceUID = self.frame_uid
        ds.PositionReferenceIndicator = ""


@dataclass(frozen=True)
class _CTSeries:
    paths: tuple[Path, ...]
    uids: tuple[str, ...]
    series_uid: str
    grid: Grid


def _write_phantom_ct(series: _CourseSeries, folder: Path) -> _CTSeries:
    """One CT slice file per plane of the course's CT grid (HU, 16-bit signed)."""
    from pydicom.uid import generate_uid

    from reirrad.io.export import _new_dataset

    hu, grid = series.phantom.course_ct(series.index)
    series_uid = generate_uid()
    paths, uids = [], []
    sx, sy, sz = grid.spacing
    for k in range(grid.shape[0]):
        uid = generate_uid()
        ds = _new_dataset(CT_IMAGE_STORAGE, uid)
        series.header(ds, "CT", series_uid, f"{series.course.label} CT")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        position = grid.index_to_patient([0, 0, k])
        ds.ImagePositionPatient = [round(float(v), 4) for v in position]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = round(float(position[2]), 4)
        ds.SliceThickness = sz
        ds.PixelSpacing = [sy, sx]
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.PixelData = hu[k].astype("<i2").tobytes()
        path = folder / "CT" / f"CT_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        uids.append(uid)
    return _CTSeries(tuple(paths), tuple(uids), series_uid, grid)


def _write_phantom_rtstruct(
    series: _CourseSeries, folder: Path, ct: _CTSeries, raster_mm: float
) -> tuple[Path, str]:
    """The BODY and every phantom structure, traced on the CT planes; returns (path, UID)."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    from reirrad.io.export import _new_dataset

    course, phantom = series.course, series.phantom
    rs_uid = generate_uid()
    rs = _new_dataset(RT_STRUCT_STORAGE, rs_uid)
    series.header(rs, "RTSTRUCT", generate_uid(), f"{course.label} structures")
    rs.InstanceNumber = 1
    rs.StructureSetLabel = "PHANTOM"
    rs.StructureSetDate = course.date
    rs.StructureSetTime = "100000"
    rs.ReferencedFrameOfReferenceSequence = [_referenced_frame(series, ct)]
    rois, roi_contours, observations = [], [], []
    shapes = [("BODY", "EXTERNAL", _EllipticBody(phantom))] + [
        (s.name, s.roi_type, s) for s in phantom.structures
    ]
    for number, (name, roi_type, shape) in enumerate(shapes, start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = series.frame_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ROIDisplayColor = [255, (number * 60) % 256, (number * 110) % 256]
        rc.ContourSequence = [
            _contour_item(ct.uids[k], poly)
            for k, poly in _contours(shape, ct.grid, course.to_reference, raster_mm)
        ]
        roi_contours.append(rc)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        obs.RTROIInterpretedType = roi_type
        obs.ROIInterpreter = ""
        observations.append(obs)
    rs.StructureSetROISequence = rois
    rs.ROIContourSequence = roi_contours
    rs.RTROIObservationsSequence = observations
    path = folder / "RS.dcm"
    rs.save_as(path, enforce_file_format=True)
    return path, rs_uid


def _referenced_frame(series: _CourseSeries, ct: _CTSeries):
    """Referenced Frame of Reference Sequence item: frame -> study -> CT series -> slices."""
    from pydicom.dataset import Dataset

    contour_images = []
    for uid in ct.uids:
        item = Dataset()
        item.ReferencedSOPClassUID = CT_IMAGE_STORAGE
        item.ReferencedSOPInstanceUID = uid
        contour_images.append(item)
    series_item = Dataset()
    series_item.SeriesInstanceUID = ct.series_uid
    series_item.ContourImageSequence = contour_images
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study_item.ReferencedSOPInstanceUID = series.study_uid
    study_item.RTReferencedSeriesSequence = [series_item]
    for_item = Dataset()
    for_item.FrameOfReferenceUID = series.frame_uid
    for_item.RTReferencedStudySequence = [study_item]
    return for_item


def _contour_item(image_uid: str, poly: NDArray[np.float64]):
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    c = Dataset()
    image = Dataset()
    image.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    image.ReferencedSOPInstanceUID = image_uid
    c.ContourImageSequence = [image]
    c.ContourGeometricType = "CLOSED_PLANAR"
    c.NumberOfContourPoints = len(poly)
    # the formatted string as is: byte-identical to assigning the list of strings, without
    # pydicom converting each of ~10^5 values to a DS object
    c.add(DataElement(0x30060050, "DS", "\\".join(f"{v:.3f}" for v in poly.flat),
                      already_converted=True))  # fmt: skip
    return c


def _phantom_rtplan(series: _CourseSeries, rs_uid: str):
    """An RT Plan with the prescription and fractions of the course (no beams: the dose is
    analytic)."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    from reirrad.io.export import _new_dataset

    course, index = series.course, series.index
    rp = _new_dataset(RT_PLAN_STORAGE, generate_uid())
    series.header(rp, "RTPLAN", generate_uid(), f"{course.label} plan")
    rp.InstanceNumber = 1
    rp.RTPlanLabel = f"C{index + 1}"[:16]
    rp.RTPlanName = course.label[:64]
    rp.RTPlanDate = course.date
    rp.RTPlanTime = "110000"
    rp.RTPlanGeometry = "PATIENT"
    rp.PlanIntent = "CURATIVE"
    ref_ss = Dataset()
    ref_ss.ReferencedSOPClassUID = RT_STRUCT_STORAGE
    ref_ss.ReferencedSOPInstanceUID = rs_uid
    rp.ReferencedStructureSetSequence = [ref_ss]
    dose_ref = Dataset()
    dose_ref.DoseReferenceNumber = 1
    dose_ref.DoseReferenceUID = generate_uid()
    dose_ref.DoseReferenceStructureType = "SITE"
    dose_ref.DoseReferenceDescription = "PTV"
    dose_ref.DoseReferenceType = "TARGET"
    dose_ref.TargetPrescriptionDose = f"{course.prescription_gy:g}"
    rp.DoseReferenceSequence = [dose_ref]
    fg = Dataset()
    fg.FractionGroupNumber = 1
    fg.NumberOfFractionsPlanned = course.fractions
    fg.NumberOfBeams = 0
    fg.NumberOfBrachyApplicationSetups = 0
    fg.ReferencedBeamSequence = []
    rp.FractionGroupSequence = [fg]
    rp.ApprovalStatus = "UNAPPROVED"
    return rp


@dataclass(frozen=True)
class _EllipticBody:
    """The external contour: the body's elliptic cylinder."""

    phantom: Phantom

    def contains(self, xyz: NDArray) -> NDArray[np.bool_]:
        p = np.asarray(xyz)
        a, b = self.phantom.body_semi_axes
        return ((p[..., 0] / a) ** 2 + (p[..., 1] / b) ** 2 <= 1.0) & (
            np.abs(p[..., 2]) <= self.phantom.body_half_length
        )

    def bounds(self) -> tuple[NDArray, NDArray]:
        a, b = self.phantom.body_semi_axes
        h = self.phantom.body_half_length
        return np.array([-a, -b, -h]), np.array([a, b, h])


#: Course dates of the example case (oldest first); intervals of 3.1 and 4.2 years.
EXAMPLE_DATES = (
    ("2016-03-01", "2016-04-10"),
    ("2019-06-01", "2019-06-12"),
    ("2023-09-01", "2023-09-08"),
)


def course_dicom_entry(files, root: Path) -> dict:
    """The ``dicom`` section of a case-file course for one written phantom course (paths
    relative to the case file's folder ``root``)."""
    dicom = {
        "rtdose": str(files.rtdose.relative_to(root)),
        "rtstruct": str(files.rtstruct.relative_to(root)),
        "rtplan": str(files.rtplan.relative_to(root)),
        "ct": str(files.ct[0].parent.relative_to(root)),
    }
    if files.registration is not None:
        dicom["registration"] = {"method": "reg", "file": str(files.registration.relative_to(root))}
    return dicom


def write_example_case(
    directory: str | Path, *, n_courses: int = 3, small: bool = True, ct_slices: int | None = None
) -> Path:
    """Write the phantom's DICOM files and a case file that uses them; return the case path.

    The oldest course is mapped through its DICOM REG object; the others share the reference
    frame.  Every organ at risk uses alpha/beta 3 Gy and the ``nieder-step`` recovery rule, the
    target alpha/beta 10 Gy; the ``reirradiation`` constraint set is checked.  The case is for
    trying ``reirrad accumulate``, ``assess`` and ``report`` on real DICOM files whose doses
    are known analytically (:meth:`Phantom.physical_dose`).  ``ct_slices``: see
    :func:`default_phantom`.
    """
    import yaml

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = write_phantom_case(default_phantom(n_courses, small=small, ct_slices=ct_slices), root)
    dates = EXAMPLE_DATES[-n_courses:]
    courses = []
    for number, (files, spec, (start, end)) in enumerate(
        zip(written.courses, written.phantom.courses, dates, strict=True), start=1
    ):
        dicom = course_dicom_entry(files, root)
        courses.append(
            {
                "id": f"C{number}",
                "label": spec.label,
                "start": start,
                "end": end,
                "fractions": spec.fractions,
                "prescriptions": [
                    {
                        "target": "PTV_reirr",
                        "dose_gy": spec.prescription_gy,
                        "fractions": spec.fractions,
                    }
                ],
                "dicom": dicom,
            }
        )
    case = {
        "reirrad_case": 1,
        "patient": {"id": "PHANTOM-EXAMPLE", "sex": "unknown"},
        "tissue_defaults": {
            "target": {"alpha_beta": 10, "recovery": "none"},
            "organ_at_risk": {"alpha_beta": 3, "recovery": "nieder-step"},
        },
        "structures": [
            {"name": "PTV_reirr", "role": "target"},
            {"name": "SpinalCanal", "role": "organ_at_risk", "organ": "spinal_cord"},
            {"name": "OAR_sphere", "role": "organ_at_risk"},
            {"name": "OAR_tilted", "role": "organ_at_risk"},
        ],
        "courses": courses,
        "analysis": {"reirradiation_type_threshold_gy": 10},
        "constraints": {"sets": ["reirradiation"]},
        "exploration": {"target": "PTV_reirr", "new_course": courses[-1]["id"]},
    }
    path = root / "case.yaml"
    header = (
        "# Synthetic phantom case written by `reirrad phantom` (reirrad.io.phantom): analytic dose\n"
        "# fields, known rigid transforms between frames; not patient data.\n"
    )
    path.write_text(header + yaml.safe_dump(case, sort_keys=False))
    return path
