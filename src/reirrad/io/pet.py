"""Read a PET series and the header values its body-weight SUV needs.

The geometry comes from :func:`reirrad.io.dicom.read_ct_series` (the same slice ordering
and checks as a CT) and each slice's values from :func:`reirrad.io.dicom.read_slice_values`
(Rescale Slope is per slice in PET).  What SUV needs from the header follows the QIBA
vendor-neutral pseudo-code (see :mod:`reirrad.core.pet`, reference [2]); every missing or
implausible value is a refusal naming the file and the field.

References
----------
.. [1] DICOM PS3.3 C.8.9.1 PET Series Module (Units, Decay Correction, Corrected Image)
   and C.8.9.2 PET Isotope Module (Radiopharmaceutical Information Sequence).
.. [2] QIBA vendor-neutral SUV pseudo-code, secondary source: as reproduced publicly
   (docest.com/doc/550456): Philips Units CNTS use the private SUV Scale Factor
   (7053,1000) or the Activity Concentration Scale Factor (7053,1009) of the private
   creator "Philips PET Private Group"; the radiopharmaceutical start date, when only a
   time is given, is taken as the series date, "but consider spanning midnight"; a series
   time after the acquisition time marks a post-processed series, for which the GE private
   scan time (0009,100D) is used.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM

from reirrad.core.geometry import Grid
from reirrad.core.pet import suv_body_weight_factor
from reirrad.errors import InputError
from reirrad.io.dicom import (
    MAX_GRID_VOXELS,
    PET_IMAGE_STORAGE,
    read_ct_series,
    read_dicom,
    read_slice_values,
)

__all__ = ["PetSeries", "SuvCalibration", "read_pet_series"]

PathLike = str | os.PathLike

#: Units (0054,1001) read: activity concentration, Philips counts, or SUVbw itself.
SUPPORTED_UNITS = ("BQML", "CNTS", "GML")
#: Plausibility bounds, not published limits: a patient of 1-500 kg; an injected activity
#: of 1 MBq-50 GBq (clinical FDG is a few hundred MBq); a half-life of 1 s-1 year.
WEIGHT_KG = (1.0, 500.0)
INJECTED_BQ = (1e6, 5e10)
HALF_LIFE_S = (1.0, 3.2e7)
#: An uptake time beyond a day is refused as a wrong date or time, not extrapolated.
MAX_UPTAKE_S = 86400.0

_PHILIPS_CREATOR = "Philips PET Private Group"
_GE_CREATOR = "GEMS_PETD_01"


@dataclass(frozen=True)
class SuvCalibration:
    """How stored PET values become SUVbw, with every number it used.

    Attributes
    ----------
    units
        Units (0054,1001) of the series.
    decay_correction
        Decay Correction (0054,1102): START, ADMIN or NONE.
    weight_kg, injected_bq, half_life_s
        Patient's Weight, Radionuclide Total Dose and Half Life as read.
    injection
        Radiopharmaceutical start date and time used.
    reference
        The time the decay runs to (START: scan start; NONE: each slice's acquisition).
    elapsed_s
        Seconds from injection to that time, per slice (k order).
    factor
        Per slice, what multiplies the slice's values to give SUVbw.
    notes
        Choices made on the way (midnight crossing, post-processed series time...).
    """

    units: str
    decay_correction: str
    weight_kg: float | None
    injected_bq: float | None
    half_life_s: float | None
    injection: dt.datetime | None
    reference: str
    elapsed_s: NDArray[np.float64] = field(repr=False)
    factor: NDArray[np.float64] = field(repr=False)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PetSeries:
    """A PET series' stored values (in its Units) with grid, identity and SUV calibration.

    Attributes
    ----------
    values
        ``values[k, j, i]`` after each slice's Rescale Slope/Intercept (Bq/ml for BQML).
    grid
        The voxel grid (k along the slice normal).
    calibration
        Per-slice SUVbw factors and the header values behind them.
    series_instance_uid, frame_of_reference_uid, sources
        Identity of the series and its slice files in k order.
    """

    values: NDArray[np.float32] = field(repr=False)
    grid: Grid
    calibration: SuvCalibration
    series_instance_uid: str | None
    frame_of_reference_uid: str | None
    sources: tuple[str, ...] = field(repr=False)

    def suv(self) -> NDArray[np.float64]:
        """Body-weight SUV of every voxel (g/ml)."""
        return self.values * self.calibration.factor[:, None, None]


def read_pet_series(
    paths: PathLike | Sequence[PathLike],
    *,
    series_instance_uid: str | None = None,
    max_voxels: int = MAX_GRID_VOXELS,
) -> PetSeries:
    """Read a PET series and derive its body-weight SUV calibration.

    Parameters
    ----------
    paths
        A directory of slices or a list of slice files.
    series_instance_uid
        Pick this series when the files hold several.
    max_voxels
        Largest volume read.

    Raises
    ------
    InputError
        Not a PET series; unsupported Units; decay correction missing or not stated in
        Corrected Image; images not attenuation corrected; weight, injected activity,
        half-life or times missing or implausible; an uptake time below 0 or above a day.
    """
    series = read_ct_series(paths, series_instance_uid=series_instance_uid)
    first = series.sources[0]
    if series.modality != "PT":
        raise InputError(
            f"is a {series.modality} series, not PET (Modality PT)", source=first, field="Modality"
        )
    k, rows, columns = series.grid.shape
    if k * rows * columns > max_voxels:
        raise InputError(
            f"{k}x{rows}x{columns} voxels exceed the limit of {max_voxels}",
            source=first,
            field="Rows/Columns/number of slices",
        )
    datasets = [
        read_dicom(source, modality="PT", sop_class_uids=(PET_IMAGE_STORAGE,))
        for source in series.sources
    ]
    values = np.empty(series.grid.shape, dtype=np.float32)
    for index, (source, ds) in enumerate(zip(series.sources, datasets, strict=True)):
        values[index] = read_slice_values(ds, source, rows, columns)
    calibration = _calibration(datasets, series.sources)
    return PetSeries(
        values=values,
        grid=series.grid,
        calibration=calibration,
        series_instance_uid=series.series_instance_uid,
        frame_of_reference_uid=series.frame_of_reference_uid,
        sources=series.sources,
    )


def _calibration(datasets: list[Dataset], sources: Sequence[str]) -> SuvCalibration:
    first, source = datasets[0], sources[0]
    units = _text(first, "Units", source)
    if units not in SUPPORTED_UNITS:
        raise InputError(
            f"Units {units!r} cannot be turned into SUV; supported: {', '.join(SUPPORTED_UNITS)}",
            source=source,
            field="Units",
        )
    for ds, other in zip(datasets[1:], sources[1:], strict=True):
        if _text(ds, "Units", other) != units:
            raise InputError(f"Units differ from {source}", source=other, field="Units")
    n = len(datasets)
    if units == "GML":
        decay = str(first.get("DecayCorrection", "") or "")
        return SuvCalibration(
            units, decay, None, None, None, None, "values are SUVbw already (Units GML)",
            np.zeros(n), np.ones(n), ("Units GML taken as body-weight SUV (QIBA)",),
        )  # fmt: skip
    _check_corrections(first, source)
    if units == "CNTS":
        return _philips_calibration(datasets, sources)
    return _activity_calibration(datasets, sources, np.ones(n))


def _check_corrections(ds: Dataset, source: str) -> str:
    value = ds.get("CorrectedImage") or []
    # one value comes back as a plain string, several as a MultiValue
    corrected = [str(v).upper() for v in ([value] if isinstance(value, str) else value)]
    decay = _text(ds, "DecayCorrection", source)
    if decay not in ("START", "ADMIN", "NONE"):
        raise InputError(
            f"Decay Correction {decay!r} is not one of START, ADMIN, NONE",
            source=source,
            field="DecayCorrection",
        )
    if "ATTN" not in corrected:
        raise InputError(
            "the images are not attenuation corrected (no ATTN in Corrected Image): "
            "their values are not activity concentrations and give no SUV",
            source=source,
            field="CorrectedImage",
        )
    if decay != "NONE" and not ({"DECY", "DECAY"} & set(corrected)):
        raise InputError(
            f"Decay Correction is {decay} but Corrected Image does not list DECY: the "
            "header contradicts itself; ask the PET site which is right",
            source=source,
            field="CorrectedImage",
        )
    return decay


def _activity_calibration(
    datasets: list[Dataset], sources: Sequence[str], to_bq_ml: NDArray[np.float64]
) -> SuvCalibration:
    first, source = datasets[0], sources[0]
    decay = _text(first, "DecayCorrection", source)
    weight = _bounded(first.get("PatientWeight"), WEIGHT_KG, source, "PatientWeight", "kg")
    item = _radiopharmaceutical(first, source)
    prefix = "RadiopharmaceuticalInformationSequence[0]."
    injected = _bounded(
        item.get("RadionuclideTotalDose"),
        INJECTED_BQ,
        source,
        prefix + "RadionuclideTotalDose",
        "Bq",
    )
    half_life = _bounded(
        item.get("RadionuclideHalfLife"), HALF_LIFE_S, source, prefix + "RadionuclideHalfLife", "s"
    )
    notes: list[str] = []
    if decay == "ADMIN":
        injection = _injection_time(first, item, source, None, notes)
        elapsed = np.zeros(len(datasets))
        reference = "administration (images decay-corrected to it)"
    elif decay == "START":
        scan = _scan_start(datasets, sources, notes)
        injection = _injection_time(first, item, source, scan, notes)
        elapsed = np.full(len(datasets), _uptake_seconds(injection, scan, source))
        reference = f"scan start {scan.isoformat(sep=' ')}"
    else:  # NONE: each slice holds the activity at its own acquisition time
        times = [_acquisition(ds, s) for ds, s in zip(datasets, sources, strict=True)]
        injection = _injection_time(first, item, source, min(times), notes)
        elapsed = np.array(
            [_uptake_seconds(injection, t, s) for t, s in zip(times, sources, strict=True)]
        )
        reference = "each slice's acquisition time (decay during a frame not corrected)"
        notes.append(
            "Decay Correction NONE: each slice decayed to its Acquisition Time; decay within "
            "a frame is not corrected (F-18: the frame mean is about 0.3 % below the start "
            "activity per minute of frame, 1 - (1 - exp(-lambda T)) / (lambda T))"
        )
    factor = suv_body_weight_factor(weight, injected, half_life, elapsed) * to_bq_ml
    return SuvCalibration(
        units=_text(first, "Units", source),
        decay_correction=decay,
        weight_kg=weight,
        injected_bq=injected,
        half_life_s=half_life,
        injection=injection,
        reference=reference,
        elapsed_s=elapsed,
        factor=np.asarray(factor, dtype=float),
        notes=tuple(notes),
    )


def _philips_calibration(datasets: list[Dataset], sources: Sequence[str]) -> SuvCalibration:
    suv_scale, activity_scale = [], []
    for ds, source in zip(datasets, sources, strict=True):
        suv_scale.append(_private_float(ds, 0x7053, 0x00, _PHILIPS_CREATOR, source))
        activity_scale.append(_private_float(ds, 0x7053, 0x09, _PHILIPS_CREATOR, source))
    if all(v is not None for v in suv_scale):
        n = len(datasets)
        return SuvCalibration(
            "CNTS", str(datasets[0].get("DecayCorrection", "")), None, None, None, None,
            "Philips SUV Scale Factor (7053,1000)", np.zeros(n),
            np.array(suv_scale, dtype=float), ("Philips private SUV Scale Factor used",),
        )  # fmt: skip
    if all(v is not None for v in activity_scale):
        calibration = _activity_calibration(datasets, sources, np.array(activity_scale, float))
        notes = (*calibration.notes, "Philips Activity Concentration Scale Factor (7053,1009)")
        return SuvCalibration(**{**calibration.__dict__, "notes": notes})
    raise InputError(
        "Units CNTS need the Philips private SUV Scale Factor (7053,1000) or Activity "
        "Concentration Scale Factor (7053,1009) on every slice; without them counts give no SUV",
        source=sources[0],
        field="(7053,1000)",
    )


def _radiopharmaceutical(ds: Dataset, source: str) -> Dataset:
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise InputError(
            "missing: the injected activity and its time are needed for SUV",
            source=source,
            field="RadiopharmaceuticalInformationSequence",
        )
    return sequence[0]


def _scan_start(datasets: list[Dataset], sources: Sequence[str], notes: list[str]) -> dt.datetime:
    first, source = datasets[0], sources[0]
    series = _datetime(first, "SeriesDate", "SeriesTime", source)
    earliest = min(_acquisition(ds, s) for ds, s in zip(datasets, sources, strict=True))
    if series <= earliest:
        return series
    ge = _private_value(first, 0x0009, 0x0D, _GE_CREATOR)
    if ge is not None:
        notes.append(
            "Series Time is after the acquisition (post-processed series): GE scan time used"
        )
        return _parse_dt(str(ge), source, "(0009,100D)")
    notes.append(
        "Series Time is after the earliest Acquisition Time (post-processed series): the "
        "earliest Acquisition Time is used as scan start"
    )
    return earliest


def _injection_time(
    ds: Dataset, item: Dataset, source: str, scan: dt.datetime | None, notes: list[str]
) -> dt.datetime:
    prefix = "RadiopharmaceuticalInformationSequence[0]."
    full = item.get("RadiopharmaceuticalStartDateTime")
    if full:
        return _parse_dt(str(full), source, prefix + "RadiopharmaceuticalStartDateTime")
    time = item.get("RadiopharmaceuticalStartTime")
    if not time:
        raise InputError(
            "missing, and no Radiopharmaceutical Start DateTime: the uptake time is unknown",
            source=source,
            field=prefix + "RadiopharmaceuticalStartTime",
        )
    day = _date(ds, "SeriesDate", source)
    start = dt.datetime.combine(
        day, _parse_tm(str(time), source, prefix + "RadiopharmaceuticalStartTime")
    )
    if scan is not None and start > scan:
        # A time without a date: the injection was on the series date unless that puts it
        # after the scan, which means the scan ran past midnight.
        start -= dt.timedelta(days=1)
        notes.append(
            "injection time is after the scan time on the same date: injection taken as the day before"
        )
    return start


def _uptake_seconds(injection: dt.datetime, reference: dt.datetime, source: str) -> float:
    seconds = (reference - injection).total_seconds()
    if not 0 <= seconds <= MAX_UPTAKE_S:
        raise InputError(
            f"the time from injection ({injection.isoformat(sep=' ')}) to the scan "
            f"({reference.isoformat(sep=' ')}) is {seconds:.0f} s, outside 0-{MAX_UPTAKE_S:.0f} s; "
            "check the dates and times",
            source=source,
            field="RadiopharmaceuticalStartTime/SeriesTime",
        )
    return seconds


def _acquisition(ds: Dataset, source: str) -> dt.datetime:
    full = ds.get("AcquisitionDateTime")
    if full:
        return _parse_dt(str(full), source, "AcquisitionDateTime")
    return _datetime(ds, "AcquisitionDate", "AcquisitionTime", source)


def _datetime(ds: Dataset, date_kw: str, time_kw: str, source: str) -> dt.datetime:
    day = _date(ds, date_kw, source)
    value = ds.get(time_kw)
    if not value:
        raise InputError(
            "missing: needed for the decay correction of SUV", source=source, field=time_kw
        )
    return dt.datetime.combine(day, _parse_tm(str(value), source, time_kw))


def _date(ds: Dataset, keyword: str, source: str) -> dt.date:
    value = ds.get(keyword)
    if not value:
        raise InputError(
            "missing: needed for the decay correction of SUV", source=source, field=keyword
        )
    try:
        return DA(str(value))
    except ValueError:
        raise InputError(f"{value!r} is not a DICOM date", source=source, field=keyword) from None


def _parse_tm(value: str, source: str, keyword: str) -> dt.time:
    try:
        parsed = TM(value.strip())
    except ValueError:
        parsed = None
    if not isinstance(parsed, dt.time):
        raise InputError(f"{value!r} is not a DICOM time", source=source, field=keyword)
    return dt.time(parsed.hour, parsed.minute, parsed.second, parsed.microsecond)


def _parse_dt(value: str, source: str, keyword: str) -> dt.datetime:
    try:
        parsed = DT(value.strip())
    except ValueError:
        parsed = None
    if not isinstance(parsed, dt.datetime):
        raise InputError(f"{value!r} is not a DICOM date-time", source=source, field=keyword)
    return parsed.replace(tzinfo=None)


def _text(ds: Dataset, keyword: str, source: str) -> str:
    value = ds.get(keyword)
    if value is None or str(value).strip() == "":
        raise InputError(
            "missing: needed to turn PET values into SUV", source=source, field=keyword
        )
    return str(value).strip().upper()


def _bounded(value, bounds: tuple[float, float], source: str, keyword: str, unit: str) -> float:
    if value is None or str(value).strip() == "":
        raise InputError("missing: needed for SUV", source=source, field=keyword)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{value!r} is not a number", source=source, field=keyword) from None
    low, high = bounds
    if not (np.isfinite(number) and low <= number <= high):
        raise InputError(
            f"{number:g} {unit} is outside the plausible {low:g}-{high:g} {unit}",
            source=source,
            field=keyword,
        )
    return number


def _private_value(ds: Dataset, group: int, offset: int, creator: str):
    try:
        block = ds.private_block(group, creator)
    except KeyError:
        return None
    element = block.get(offset) if hasattr(block, "get") else None
    if element is None:
        try:
            element = block[offset]
        except KeyError:
            return None
    return element.value


def _private_float(ds: Dataset, group: int, offset: int, creator: str, source: str) -> float | None:
    value = _private_value(ds, group, offset, creator)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"{value!r} is not a number", source=source, field=f"({group:04X},10{offset:02X})"
        ) from None
    if not np.isfinite(number) or number <= 0:
        raise InputError(
            f"{number!r} must be a positive number",
            source=source,
            field=f"({group:04X},10{offset:02X})",
        )
    return number
