"""DICOM mutations (pydicom) of the phantom case and the shared DICOM examples.

Each :class:`DicomMutation` changes one file of kind ``RD`` (RTDOSE), ``RS`` (RTSTRUCT),
``RP`` (RTPLAN), ``REG`` (spatial registration) or ``CT`` (one slice) and says whether the
result must be refused.  The phantom is run through ``reirrad accumulate case.yaml`` (every
kind) or ``reirrad dvh`` (RD, RS); the shared examples through ``reirrad dvh``.

Expectations: ``accumulate`` with a REG or identity mapping never reads the CT, so CT
mutations are ``either`` (course 1's RTSTRUCT, read only by ``assess``, is run through that); ``dvh`` reports partial coverage with a warning, so a dose grid
cropped to a few frames is ``either`` there but must be refused by ``accumulate`` (whose
default is ``allow_partial_coverage: false``).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from . import inputs
from .model import EITHER, REFUSE, Built

pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

Apply = Callable[[Dataset, random.Random], str]


@dataclass(frozen=True)
class DicomMutation:
    """One mutation of one kind of file; ``apply`` changes the dataset and describes it."""

    mutation_class: str
    name: str
    kinds: tuple[str, ...]
    apply: Apply
    expect: str = REFUSE
    #: expectation under ``reirrad dvh`` when it differs (partial coverage is a warning there)
    dvh_expect: str | None = None


@dataclass(frozen=True)
class FileMutation:
    """A mutation of the file itself (bytes, type, special files); ``apply(path, rng, work)``."""

    mutation_class: str
    name: str
    apply: Callable[[Path, random.Random, Path], str]
    expect: str = REFUSE


# ---- helpers ------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    """A DS string (<= 16 characters) for any float, including nan/inf."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.10g}"[:16]


def _walk(ds: Dataset, keyword: str) -> list[Dataset]:
    """Every dataset (top level or inside sequences) that holds ``keyword``."""
    found = [ds] if keyword in ds else []
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found.extend(_walk(item, keyword))
    return found


def _floats(ds: Dataset, keyword: str) -> list[float]:
    value = ds[keyword].value
    if value is None or value == "":
        return []
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    return [float(v) for v in values]


def _set_floats(ds: Dataset, keyword: str, values: list[float]) -> None:
    ds[keyword].value = [_fmt(v) for v in values] if len(values) > 1 else _fmt(values[0])


def _rois(ds: Dataset) -> list[tuple[int, str]]:
    """(ROINumber, ROIName) of the ROIs with contours, BODY/External left out."""
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    used = []
    for item in ds.ROIContourSequence:
        number = int(item.ReferencedROINumber)
        name = names.get(number, "")
        if "ContourSequence" in item and name.upper() not in ("BODY", "EXTERNAL"):
            used.append((number, name))
    return used or [(int(r.ReferencedROINumber), "?") for r in ds.ROIContourSequence]


def _contours_of(ds: Dataset, number: int) -> list[Dataset]:
    for item in ds.ROIContourSequence:
        if int(item.ReferencedROINumber) == number and "ContourSequence" in item:
            return list(item.ContourSequence)
    return []


def _pick_contours(ds: Dataset, rng: random.Random, every: bool) -> tuple[str, list[Dataset]]:
    number, name = rng.choice(_rois(ds))
    contours = _contours_of(ds, number)
    return name, contours if every else [rng.choice(contours)]


def _points(contour: Dataset) -> np.ndarray:
    return np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)


def _set_points(contour: Dataset, points: np.ndarray) -> None:
    contour.ContourData = [_fmt(v) for v in np.asarray(points).ravel()]
    contour.NumberOfContourPoints = len(points)


def _dose_pixels(ds: Dataset) -> np.ndarray:
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[int(ds.BitsAllocated)]
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    count = frames * int(ds.Rows) * int(ds.Columns)
    return np.frombuffer(ds.PixelData, dtype=dtype)[:count].reshape(frames, ds.Rows, ds.Columns)


# ---- missing type 1 attributes ------------------------------------------------------------


def _delete(keyword: str, every: bool = False, top: bool = False) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        holders = ([ds] if keyword in ds else []) if top else _walk(ds, keyword)
        if not holders:
            return f"{keyword} absent already"
        chosen = holders if every or len(holders) == 1 else [rng.choice(holders)]
        for holder in chosen:
            del holder[keyword]
        where = "" if len(holders) == 1 else (" (all)" if every else f" (1 of {len(holders)})")
        return f"{keyword} removed{where}"

    return apply


def _delete_in_roi(keyword: str) -> Apply:
    """Remove ``keyword`` from one contour of a used ROI (or its ROI items)."""

    def apply(ds: Dataset, rng: random.Random) -> str:
        number, name = rng.choice(_rois(ds))
        if keyword in ("ReferencedROINumber",):
            for item in ds.ROIContourSequence:
                if int(item.ReferencedROINumber) == number:
                    del item[keyword]
        elif keyword in ("ROINumber", "ROIName"):
            for item in ds.StructureSetROISequence:
                if int(item.ROINumber) == number:
                    del item[keyword]
        else:
            contour = rng.choice(_contours_of(ds, number))
            del contour[keyword]
        return f"{keyword} removed for ROI {name!r}"

    return apply


_RD_TYPE1 = (
    "DoseGridScaling PixelSpacing ImagePositionPatient ImageOrientationPatient "
    "GridFrameOffsetVector Rows Columns NumberOfFrames BitsAllocated BitsStored "
    "PixelRepresentation DoseUnits DoseType DoseSummationType FrameOfReferenceUID PixelData "
    "Modality"
).split()
_RS_TYPE1 = ("StructureSetROISequence", "ROIContourSequence")
_RS_ROI_TYPE1 = ("ContourData", "ContourGeometricType", "ReferencedROINumber", "ROINumber")
_REG_TYPE1 = (
    "RegistrationSequence MatrixRegistrationSequence FrameOfReferenceTransformationMatrix "
    "FrameOfReferenceTransformationMatrixType"
).split()


def _missing_tags() -> list[DicomMutation]:
    out = [
        DicomMutation("dicom-missing-tag", f"del-{k}", ("RD",), _delete(k, top=True))
        for k in _RD_TYPE1
    ]
    out += [DicomMutation("dicom-missing-tag", f"del-{k}", ("RS",), _delete(k)) for k in _RS_TYPE1]
    out += [
        DicomMutation("dicom-missing-tag", f"del-{k}", ("RS",), _delete_in_roi(k))
        for k in _RS_ROI_TYPE1
    ]
    # type 2 or redundant: a reader may do without them
    out += [
        DicomMutation(
            "dicom-missing-tag", "del-ROIName", ("RS",), _delete_in_roi("ROIName"), EITHER
        ),
        DicomMutation(
            "dicom-missing-tag",
            "del-NumberOfContourPoints",
            ("RS",),
            _delete_in_roi("NumberOfContourPoints"),
            EITHER,
        ),
        DicomMutation(
            "dicom-missing-tag",
            "del-FractionGroupSequence",
            ("RP",),
            _delete("FractionGroupSequence"),
            EITHER,
        ),
        DicomMutation(
            "dicom-missing-tag", "del-CT-PixelSpacing", ("CT",), _delete("PixelSpacing"), EITHER
        ),
    ]
    out += [
        DicomMutation("dicom-missing-tag", f"del-{k}", ("REG",), _delete(k, every=True))
        for k in _REG_TYPE1
    ]
    return out


# ---- bad values ---------------------------------------------------------------------------

_BAD = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "huge": 1e30, "zero": 0.0}


def _bad_value(keyword: str, kind: str, component: str = "one") -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        holders = _walk(ds, keyword)
        holder = rng.choice(holders) if holders else ds
        if keyword not in holder:  # an optional attribute: add it with a sane value first
            setattr(holder, keyword, "1.0")
        values = _floats(holder, keyword) or [1.0]
        if component == "all":
            indices = range(len(values))
        else:  # one component; offset 0 of a frame vector is 0 already
            indices = [rng.randrange(1 if keyword == "GridFrameOffsetVector" else 0, len(values))]
        for i in indices:
            values[i] = -abs(values[i]) - 1.0 if kind == "negative" else _BAD[kind]
        _set_floats(holder, keyword, values)
        return f"{keyword}[{','.join(map(str, indices))}] = {kind}"

    return apply


def _bad_contour(kind: str) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        name, (contour,) = _pick_contours(ds, rng, every=False)
        points = _points(contour)
        row, col = rng.randrange(len(points)), rng.randrange(3)
        points[row, col] = -abs(points[row, col]) - 1 if kind == "negative" else _BAD[kind]
        _set_points(contour, points)
        return f"ContourData of ROI {name!r}: point {row} coordinate {'xyz'[col]} = {kind}"

    return apply


def _bad_values() -> list[DicomMutation]:
    out = []
    for kind in ("nan", "inf", "-inf", "huge", "zero", "negative"):
        out.append(
            DicomMutation(
                "dicom-bad-value",
                f"DoseGridScaling={kind}",
                ("RD",),
                _bad_value("DoseGridScaling", kind),
            )
        )
        out.append(
            DicomMutation(
                "dicom-bad-value", f"PixelSpacing={kind}", ("RD",), _bad_value("PixelSpacing", kind)
            )
        )
        out.append(
            DicomMutation(
                "dicom-bad-value",
                f"SliceThickness={kind}",
                ("RD", "CT"),
                _bad_value("SliceThickness", kind),
                EITHER,
            )
        )
        contour_expect = EITHER if kind in ("zero", "negative") else REFUSE
        out.append(
            DicomMutation(
                "dicom-bad-value",
                f"ContourData={kind}",
                ("RS",),
                _bad_contour(kind),
                contour_expect,
            )
        )
    for kind in ("nan", "inf", "huge"):
        out.append(
            DicomMutation(
                "dicom-bad-value",
                f"ImagePositionPatient={kind}",
                ("RD",),
                _bad_value("ImagePositionPatient", kind),
            )
        )
        out.append(
            DicomMutation(
                "dicom-bad-value",
                f"GridFrameOffsetVector={kind}",
                ("RD",),
                _bad_value("GridFrameOffsetVector", kind),
            )
        )
        out.append(
            DicomMutation(
                "dicom-bad-value",
                f"REG-matrix={kind}",
                ("REG",),
                _bad_value("FrameOfReferenceTransformationMatrix", kind),
            )
        )
    out += [
        DicomMutation(
            "dicom-bad-value",
            "GridFrameOffsetVector=zero",
            ("RD",),
            _bad_value("GridFrameOffsetVector", "zero", "all"),
        ),
        DicomMutation(
            "dicom-bad-value",
            "GridFrameOffsetVector=negative",
            ("RD",),
            _bad_value("GridFrameOffsetVector", "negative"),
        ),
        DicomMutation(
            "dicom-bad-value",
            "REG-matrix=zero",
            ("REG",),
            _bad_value("FrameOfReferenceTransformationMatrix", "zero", "all"),
        ),
    ]
    for value in (0, -30, 2_000_000_000, 7):
        out.append(
            DicomMutation(
                "dicom-bad-value", f"NumberOfFractionsPlanned={value}", ("RP",), _fractions(value)
            )
        )
    return out


def _fractions(value: int) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        for group in ds.FractionGroupSequence:
            group.NumberOfFractionsPlanned = value
        return f"NumberOfFractionsPlanned = {value} (the case says otherwise)"

    return apply


# ---- inconsistent sizes -------------------------------------------------------------------


def _set_int(keyword: str, change: Callable[[int], int]) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        old = int(ds[keyword].value)
        ds[keyword].value = change(old)
        return f"{keyword} {old} -> {ds[keyword].value}"

    return apply


def _pixel_bytes(change: str) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        data = bytes(ds.PixelData)
        ds.PixelData = data[: len(data) // 2 + 1] if change == "truncate" else data + data
        return f"PixelData {change}: {len(data)} -> {len(ds.PixelData)} bytes"

    return apply


def _offsets(change: int) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        values = _floats(ds, "GridFrameOffsetVector")
        step = values[1] - values[0] if len(values) > 1 else 1.0
        values = values[:-1] if change < 0 else [*values, values[-1] + step]
        _set_floats(ds, "GridFrameOffsetVector", values)
        return f"GridFrameOffsetVector has {len(values)} values, NumberOfFrames {ds.NumberOfFrames}"

    return apply


def _contour_count(delta: int) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        name, (contour,) = _pick_contours(ds, rng, every=False)
        if delta == 0:  # ContourData length not a multiple of 3
            contour.ContourData = list(contour.ContourData)[:-1]
            return f"ContourData of ROI {name!r} lost its last value (length not 3n)"
        contour.NumberOfContourPoints = int(contour.NumberOfContourPoints) + delta
        return f"NumberOfContourPoints of a contour of ROI {name!r} off by {delta}"

    return apply


def _sizes() -> list[DicomMutation]:
    c = "dicom-inconsistent-size"
    return [
        DicomMutation(c, "Rows+1", ("RD",), _set_int("Rows", lambda v: v + 1)),
        DicomMutation(c, "Columns-1", ("RD",), _set_int("Columns", lambda v: v - 1)),
        DicomMutation(c, "NumberOfFrames+1", ("RD",), _set_int("NumberOfFrames", lambda v: v + 1)),
        DicomMutation(c, "NumberOfFrames-1", ("RD",), _set_int("NumberOfFrames", lambda v: v - 1)),
        DicomMutation(
            c, "NumberOfFrames=huge", ("RD",), _set_int("NumberOfFrames", lambda v: 2**31 - 1)
        ),
        DicomMutation(c, "Rows=0", ("RD",), _set_int("Rows", lambda v: 0)),
        DicomMutation(
            c,
            "BitsAllocated=16",
            ("RD",),
            _set_int("BitsAllocated", lambda v: 16 if v != 16 else 32),
        ),
        DicomMutation(c, "BitsStored>BitsAllocated", ("RD",), _set_int("BitsStored", lambda v: 40)),
        DicomMutation(c, "BitsStored=0", ("RD",), _set_int("BitsStored", lambda v: 0)),
        DicomMutation(c, "PixelData-truncated", ("RD",), _pixel_bytes("truncate")),
        DicomMutation(c, "PixelData-doubled", ("RD",), _pixel_bytes("double")),
        DicomMutation(c, "GridFrameOffsetVector-short", ("RD",), _offsets(-1)),
        DicomMutation(c, "GridFrameOffsetVector-long", ("RD",), _offsets(+1)),
        DicomMutation(c, "NumberOfContourPoints+5", ("RS",), _contour_count(5)),
        DicomMutation(c, "ContourData-not-3n", ("RS",), _contour_count(0)),
        DicomMutation(c, "CT-Rows+1", ("CT",), _set_int("Rows", lambda v: v + 1), EITHER),
    ]


# ---- extreme geometry ---------------------------------------------------------------------


def _shift_grid(axis: int, mm: float) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        position = _floats(ds, "ImagePositionPatient")
        position[axis] += mm
        _set_floats(ds, "ImagePositionPatient", position)
        return f"dose grid shifted {mm:g} mm along {'xyz'[axis]}"

    return apply


def _crop(frames: int) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        pixels = _dose_pixels(ds)
        offsets = _floats(ds, "GridFrameOffsetVector")
        first = max(0, len(offsets) // 2 - frames // 2)
        kept = offsets[first : first + frames]
        position = _floats(ds, "ImagePositionPatient")
        position[2] += kept[0]  # axial grid: offsets run along z
        _set_floats(ds, "ImagePositionPatient", position)
        _set_floats(ds, "GridFrameOffsetVector", [v - kept[0] for v in kept])
        ds.NumberOfFrames = len(kept)
        ds.PixelData = np.ascontiguousarray(pixels[first : first + frames]).tobytes()
        return f"dose grid cropped to frames {first}..{first + len(kept) - 1} of {len(offsets)}"

    return apply


def _scale_spacing(factor: float) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        _set_floats(ds, "PixelSpacing", [v * factor for v in _floats(ds, "PixelSpacing")])
        return f"PixelSpacing x {factor:g}"

    return apply


def _orientation(values: list[float], label: str) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        _set_floats(ds, "ImageOrientationPatient", values)
        return f"ImageOrientationPatient {label}"

    return apply


def _transform_roi(scale: float, shift: float) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        name, contours = _pick_contours(ds, rng, every=True)
        for contour in contours:
            _set_points(contour, _points(contour) * scale + np.array([shift, 0.0, 0.0]))
        return f"ROI {name!r}: contours x {scale:g}, shifted {shift:g} mm in x"

    return apply


def _reg_matrix(scale: float, translate: float) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        for holder in _walk(ds, "FrameOfReferenceTransformationMatrix"):
            m = np.asarray(_floats(holder, "FrameOfReferenceTransformationMatrix")).reshape(4, 4)
            if np.allclose(m, np.eye(4)):
                continue  # the reference frame's own identity entry
            m[:3, :3] *= scale
            m[:3, 3] += translate
            _set_floats(holder, "FrameOfReferenceTransformationMatrix", list(m.ravel()))
        return f"REG matrix: rotation x {scale:g}, translation + {translate:g} mm"

    return apply


def _geometry() -> list[DicomMutation]:
    c = "dicom-extreme-geometry"
    return [
        DicomMutation(c, "grid-shift-x+1000mm", ("RD",), _shift_grid(0, 1000.0)),
        DicomMutation(c, "grid-shift-z-1000mm", ("RD",), _shift_grid(2, -1000.0)),
        DicomMutation(c, "grid-cropped-3-frames", ("RD",), _crop(3), REFUSE, dvh_expect=EITHER),
        DicomMutation(c, "grid-cropped-1-frame", ("RD",), _crop(1), REFUSE, dvh_expect=EITHER),
        DicomMutation(c, "PixelSpacing-x1e-4", ("RD",), _scale_spacing(1e-4)),
        DicomMutation(c, "PixelSpacing-x100", ("RD",), _scale_spacing(100.0), EITHER),
        DicomMutation(
            c,
            "orientation-not-orthogonal",
            ("RD",),
            _orientation([1, 0, 0, 1, 0, 0], "rows = columns"),
        ),
        DicomMutation(
            c, "orientation-coronal", ("RD",), _orientation([1, 0, 0, 0, 0, -1], "coronal"), EITHER
        ),
        DicomMutation(c, "contour-scaled-1e8", ("RS",), _transform_roi(1e8, 0.0)),
        DicomMutation(c, "contour-shifted-1000mm", ("RS",), _transform_roi(1.0, 1000.0)),
        DicomMutation(c, "REG-translation+1e6mm", ("REG",), _reg_matrix(1.0, 1e6)),
        DicomMutation(c, "REG-rotation-x2", ("REG",), _reg_matrix(2.0, 0.0)),
    ]


# ---- degenerate contours and ROI bookkeeping ----------------------------------------------


def _few_points(count: int, every: bool) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        name, contours = _pick_contours(ds, rng, every=every)
        for contour in contours:
            _set_points(contour, _points(contour)[:count])
        which = "every contour" if every else "one contour"
        return f"ROI {name!r}: {which} reduced to {count} point(s)"

    return apply


def _collapsed(ds: Dataset, rng: random.Random) -> str:
    name, (contour,) = _pick_contours(ds, rng, every=False)
    points = _points(contour)
    _set_points(contour, np.repeat(points[:1], len(points), axis=0))
    return f"ROI {name!r}: one contour with all points identical (zero area)"


def _bowtie(ds: Dataset, rng: random.Random) -> str:
    name, (contour,) = _pick_contours(ds, rng, every=False)
    points = _points(contour)
    half = len(points) // 2
    points[:half] = points[:half][::-1]
    _set_points(contour, points)
    return f"ROI {name!r}: one contour made self-intersecting"


def _duplicate_roi(what: str) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        rois = _rois(ds)
        (a_number, a_name), (b_number, b_name) = rng.sample(rois, 2) if len(rois) > 1 else rois * 2
        for item in ds.StructureSetROISequence:
            if int(item.ROINumber) == b_number:
                if what == "name":
                    item.ROIName = a_name
                else:
                    item.ROINumber = a_number
        if what == "number":
            for item in ds.ROIContourSequence:
                if int(item.ReferencedROINumber) == b_number:
                    item.ReferencedROINumber = a_number
            return f"ROI {b_name!r} renumbered to {a_number} (the number of {a_name!r})"
        return f"ROI {b_name!r} renamed {a_name!r} (two ROIs of one name)"

    return apply


def _repoint(to_existing: bool) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        rois = _rois(ds)
        number, name = rng.choice(rois)
        others = [n for n, _ in rois if n != number]
        target = rng.choice(others) if to_existing and others else 999
        for item in ds.ROIContourSequence:
            if int(item.ReferencedROINumber) == number:
                item.ReferencedROINumber = target
        return f"contours of ROI {name!r} re-pointed to ROI number {target}"

    return apply


def _degenerate() -> list[DicomMutation]:
    c = "dicom-degenerate-contour"
    return [
        DicomMutation(c, "one-contour-1-point", ("RS",), _few_points(1, False), EITHER),
        DicomMutation(c, "one-contour-2-points", ("RS",), _few_points(2, False), EITHER),
        DicomMutation(c, "all-contours-2-points", ("RS",), _few_points(2, True)),
        DicomMutation(c, "contour-zero-area", ("RS",), _collapsed, EITHER),
        DicomMutation(c, "contour-self-intersecting", ("RS",), _bowtie, EITHER),
        DicomMutation(c, "duplicate-ROI-name", ("RS",), _duplicate_roi("name")),
        DicomMutation(c, "duplicate-ROI-number", ("RS",), _duplicate_roi("number")),
        DicomMutation(c, "ReferencedROINumber-missing-ROI", ("RS",), _repoint(False)),
        DicomMutation(c, "ReferencedROINumber-other-ROI", ("RS",), _repoint(True)),
    ]


def _set_text(keyword: str, value: str) -> Apply:
    def apply(ds: Dataset, rng: random.Random) -> str:
        ds[keyword].value = value
        return f"{keyword} = {value!r}"

    return apply


DICOM_MUTATIONS: list[DicomMutation] = [
    *_missing_tags(),
    *_bad_values(),
    *_sizes(),
    *_geometry(),
    *_degenerate(),
    DicomMutation("dicom-wrong-type", "RTDOSE-Modality=CT", ("RD",), _set_text("Modality", "CT")),
    DicomMutation(
        "dicom-wrong-type", "RTSTRUCT-Modality=RTDOSE", ("RS",), _set_text("Modality", "RTDOSE")
    ),
    DicomMutation("dicom-wrong-type", "DoseUnits=CGY", ("RD",), _set_text("DoseUnits", "CGY")),
    DicomMutation("dicom-wrong-type", "DoseType=BOGUS", ("RD",), _set_text("DoseType", "BOGUS")),
    DicomMutation(
        "dicom-wrong-type",
        "DoseSummationType=BOGUS",
        ("RD",),
        _set_text("DoseSummationType", "BOGUS"),
    ),
]


# ---- file-level mutations -----------------------------------------------------------------


def _bytes(kind: str) -> Callable[[Path, random.Random, Path], str]:
    def apply(path: Path, rng: random.Random, work: Path) -> str:
        data = path.read_bytes()
        if kind == "empty":
            new = b""
        elif kind == "truncated-half":
            new = data[: len(data) // 2]
        elif kind == "truncated-header":
            new = data[:200]
        elif kind == "random":
            new = rng.randbytes(len(data))
        elif kind == "preamble-random":
            new = b"\0" * 128 + b"DICM" + rng.randbytes(min(len(data), 4096))
        else:  # text
            new = b"this is not a DICOM file\n"
        path.write_bytes(new)
        return f"{path.name} replaced by {kind} bytes ({len(new)})"

    return apply


def _special(kind: str) -> Callable[[Path, random.Random, Path], str]:
    def apply(path: Path, rng: random.Random, work: Path) -> str:
        path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero":
            path.symlink_to("/dev/zero")
        elif kind == "directory":
            path.mkdir()
        elif kind == "dangling-symlink":
            path.symlink_to(work / "does-not-exist.dcm")
        elif kind == "symlink-loop":
            path.symlink_to(path)
        # "missing": just removed
        return f"{path.name} replaced by {kind}"

    return apply


def _other_file(kind: str) -> Callable[[Path, random.Random, Path], str]:
    """Replace the file by a copy of a file of another kind (e.g. RTSTRUCT given as RTDOSE)."""

    def apply(path: Path, rng: random.Random, work: Path) -> str:
        sources = {
            "RD": ["RD.dcm", "rtdose.dcm"],
            "RS": ["RS.dcm", "rtss.dcm"],
            "RP": ["RP.dcm"],
            "CT": ["CT/CT_000.dcm"],
        }[kind]
        for name in sources:
            for folder in (path.parent, path.parent.parent):
                candidate = folder / name
                if not candidate.is_file() or candidate == path:
                    continue
                path.write_bytes(candidate.read_bytes())
                return f"{path.name} replaced by a copy of {name} ({kind})"
        return f"no {kind} file next to {path.name}; unchanged"

    return apply


FILE_MUTATIONS: list[FileMutation] = [
    *(
        FileMutation("file-bytes", k, _bytes(k))
        for k in (
            "empty",
            "truncated-half",
            "truncated-header",
            "random",
            "preamble-random",
            "text",
        )
    ),
    *(
        FileMutation("file-special", k, _special(k))
        for k in ("fifo", "dev-zero", "directory", "missing", "dangling-symlink", "symlink-loop")
    ),
    *(
        FileMutation("dicom-wrong-type", f"given-{k}", _other_file(k))
        for k in ("RD", "RS", "RP", "CT")
    ),
]

#: Which kinds a file-level mutation may hit (a copy of the same kind is no mutation).
_FILE_KINDS = ("RD", "RS", "RP", "REG", "CT")


# ---- building a case ----------------------------------------------------------------------


def targets(kinds: tuple[str, ...]) -> list[tuple[str, str, int, str]]:
    """(input set, kind, course, command) combinations a mutation of these kinds can run as."""
    out = []
    for kind in kinds:
        for course in (1, 2):
            if kind == "REG" and course == 2:
                continue
            # accumulate reads the RTSTRUCT of the reference course (the newest) only;
            # assess also reads every course's RTSTRUCT for its structure-level statistics
            command = "assess" if (kind, course) == ("RS", 1) else "accumulate"
            out.append(("phantom", kind, course, command))
            if kind in ("RD", "RS"):
                out.append(("phantom", kind, course, "dvh"))
        if kind in ("RD", "RS"):
            out += [(base, kind, 1, "dvh") for base in inputs.SHARED_SETS if inputs.available(base)]
    return out


def _args(base: str, course: int, command: str) -> tuple[str, ...]:
    if command in ("accumulate", "assess"):
        return (command, "case.yaml")
    return (
        "dvh",
        "--dose",
        inputs.file_of(base, "RD", course),
        "--structures",
        inputs.file_of(base, "RS", course),
    )


def build(
    mutation: DicomMutation | FileMutation,
    target: tuple[str, str, int, str],
    rng: random.Random,
    work: Path,
) -> Built:
    """Copy the input set into ``work``, mutate the target file, return what to run."""
    base, kind, course, command = target
    inputs.prepare(base, work)
    relative = inputs.file_of(base, kind, course)
    path = work / relative
    if isinstance(mutation, FileMutation):
        detail = mutation.apply(path, rng, work)
        expect = mutation.expect
    else:
        ds = pydicom.dcmread(path)
        detail = mutation.apply(ds, rng)
        ds.save_as(path)
        expect = (
            mutation.dvh_expect if command == "dvh" and mutation.dvh_expect else mutation.expect
        )
    if kind == "CT" or "unchanged" in detail:
        expect = EITHER  # accumulate with a REG/identity mapping does not read the CT
    description = f"{base} {relative} ({command}): {detail}"
    return Built(mutation.mutation_class, description, expect, _args(base, course, command))


def applicable_targets(mutation: DicomMutation | FileMutation) -> list[tuple[str, str, int, str]]:
    """Targets of a mutation (file mutations: every kind except a copy of the same kind)."""
    if isinstance(mutation, DicomMutation):
        return targets(mutation.kinds)
    kinds = _FILE_KINDS
    if mutation.name.startswith("given-"):
        kinds = tuple(k for k in kinds if k != mutation.name.removeprefix("given-"))
    return targets(kinds)
