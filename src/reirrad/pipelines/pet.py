"""Measure a PET series in a region, segment it by a threshold, and place it in an old dose.

One entry point, :func:`measure_pet`, used by ``reirrad pet``: read the series, build the
region (an RTSTRUCT ROI on the PET's frame, or a box in patient coordinates), measure
SUVmax/SUVpeak/SUVmean, optionally segment by a threshold rule and write the result as an
RTSTRUCT ROI, and optionally classify the segmented recurrence against an earlier
course's RTDOSE in the same frame of reference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray

from reirrad.core.dvh import structure_occupancy
from reirrad.core.geometry import Grid
from reirrad.core.pet import ThresholdRule, UptakeStatistics, threshold_volume, uptake_statistics
from reirrad.core.recurrence_site import RecurrenceSite, classify_recurrence_site
from reirrad.core.registration import Transform, resample_dose
from reirrad.core.tissue import membership
from reirrad.errors import InputError
from reirrad.io.dicom import read_rtdose, read_rtstruct
from reirrad.io.pet import PetSeries, SuvCalibration, read_pet_series
from reirrad.io.pet_writer import write_rtstruct_rois
from reirrad.io.registration_io import read_spatial_registration

__all__ = ["PetMeasurement", "measure_pet", "parse_box"]

PathLike = str | os.PathLike


@dataclass(frozen=True)
class PetMeasurement:
    """What ``reirrad pet`` reports, with the assumptions behind it.

    Attributes
    ----------
    series_instance_uid, frame_of_reference_uid, source
        The PET series measured.
    calibration
        The SUVbw calibration (header values, decay reference, notes).
    region
        How the region was given (ROI name and file, or the box).
    statistics
        SUVmax, SUVpeak, SUVmean and volume of the region.
    threshold, threshold_level, threshold_volume_cc
        The rule, its SUV level in this region and the volume it segments.
    rtstruct
        File the segmented volume was written to.
    site
        The segmented volume (or the region when no threshold) against an earlier dose.
    assumptions
        Everything a reader must know to use the numbers.
    """

    series_instance_uid: str | None
    frame_of_reference_uid: str | None
    source: str
    calibration: SuvCalibration
    region: str
    statistics: UptakeStatistics
    threshold: ThresholdRule | None = None
    threshold_level: float | None = None
    threshold_volume_cc: float | None = None
    rtstruct: str | None = None
    site: RecurrenceSite | None = None
    assumptions: tuple[str, ...] = ()
    mask: NDArray[np.bool_] | None = field(default=None, repr=False)


def parse_box(text: str) -> tuple[tuple[float, float], ...]:
    """``"x0:x1,y0:y1,z0:z1"`` in patient mm -> three (low, high) pairs.

    Raises
    ------
    InputError
        Not three ranges of two finite numbers with low < high.
    """
    try:
        parts = [tuple(float(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        parts = []
    ok = len(parts) == 3 and all(len(p) == 2 and all(np.isfinite(p)) and p[0] < p[1] for p in parts)
    if not ok:
        raise InputError(
            f"{text!r} is not a box; write x0:x1,y0:y1,z0:z1 in mm with x0 < x1 etc.",
            source="--box",
        )
    return tuple(parts)  # type: ignore[return-value]


def measure_pet(
    series: PathLike,
    *,
    structures: PathLike | None = None,
    roi: str | None = None,
    box: str | None = None,
    threshold: str | None = None,
    rtstruct_out: PathLike | None = None,
    dose: PathLike | None = None,
    prescription_gy: float | None = None,
    registration: PathLike | None = None,
) -> PetMeasurement:
    """Measure ``series`` in a region; see the module docstring.

    Raises
    ------
    InputError
        Neither or both of ROI and box; an ROI on another frame of reference; a region
        outside the image; a bad threshold; a dose without a prescription or in another
        frame; the recurrence partly outside the dose grid.
    """
    pet = read_pet_series(series)
    transform = _registration(pet, registration)
    region, described = _region(pet, structures, roi, box)
    suv = pet.suv()
    statistics = uptake_statistics(suv, pet.grid, region)
    assumptions = [
        f"SUVbw: Units {pet.calibration.units}, decay to {pet.calibration.reference}",
        *pet.calibration.notes,
        "SUVpeak: highest mean over a 1 cm^3 sphere centred in the region (PERCIST)",
    ]
    rule = level = volume = None
    segmented = region
    if threshold is not None:
        rule = _rule(threshold)
        segmented, level = threshold_volume(suv, region, rule)
        volume = float(segmented.sum()) * pet.grid.voxel_volume_cc
        assumptions.append(f"threshold volume: {rule.describe()} inside {described}")
    written = None
    if rtstruct_out is not None:
        written = _write_rtstruct(pet, rtstruct_out, segmented, rule, described, transform)
    if transform is not None:
        assumptions.append(f"PET mapped to the planning frame by {transform.description}")
    site = None
    if dose is not None:
        site = _site(pet, segmented, dose, prescription_gy, transform)
        how = "same frame of reference" if transform is None else "through the registration"
        assumptions.append(
            f"recurrence site: earlier dose resampled trilinearly onto the PET grid ({how})"
        )
    return PetMeasurement(
        series_instance_uid=pet.series_instance_uid,
        frame_of_reference_uid=pet.frame_of_reference_uid,
        source=str(series),
        calibration=pet.calibration,
        region=described,
        statistics=statistics,
        threshold=rule,
        threshold_level=level,
        threshold_volume_cc=volume,
        rtstruct=written,
        site=site,
        assumptions=tuple(assumptions),
        mask=segmented,
    )


def _rule(text: str) -> ThresholdRule:
    try:
        return ThresholdRule.parse(text)
    except ValueError as error:
        raise InputError(
            f"{text!r}: {error}; write an SUV (e.g. 2.5) or a percentage of SUVmax (e.g. 40%)",
            source="--threshold",
        ) from None


def _region(
    pet: PetSeries, structures: PathLike | None, roi: str | None, box: str | None
) -> tuple[NDArray[np.bool_], str]:
    if (roi is None) == (box is None):
        raise InputError(
            "give the region either as --structures FILE --roi NAME or as --box; the "
            "whole-image maximum is usually the bladder or brain, not the tumour",
            source="--roi/--box",
        )
    if box is not None:
        return _box_region(pet.grid, parse_box(box)), f"box {box} mm"
    if structures is None:
        raise InputError("--roi needs --structures (the RTSTRUCT holding it)", source="--roi")
    structure_set = read_rtstruct(structures)
    if structure_set.frame_of_reference_uid != pet.frame_of_reference_uid:
        raise InputError(
            "the structure set is in another frame of reference than the PET; contour on "
            "the PET/CT or register first",
            source=str(structures),
            field="FrameOfReferenceUID",
        )
    occupancy = structure_occupancy(structure_set.get(roi), pet.grid)
    if not occupancy.any():
        raise InputError(f"ROI {roi!r} lies outside the PET image", source=str(structures))
    return membership(occupancy), f"ROI {roi} ({Path(structures).name})"


def _box_region(grid: Grid, box) -> NDArray[np.bool_]:
    k, j, i = np.indices(grid.shape, dtype=float)
    xyz = grid.index_to_patient(np.stack([i, j, k], axis=-1))
    inside = np.ones(grid.shape, bool)
    for axis, (low, high) in enumerate(box):
        inside &= (xyz[..., axis] >= low) & (xyz[..., axis] <= high)
    if not inside.any():
        raise InputError("the box holds no voxel centre of the PET image", source="--box")
    return inside


def _registration(pet: PetSeries, path: PathLike | None) -> Transform | None:
    """PET frame -> planning frame from a REG file (rigid only)."""
    if path is None:
        return None
    transform = read_spatial_registration(path, moving_frame_uid=pet.frame_of_reference_uid)
    if transform.kind == "deformable":
        raise InputError(
            "a deformable registration is not used for PET contours; give a rigid one",
            source=str(path),
        )
    return transform


def _write_rtstruct(
    pet: PetSeries, out: PathLike, mask, rule, described: str, transform: Transform | None
) -> str:
    if not mask.any():
        raise InputError("the threshold leaves no voxel: nothing to write", source="--threshold")
    name = f"PET {rule.describe()}"[:64] if rule is not None else "PET region"
    path = write_rtstruct_rois(
        out,
        {name: mask},
        pet.grid,
        frame_of_reference_uid=(
            pet.frame_of_reference_uid if transform is None else transform.reference_frame_uid
        )
        or "",
        # on another frame the PET series is not the image the contours lie on
        referenced_series_uid=pet.series_instance_uid if transform is None else None,
        template=pydicom.dcmread(pet.sources[0], stop_before_pixels=True),
        description=f"{name}, inside {described}",
        to_frame=None if transform is None else transform.matrix,
    )
    return str(path)


def _site(
    pet: PetSeries,
    mask,
    dose_path: PathLike,
    prescription_gy: float | None,
    transform: Transform | None,
):
    if prescription_gy is None or not prescription_gy > 0:
        raise InputError(
            "the earlier course's prescription (Gy) is needed to place the recurrence",
            source="--prescription",
        )
    dose = read_rtdose(dose_path)
    frame = dose.provenance.get("frame_of_reference_uid")
    expected = pet.frame_of_reference_uid if transform is None else transform.reference_frame_uid
    if frame != expected:
        raise InputError(
            "the RTDOSE is in another frame of reference than the PET"
            + ("" if transform is None else " registration's planning frame")
            + "; give the registration between the PET and this dose's planning CT",
            source=str(dose_path),
            field="FrameOfReferenceUID",
        )
    to_pet = None
    if transform is not None:  # the dose lives in the planning frame: map it onto the PET
        to_pet = Transform(
            np.linalg.inv(transform.matrix),
            "reg",
            moving_frame_uid=transform.reference_frame_uid,
            reference_frame_uid=transform.moving_frame_uid,
            description=f"inverse of {transform.description}",
        )
    mapped = resample_dose(dose, pet.grid, to_pet)
    if not mapped.coverage[mask].all():
        raise InputError(
            "part of the recurrence lies outside the dose grid: its dose there is unknown",
            source=str(dose_path),
        )
    return classify_recurrence_site(
        mapped.dose.values, pet.grid, mask.astype(float), prescription_gy
    )
