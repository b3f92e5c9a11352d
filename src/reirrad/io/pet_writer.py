"""Write PET-derived volumes as an RTSTRUCT, and synthetic PET series with known activity.

An RTSTRUCT ROI drawn from a voxel mask (e.g. a threshold volume) is contoured slice by
slice with marching squares (``skimage.measure.find_contours``, Lorensen & Cline 1987 in
two dimensions) at the half-way level of the mask, so each contour runs between voxels
inside and outside; holes become separate contours, which readers combine by the
even-odd rule (DICOM PS3.3 C.8.8.6).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from skimage import measure

from reirrad.core.geometry import Grid
from reirrad.errors import InputError
from reirrad.io.dicom import PET_IMAGE_STORAGE, RT_STRUCTURE_SET_STORAGE
from reirrad.io.export import _new_dataset

__all__ = ["mask_contours", "write_pet_series", "write_rtstruct_rois"]

PathLike = str | os.PathLike


def mask_contours(
    mask: NDArray[np.bool_], grid: Grid, to_frame: NDArray[np.float64] | None = None
) -> list[NDArray[np.float64]]:
    """Closed planar contours (patient mm, one ``(N, 3)`` array each) around a voxel mask.

    ``to_frame`` is a rigid 4x4 matrix applied to the points (e.g. PET frame -> planning
    CT frame); a rigid map keeps each contour planar.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != grid.shape:
        raise ValueError(f"mask {mask.shape} must have the grid's shape {grid.shape}")
    out = []
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        plane = np.pad(mask[k].astype(float), 1)  # closes contours that touch the edge
        for path in measure.find_contours(plane, 0.5):
            if len(path) < 4:
                continue
            jj, ii = path[:-1, 0] - 1.0, path[:-1, 1] - 1.0  # find_contours repeats the start
            ijk = np.column_stack([ii, jj, np.full(ii.shape, float(k))])
            points = np.atleast_2d(grid.index_to_patient(ijk))
            if to_frame is not None:
                points = points @ to_frame[:3, :3].T + to_frame[:3, 3]
            out.append(points)
    return out


def write_rtstruct_rois(
    path: PathLike,
    rois: Mapping[str, NDArray[np.bool_]],
    grid: Grid,
    *,
    frame_of_reference_uid: str,
    referenced_series_uid: str | None,
    template: Dataset | None = None,
    description: str = "",
    to_frame: NDArray[np.float64] | None = None,
) -> Path:
    """Write voxel masks on ``grid`` as the ROIs of a new RTSTRUCT.

    Parameters
    ----------
    rois
        ROI name -> mask on ``grid``.  An empty mask is refused (an ROI without contours
        would be read as "not drawn").
    frame_of_reference_uid, referenced_series_uid
        Frame of the grid, and the image series the masks were drawn on.
    template
        A dataset (e.g. a PET slice) whose patient and study attributes are copied.
    description
        Structure Set Description, e.g. the threshold rule that made the ROI.
    to_frame
        Rigid matrix from the grid's frame to ``frame_of_reference_uid`` when the ROI is
        written on another frame (e.g. the planning CT's, through a registration).
    """
    out = Path(path)
    if out.exists():
        raise InputError("exists; choose a new file name", source=str(out))
    if not out.parent.is_dir():
        raise InputError("folder does not exist", source=str(out.parent))
    uid = generate_uid()
    ds = _new_dataset(RT_STRUCTURE_SET_STORAGE, uid)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "ReferringPhysicianName"):  # fmt: skip
        setattr(ds, keyword, getattr(template, keyword, "") if template is not None else "")
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = generate_uid()
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.Manufacturer = "reirrad"
    ds.StructureSetLabel = "PET"
    ds.StructureSetDescription = description[:1024]
    now = dt.datetime.now()
    ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.FrameOfReferenceUID = frame_of_reference_uid
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_of_reference_uid
    if referenced_series_uid:
        series = Dataset()
        series.SeriesInstanceUID = referenced_series_uid
        study = Dataset()
        study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        study.ReferencedSOPInstanceUID = ds.StudyInstanceUID
        study.RTReferencedSeriesSequence = [series]
        frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for number, (name, mask) in enumerate(rois.items(), start=1):
        contours = mask_contours(mask, grid, to_frame)
        if not contours:
            raise InputError("the volume is empty: nothing to contour", field=f"ROI {name}")
        _add_roi(ds, number, name, contours, frame_of_reference_uid)
    ds.save_as(out, enforce_file_format=True)
    return out


def _add_roi(ds: Dataset, number: int, name: str, contours, frame_uid: str) -> None:
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = name[:64]
    roi.ROIGenerationAlgorithm = "SEMIAUTOMATIC"
    ds.StructureSetROISequence.append(roi)
    items = []
    for polygon in contours:
        item = Dataset()
        item.ContourGeometricType = "CLOSED_PLANAR"
        item.NumberOfContourPoints = len(polygon)
        item.ContourData = [f"{v:.3f}" for v in polygon.ravel()]
        items.append(item)
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = number
    roi_contour.ROIDisplayColor = [255, 0, 0]
    roi_contour.ContourSequence = items
    ds.ROIContourSequence.append(roi_contour)
    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = "GTV"
    observation.ROIInterpreter = ""
    ds.RTROIObservationsSequence.append(observation)


def write_pet_series(
    directory: PathLike,
    activity_bq_ml: NDArray,
    grid: Grid,
    *,
    weight_kg: float = 70.0,
    injected_bq: float = 3.7e8,
    half_life_s: float = 6586.2,
    injection: dt.datetime = dt.datetime(2025, 3, 1, 9, 0, 0),
    scan_start: dt.datetime = dt.datetime(2025, 3, 1, 10, 0, 0),
    decay_correction: str = "START",
    units: str = "BQML",
    start_datetime: bool = False,
    extra: Mapping[str, object] | None = None,
) -> list[Path]:
    """Write a synthetic PET series (one file per slice, 16-bit with a per-slice slope).

    For tests and examples with a known answer: the stored values are ``activity_bq_ml``
    to within the 16-bit quantisation of each slice's Rescale Slope (max/32000).
    ``start_datetime`` also writes Radiopharmaceutical Start DateTime.  ``extra``
    sets further attributes on every slice (e.g. to remove or break a tag).
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    values = np.asarray(activity_bq_ml, dtype=np.float64)
    if values.shape != grid.shape:
        raise ValueError(f"activity {values.shape} must have the grid's shape {grid.shape}")
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    sx, sy, sz = (float(v) for v in grid.spacing)
    paths = []
    for k in range(grid.shape[0]):
        ds = _new_dataset(PET_IMAGE_STORAGE, generate_uid())
        ds.PatientName, ds.PatientID, ds.PatientWeight = "Phantom^PET", "PET-PHANTOM", weight_kg
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.Units, ds.DecayCorrection = "PT", units, decay_correction
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT"] if decay_correction != "NONE" else ["ATTN"]
        ds.SeriesDate = ds.AcquisitionDate = scan_start.strftime("%Y%m%d")
        ds.SeriesTime = ds.AcquisitionTime = scan_start.strftime("%H%M%S")
        item = Dataset()
        item.RadiopharmaceuticalStartTime = injection.strftime("%H%M%S")
        if start_datetime:
            item.RadiopharmaceuticalStartDateTime = injection.strftime("%Y%m%d%H%M%S")
        item.RadionuclideTotalDose = f"{injected_bq:.6g}"
        item.RadionuclideHalfLife = f"{half_life_s:g}"
        ds.RadiopharmaceuticalInformationSequence = [item]
        ds.ImagePositionPatient = [round(float(v), 4) for v in grid.index_to_patient([0, 0, k])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [sy, sx], sz
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        peak = float(np.abs(values[k]).max())
        slope = peak / 32000.0 if peak > 0 else 1.0
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", 0
        ds.PixelData = np.round(values[k] / float(f"{slope:.10g}")).astype("<i2").tobytes()
        for keyword, value in (extra or {}).items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        path = root / f"PT_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
