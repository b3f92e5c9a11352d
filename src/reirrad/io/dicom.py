"""DICOM RT readers: RTDOSE, RTSTRUCT, RTPLAN and CT series geometry (pydicom).

Every reader goes through :func:`read_dicom`, which turns every way a file can be wrong
(missing, not DICOM, truncated, wrong modality, missing attribute, undecodable pixels) into
an :class:`~reirrad.errors.InputError` naming the file and the attribute.  No pydicom
exception escapes from this module.

Refused rather than guessed (each limit is a module constant with the reason for its value;
those a real case could exceed are keyword arguments of the readers): paths that are not
regular files (FIFOs, devices) or exceed :data:`MAX_DICOM_FILE_BYTES` (2 GiB), before pydicom
opens them; pixel modules inconsistent with themselves or with the PixelData length, and
values overflowing BitsStored; doses that are negative, not finite, or whose maximum lies
outside :data:`MIN_PLAUSIBLE_PEAK_DOSE_GY`-:data:`MAX_PLAUSIBLE_DOSE_GY` (1 mGy-200 Gy; cGy
labelled Gy is the usual cause of the upper one); pixel and slice spacings outside
:data:`MIN_SPACING_MM`-:data:`MAX_SPACING_MM` (0.01-50 mm); grid corners and contour
vertices beyond :data:`MAX_COORDINATE_MM` (10 m); grids of more than
:data:`MAX_GRID_VOXELS` voxels; duplicate ROI numbers or names and ROI Contour items that
point at an undefined or already used ROI number.

References
----------
DICOM PS3.3 (Information Object Definitions), in particular:

* C.7.6.2.1.1 Image Position and Image Orientation (Patient): the voxel-to-patient mapping
  used for CT slices and dose frames.
* C.8.8.3 RT Dose Module, C.8.8.3.2 Grid Frame Offset Vector (relative vs absolute offsets).
* C.8.8.5 / C.8.8.6 / C.8.8.8 Structure Set, ROI Contour, RT ROI Observations Modules.
* C.8.8.10 / C.8.8.13 / C.8.8.14 RT Prescription, RT Fraction Scheme, RT Beams Modules.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import os
import warnings as _warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from reirrad.core.geometry import Dose, DoseKind, Grid
from reirrad.core.structures import Structure, StructureSet
from reirrad.errors import InputError

__all__ = [
    "Beam",
    "FractionGroup",
    "ImageSeries",
    "PlanInfo",
    "Prescription",
    "ReferencedBeam",
    "check_frame_of_reference",
    "check_input_file",
    "check_references",
    "read_ct_geometry",
    "read_ct_series",
    "read_ct_volume",
    "read_dicom",
    "read_rtdose",
    "read_rtplan",
    "read_rtstruct",
    "read_slice_values",
]

PathLike = str | os.PathLike

#: Defined terms of Dose Summation Type (3004,000A), DICOM PS3.3 C.8.8.3.1.
_SUMMATION_TYPES = frozenset(
    {"PLAN", "MULTI_PLAN", "FRACTION", "BEAM", "BRACHY", "FRACTION_SESSION",
     "BEAM_SESSION", "BRACHY_SESSION", "CONTROL_POINT", "RECORD"}
)  # fmt: skip

# SOP Class UIDs (DICOM PS3.4 Annex B) accepted by each reader.
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.8"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"

_IMAGE_MODALITIES = ("CT", "MR", "PT")
_IMAGE_SOP_CLASSES = (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, PET_IMAGE_STORAGE)

# Geometric tolerances (mm and direction cosines).  They only absorb rounding of the
# decimal strings (DS, 16 characters) used by DICOM; they are far below clinical relevance.
_POSITION_TOL_MM = 0.01
# Slice positions may deviate from equal spacing by 2 % of the step: multi-bed PET series
# are stitched from overlapping bed positions and their positions, rounded per bed, wander
# by a few hundredths of a millimetre (0.04 mm in the shared real FDG series at 3.27 mm);
# 2 % of a slice moves no structure or dose sample meaningfully.  A missing slice (100 %)
# or a variable-thickness scan is still refused.
_SPACING_TOL_FRACTION = 0.02
# Direction cosines within this of an axis are snapped onto it (1e-4 rad ~ 0.006 degrees,
# i.e. 0.03 mm over a 300 mm grid); anything larger is an oblique orientation.
_AXIS_SNAP_TOL = 1e-4
_ORTHONORMAL_TOL = 1e-3
_PLANARITY_TOL_MM = 0.05

# --------------------------------------------------------------------------------------
# Plausibility limits.  These are engineering bounds chosen by reasoning, not taken from a
# publication: each stops a header that cannot describe a patient (a mislabelled unit, a
# corrupted scale factor, a file that would exhaust memory) long before a real case reaches
# it.  Those a real case could exceed are keyword arguments of the readers.
# --------------------------------------------------------------------------------------

#: Largest file (bytes) a reader opens.  A 32-bit dose grid of 512 x 512 x 400 voxels is
#: 0.4 GB and a CT slice about 0.5 MB; 2 GiB leaves a factor of five above that and refuses
#: devices such as /dev/zero and files whose parsing would exhaust memory, before pydicom
#: allocates anything.
MAX_DICOM_FILE_BYTES = 2 * 1024**3

#: Highest dose (Gy) accepted anywhere in an RTDOSE grid.  External-beam plans, hot spots
#: included, stay well below it, while a dose in cGy labelled GY exceeds it by a factor of
#: about 100 for any real plan.  Brachytherapy grids close to the sources can legitimately
#: exceed it: pass ``max_dose_gy`` to :func:`read_rtdose`.
MAX_PLAUSIBLE_DOSE_GY = 200.0

#: Lowest accepted maximum (Gy) of an RTDOSE grid.  1 mGy is far below the maximum of any
#: treatment beam, fraction or plan; a maximum below it means an all-zero grid or a
#: corrupted DoseGridScaling (e.g. 1e-300), which would make every limit PASS.
MIN_PLAUSIBLE_PEAK_DOSE_GY = 1e-3

#: Accepted PixelSpacing and slice spacing (mm).  Below 0.01 mm (the rounding tolerance of
#: positions here) or above 50 mm (wider than any dose or CT grid used for planning) the
#: grid cannot describe a patient, and a tiny spacing makes the DVH engine's sub-voxel grids
#: explode in size.
MIN_SPACING_MM = 0.01
MAX_SPACING_MM = 50.0

#: Largest absolute patient coordinate (mm) of a grid corner or a contour vertex: 10 m,
#: far beyond any patient or couch travel, so that a vertex at 1e308 or a contour scaled by
#: 1e8 is refused instead of asking the rasteriser for terabytes.
MAX_COORDINATE_MM = 10_000.0

#: Largest number of voxels of a dose grid or CT volume read into memory: 2**28 (a
#: 512 x 512 x 1024 CT), i.e. 2 GiB as float64.  Pass ``max_voxels`` to read more.
MAX_GRID_VOXELS = 2**28


# --------------------------------------------------------------------------------------
# Low level: reading a file and its attributes safely
# --------------------------------------------------------------------------------------


def read_dicom(
    path: PathLike,
    *,
    modality: str | Sequence[str] | None = None,
    sop_class_uids: Sequence[str] | None = None,
    stop_before_pixels: bool = False,
    max_bytes: int = MAX_DICOM_FILE_BYTES,
) -> Dataset:
    """Read one DICOM file, refusing anything that is not what the caller expects.

    Files without the 128-byte preamble and ``DICM`` prefix (older exports write the bare
    dataset) are accepted when they parse as a dataset with a SOP Class UID.

    Parameters
    ----------
    path
        The file.
    modality
        Accepted Modality (0008,0060) value(s); ``None`` accepts any.
    sop_class_uids
        Accepted SOP Class UIDs; ``None`` accepts any.
    stop_before_pixels
        Do not read Pixel Data (faster for headers only).
    max_bytes
        Largest file size accepted (default :data:`MAX_DICOM_FILE_BYTES`, 2 GiB).

    Raises
    ------
    InputError
        Missing, not a regular file (directory, FIFO, device), too large, unreadable, not
        DICOM, truncated, wrong modality or SOP class.
    """
    source = str(path)
    p = check_input_file(path, max_bytes=max_bytes)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=stop_before_pixels)
        except pydicom.errors.InvalidDicomError:
            ds = _read_without_preamble(p, stop_before_pixels)
        except OSError as error:
            raise InputError(
                f"cannot read file: {error.strerror or error}", source=source
            ) from None
        except Exception as error:  # pydicom raises many types on corrupt input
            raise InputError(
                f"not a readable DICOM file, or a truncated one ({error})", source=source
            ) from None
    for w in caught:
        if "End of file" in str(w.message):
            # pydicom's only sign that an undefined-length item (e.g. encapsulated pixel
            # data) was cut off.
            raise InputError(f"file is truncated or corrupt ({w.message})", source=source)
        _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if len(ds) == 0:
        raise InputError(
            "file is truncated or corrupt: no data element could be read", source=source
        )
    _check_not_truncated(ds, source)
    _check_kind(ds, source, modality, sop_class_uids)
    return ds


def check_input_file(path: PathLike, *, max_bytes: int = MAX_DICOM_FILE_BYTES) -> Path:
    """Refuse a path that is not a regular file of at most ``max_bytes`` bytes.

    Checked before any reader opens the file: a FIFO would block the reader forever, a
    device such as ``/dev/zero`` never ends, and an oversized file would exhaust memory.

    Raises
    ------
    InputError
        Missing, a directory, a FIFO/socket/device, or larger than ``max_bytes``.
    """
    source = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=source)
    if p.is_dir():
        raise InputError("is a directory, expected a DICOM file", source=source)
    if not p.is_file():
        # is_file() follows symbolic links and is False for FIFOs, sockets and devices.
        raise InputError(
            "is not a regular file (a FIFO, socket or device); give the DICOM file itself",
            source=source,
        )
    try:
        size = p.stat().st_size
    except OSError as error:
        raise InputError(f"cannot read file: {error.strerror or error}", source=source) from None
    if size > max_bytes:
        raise InputError(
            f"file is {size / 2**30:.2f} GiB, more than the {max_bytes / 2**30:.2f} GiB a "
            "DICOM RT or image file can plausibly need; check that this is the right file",
            source=source,
        )
    return p


def _read_without_preamble(p: Path, stop_before_pixels: bool) -> Dataset:
    source = str(p)
    not_dicom = "not a DICOM file (no 'DICM' prefix and no readable DICOM dataset)"
    try:
        ds = pydicom.dcmread(p, force=True, stop_before_pixels=stop_before_pixels)
        has_sop_class = "SOPClassUID" in ds and bool(ds.SOPClassUID)
    except Exception as error:
        raise InputError(f"{not_dicom}, or a truncated one ({error})", source=source) from None
    if not has_sop_class:
        raise InputError(not_dicom, source=source)
    # Without file meta pydicom cannot decode pixels: record the encoding it detected.
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        if implicit is None or little is None:
            implicit, little = True, True  # pydicom's default guess for a bare dataset
        if implicit and little:
            ts = pydicom.uid.ImplicitVRLittleEndian
        elif little:
            ts = pydicom.uid.ExplicitVRLittleEndian
        else:
            ts = pydicom.uid.ExplicitVRBigEndian
        if meta is None:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
    return ds


def _check_not_truncated(ds: Dataset, source: str) -> None:
    """Refuse a file whose last element is shorter than its declared length.

    pydicom silently returns the bytes that are there when a file ends inside a value;
    the declared length of the still-raw element tells us.
    """
    undefined = 0xFFFFFFFF

    def walk(dataset: Dataset, path: str) -> None:
        for tag in list(dataset.keys()):
            try:
                element = dataset.get_item(tag)
            except Exception:
                continue
            length = getattr(element, "length", None)
            value = getattr(element, "value", None)
            if (
                isinstance(value, bytes | bytearray)
                and isinstance(length, int)
                and length != undefined
                and len(value) < length
            ):
                name = pydicom.datadict.keyword_for_tag(tag) or str(Tag(tag))
                raise InputError(
                    f"file is truncated or corrupt: {name} {Tag(tag)} declares {length} "
                    f"bytes but only {len(value)} are present",
                    source=source,
                    field=f"{path}{name}",
                )
            if getattr(element, "VR", None) == "SQ" and isinstance(value, Iterable):
                name = pydicom.datadict.keyword_for_tag(tag) or str(Tag(tag))
                for index, item in enumerate(value):
                    if isinstance(item, Dataset):
                        walk(item, f"{path}{name}[{index}].")

    walk(ds, "")


def _check_kind(
    ds: Dataset,
    source: str,
    modality: str | Sequence[str] | None,
    sop_class_uids: Sequence[str] | None,
) -> None:
    accepted = (modality,) if isinstance(modality, str) else modality
    found_modality = _str(ds, "Modality")
    sop_class = _str(ds, "SOPClassUID")
    if accepted is not None and found_modality not in accepted:
        what = _sop_class_name(sop_class)
        found = f"an {found_modality} file" if found_modality else "a file without Modality"
        if found_modality and found_modality[0] not in "AEIOUFHLMNRSX":
            found = f"a {found_modality} file"
        raise InputError(
            f"is {found} ({what}), expected {' or '.join(accepted)}",
            source=source,
            field="Modality",
        )
    if sop_class_uids is not None and sop_class not in sop_class_uids:
        expected = ", ".join(_sop_class_name(uid) for uid in sop_class_uids)
        raise InputError(
            f"SOP Class {_sop_class_name(sop_class)} is not supported here (expected {expected})",
            source=source,
            field="SOPClassUID",
        )


def _sop_class_name(uid: str | None) -> str:
    if not uid:
        return "no SOP Class UID"
    try:
        name = pydicom.uid.UID(uid).name
    except Exception:
        name = uid
    return name if name != uid else f"SOP Class {uid}"


def _field(keyword: str, prefix: str = "") -> str:
    return f"{prefix}{keyword}"


def _present(ds: Dataset, keyword: str) -> bool:
    if keyword not in ds:
        return False
    try:
        value = ds[keyword].value
    except Exception:
        return True  # present but unparsable: let the getter report it
    return value is not None and value != "" and not (isinstance(value, list) and not value)


def _value(ds: Dataset, keyword: str, source: str, prefix: str = "") -> Any:
    try:
        return ds[keyword].value
    except Exception as error:
        raise InputError(
            f"value cannot be read ({error})", source=source, field=_field(keyword, prefix)
        ) from None


def _require(ds: Dataset, keyword: str, source: str, prefix: str = "") -> Any:
    if not _present(ds, keyword):
        tag = pydicom.datadict.tag_for_keyword(keyword)
        where = f" {Tag(tag)}" if tag is not None else ""
        raise InputError(
            f"required attribute {keyword}{where} is missing or empty",
            source=source,
            field=_field(keyword, prefix),
        )
    return _value(ds, keyword, source, prefix)


def _str(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _float(
    ds: Dataset, keyword: str, source: str, prefix: str = "", required: bool = False
) -> float | None:
    if not _present(ds, keyword):
        if required:
            _require(ds, keyword, source, prefix)
        return None
    value = _value(ds, keyword, source, prefix)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"expected a number, found {value!r}", source=source, field=_field(keyword, prefix)
        ) from None
    if not np.isfinite(number):
        raise InputError(
            f"expected a finite number, found {value!r}",
            source=source,
            field=_field(keyword, prefix),
        )
    return number


def _int(
    ds: Dataset, keyword: str, source: str, prefix: str = "", required: bool = False
) -> int | None:
    number = _float(ds, keyword, source, prefix, required)
    if number is None:
        return None
    if number != int(number):
        raise InputError(
            f"expected an integer, found {number!r}", source=source, field=_field(keyword, prefix)
        )
    return int(number)


def _floats(
    ds: Dataset, keyword: str, source: str, count: int | None = None, prefix: str = ""
) -> NDArray[np.float64]:
    value = _require(ds, keyword, source, prefix)
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    try:
        array = np.array([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            f"expected numbers, found {value!r}", source=source, field=_field(keyword, prefix)
        ) from None
    if count is not None and array.size != count:
        raise InputError(
            f"expected {count} values, found {array.size}",
            source=source,
            field=_field(keyword, prefix),
        )
    if not np.all(np.isfinite(array)):
        raise InputError("contains non-finite values", source=source, field=_field(keyword, prefix))
    return array


def _sequence(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        value = ds.get(keyword)
    except Exception:
        return []
    return list(value) if value else []


def _date(ds: Dataset, keyword: str) -> _dt.date | None:
    text = _str(ds, keyword)
    if not text:
        return None
    try:
        return _dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _collect_pydicom_warnings(func):
    """Run a reader, turning the UserWarnings pydicom emits (non-conformant values...)
    into entries of the result's warnings instead of console noise."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            result = func(*args, **kwargs)
        messages = []
        for w in caught:
            if issubclass(w.category, UserWarning):
                messages.append(f"pydicom: {w.message}")
            else:  # not ours to swallow
                _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        messages = tuple(dict.fromkeys(messages))
        if not messages:
            return result
        if isinstance(result, Dose | ImageSeries):
            result.provenance["warnings"] = tuple(result.provenance.get("warnings", ())) + messages
        elif isinstance(result, StructureSet | PlanInfo):
            result = dataclasses.replace(result, warnings=tuple(result.warnings) + messages)
        return result

    return wrapper


# --------------------------------------------------------------------------------------
# Geometry helpers shared by RTDOSE and CT
# --------------------------------------------------------------------------------------


def _orientation(
    ds: Dataset, source: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], bool, list[float]]:
    """Row and column direction cosines (unit vectors), and whether they are oblique.

    Cosines within ``_AXIS_SNAP_TOL`` of a patient axis are snapped onto it, so that
    ``Grid.is_axis_aligned`` holds for files written with float noise such as
    ``-1.224647e-16``.
    """
    iop = _floats(ds, "ImageOrientationPatient", source, count=6)
    row, col = iop[:3], iop[3:]
    for name, vector in (("row", row), ("column", col)):
        if abs(np.linalg.norm(vector) - 1.0) > _ORTHONORMAL_TOL:
            raise InputError(
                f"{name} direction cosines {vector.tolist()} are not a unit vector",
                source=source,
                field="ImageOrientationPatient",
            )
    if abs(float(row @ col)) > _ORTHONORMAL_TOL:
        raise InputError(
            f"row and column directions are not perpendicular (dot product {row @ col:.4g})",
            source=source,
            field="ImageOrientationPatient",
        )

    def snapped(vector: NDArray[np.float64]) -> NDArray[np.float64] | None:
        rounded = np.round(vector)
        if np.count_nonzero(rounded) == 1 and np.all(np.abs(vector - rounded) <= _AXIS_SNAP_TOL):
            return rounded + 0.0  # + 0.0 turns -0.0 into 0.0
        return None

    row_s, col_s = snapped(row), snapped(col)
    if row_s is not None and col_s is not None:
        return row_s, col_s, False, iop.tolist()
    # Oblique: keep the file's cosines, re-orthonormalised so that the affine is exact.
    row = row / np.linalg.norm(row)
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    return row, col, True, iop.tolist()


def _pixel_spacing(ds: Dataset, source: str) -> tuple[float, float]:
    """(spacing along i, spacing along j) in mm.

    PixelSpacing (0028,0030) is "row spacing \\ column spacing" (PS3.3 10.7.1.3): the first
    value is the distance between adjacent *rows*, i.e. the step along j (down a column);
    the second the distance between adjacent *columns*, the step along i.
    """
    spacing = _floats(ds, "PixelSpacing", source, count=2)
    if np.any(spacing <= 0):
        raise InputError(
            f"must be positive, found {spacing.tolist()}", source=source, field="PixelSpacing"
        )
    for value in spacing:
        _check_spacing(float(value), source, "PixelSpacing")
    row_spacing, column_spacing = float(spacing[0]), float(spacing[1])
    return column_spacing, row_spacing


def _affine(
    origin: NDArray[np.float64],
    row: NDArray[np.float64],
    col: NDArray[np.float64],
    di: float,
    dj: float,
    k_step: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Affine of PS3.3 C.7.6.2.1.1: P = IPP + i*di*row + j*dj*col (+ k step)."""
    affine = np.eye(4)
    affine[:3, 0] = row * di
    affine[:3, 1] = col * dj
    affine[:3, 2] = k_step
    affine[:3, 3] = origin
    return affine


def _equally_spaced(positions: NDArray[np.float64]) -> tuple[bool, float]:
    """Whether 1-D positions are equally spaced (within ``_POSITION_TOL_MM``), and the step."""
    if positions.size < 2:
        return True, 0.0
    step = (positions[-1] - positions[0]) / (positions.size - 1)
    expected = positions[0] + step * np.arange(positions.size)
    tolerance = max(_POSITION_TOL_MM, _SPACING_TOL_FRACTION * abs(step))
    return bool(np.max(np.abs(positions - expected)) <= tolerance), float(step)


def _check_grid_size(
    source: str, frames: int, rows: int, columns: int, max_voxels: int, frames_field: str
) -> None:
    """Refuse empty dimensions and grids too large to hold in memory."""
    for name, value in (("Rows", rows), ("Columns", columns), (frames_field, frames)):
        if value < 1:
            raise InputError(f"must be at least 1, found {value}", source=source, field=name)
    voxels = frames * rows * columns
    if voxels > max_voxels:
        raise InputError(
            f"the grid has {frames} x {rows} x {columns} = {voxels} voxels, more than the "
            f"{max_voxels} reirrad reads into memory; resample it coarser (or raise max_voxels "
            "if the case really needs it)",
            source=source,
            field=f"Rows/Columns/{frames_field}",
        )


def _check_spacing(value: float, source: str, field: str) -> None:
    if not (MIN_SPACING_MM <= abs(value) <= MAX_SPACING_MM):
        raise InputError(
            f"spacing {value:g} mm is outside the plausible {MIN_SPACING_MM:g}-"
            f"{MAX_SPACING_MM:g} mm; the header is corrupt or not in mm",
            source=source,
            field=field,
        )


def _check_extent(grid: Grid, source: str, field: str) -> None:
    """Every corner of the grid must lie within +-MAX_COORDINATE_MM of the origin."""
    corners = np.array(
        [
            [i, j, k]
            for i in (0, grid.shape[2] - 1)
            for j in (0, grid.shape[1] - 1)
            for k in (0, grid.shape[0] - 1)
        ],
        dtype=float,
    )
    xyz = grid.index_to_patient(corners)
    worst = float(np.max(np.abs(xyz))) if np.all(np.isfinite(xyz)) else np.inf
    if worst > MAX_COORDINATE_MM:
        raise InputError(
            f"the grid reaches {worst:.4g} mm from the patient origin, beyond the plausible "
            f"+-{MAX_COORDINATE_MM:g} mm; the position or spacing is corrupt",
            source=source,
            field=field,
        )


@dataclass(frozen=True)
class _PixelFormat:
    bits_allocated: int
    bits_stored: int
    signed: bool


def _pixel_format(
    ds: Dataset, source: str, *, allowed_bits: tuple[int, ...], stored_equals_allocated: bool
) -> _PixelFormat:
    """Bits Allocated/Stored, High Bit and Pixel Representation, checked against each other.

    For RTDOSE, DICOM PS3.3 (2024c) C.8.8.3.4.3-5: Bits Allocated 16 or 32, Bits Stored =
    Bits Allocated, High Bit = Bits Stored - 1 (C.8.8.3.4.6: Pixel Representation 0 unless
    DoseType ERROR).  For images (CT) the same High Bit rule and Bits Stored <= Bits
    Allocated, as the Image Pixel Module (PS3.3 C.7.6.3) describes them (secondary source
    for the exact wording: a DICOM tag reference, majware.com/dicom-tags/0028-0102; the
    paragraph was not re-read here).
    """
    allocated = _int(ds, "BitsAllocated", source, required=True)
    stored = _int(ds, "BitsStored", source, required=True)
    high = _int(ds, "HighBit", source, required=True)
    representation = _int(ds, "PixelRepresentation", source, required=True)
    if allocated not in allowed_bits:
        raise InputError(
            f"{allocated} is not supported here (expected {' or '.join(map(str, allowed_bits))})",
            source=source,
            field="BitsAllocated",
        )
    if not 1 <= stored <= allocated:
        raise InputError(
            f"BitsStored {stored} does not fit BitsAllocated {allocated}; the header is corrupt",
            source=source,
            field="BitsStored",
        )
    if stored_equals_allocated and stored != allocated:
        raise InputError(
            f"BitsStored {stored} differs from BitsAllocated {allocated}, which an RTDOSE "
            "must not do (PS3.3 C.8.8.3.4.4); the header is corrupt, re-export the dose",
            source=source,
            field="BitsStored",
        )
    if high != stored - 1:
        raise InputError(
            f"HighBit {high} must be BitsStored - 1 = {stored - 1}; the header is corrupt",
            source=source,
            field="HighBit",
        )
    if representation not in (0, 1):
        raise InputError(
            f"must be 0 (unsigned) or 1 (two's complement), found {representation}",
            source=source,
            field="PixelRepresentation",
        )
    return _PixelFormat(allocated, stored, representation == 1)


def _decode_pixels(
    ds: Dataset, source: str, fmt: _PixelFormat, shape: tuple[int, int, int]
) -> NDArray[np.integer]:
    """Integer pixel values ``[frame, row, column]``, refusing headers that lie about them.

    Native (uncompressed) data is decoded here so that both its length and its values can
    be checked against the header: one sample of BitsAllocated bits per voxel, so the
    PixelData length must equal Rows x Columns x frames x BitsAllocated/8 (one more padding
    byte when that is odd, DICOM values having even length); and no value may use bits
    above HighBit (pydicom masks them silently, turning e.g. a 32-bit dose declared with
    BitsStored 16 into nonsense).  Encapsulated (compressed) data is decoded by pydicom,
    whose output shape is checked.
    """
    frames, rows, columns = shape
    meta = getattr(ds, "file_meta", None)
    syntax = pydicom.uid.UID(_str(meta, "TransferSyntaxUID") or "") if meta is not None else None
    if syntax is not None and syntax.is_transfer_syntax and not syntax.is_encapsulated:
        data = _value(ds, "PixelData", source)
        n_bytes = fmt.bits_allocated // 8
        expected = frames * rows * columns * n_bytes
        if not (len(data) == expected or (expected % 2 and len(data) == expected + 1)):
            raise InputError(
                f"holds {len(data)} bytes but Rows x Columns x NumberOfFrames x BitsAllocated/8"
                f" = {rows} x {columns} x {frames} x {n_bytes} = {expected}; the header does "
                "not describe the pixel data (corrupt or edited file)",
                source=source,
                field="PixelData",
            )
        order = "<" if syntax.is_little_endian else ">"
        unsigned = np.frombuffer(data, dtype=f"{order}u{n_bytes}", count=frames * rows * columns)
        values = _fit_bits_stored(unsigned, fmt, source)
        return values.reshape(shape)
    try:
        raw = np.asarray(ds.pixel_array)
    except Exception as error:
        raise InputError(
            f"pixel data cannot be decoded ({error})", source=source, field="PixelData"
        ) from None
    if raw.ndim == 2:
        raw = raw[np.newaxis]
    if raw.shape != shape:
        raise InputError(
            f"pixel data has shape {raw.shape}, expected (NumberOfFrames, Rows, Columns) = {shape}",
            source=source,
            field="PixelData",
        )
    return raw


def _fit_bits_stored(
    unsigned: NDArray[np.unsignedinteger], fmt: _PixelFormat, source: str
) -> NDArray[np.integer]:
    """Values of native pixel words, refusing any that overflow BitsStored."""
    allocated, stored = fmt.bits_allocated, fmt.bits_stored
    if stored == allocated:
        return unsigned.view(unsigned.dtype.str.replace("u", "i")) if fmt.signed else unsigned
    high = unsigned >> np.array(stored, dtype=unsigned.dtype)
    if fmt.signed:
        # Two's complement values may be sign-extended into the unused bits (all ones
        # above a set sign bit) or leave them zero.
        sign = (unsigned >> np.array(stored - 1, dtype=unsigned.dtype)) & 1
        ones = np.array(2 ** (allocated - stored) - 1, dtype=unsigned.dtype)
        bad = (high != 0) & ~((high == ones) & (sign == 1))
    else:
        bad = high != 0
    if np.any(bad):
        raise InputError(
            f"{int(np.count_nonzero(bad))} pixel values use bits above HighBit "
            f"(BitsStored {stored} of BitsAllocated {allocated}); the values overflow "
            "BitsStored and would be truncated: the header is corrupt",
            source=source,
            field="BitsStored",
        )
    mask = np.array(2**stored - 1, dtype=unsigned.dtype)
    values = (unsigned & mask).astype(np.int64)
    if fmt.signed:
        values = np.where(values >= 2 ** (stored - 1), values - 2**stored, values)
    return values


# --------------------------------------------------------------------------------------
# RTDOSE
# --------------------------------------------------------------------------------------

_DOSE_TYPES = {"PHYSICAL": DoseKind.PHYSICAL, "EFFECTIVE": DoseKind.EFFECTIVE}


@_collect_pydicom_warnings
def read_rtdose(
    path: PathLike,
    *,
    relative_scale_gy: float | None = None,
    fractions: float | None = None,
    max_dose_gy: float = MAX_PLAUSIBLE_DOSE_GY,
    min_peak_dose_gy: float = MIN_PLAUSIBLE_PEAK_DOSE_GY,
    max_voxels: int = MAX_GRID_VOXELS,
) -> Dose:
    """Read an RTDOSE file as a :class:`~reirrad.core.geometry.Dose` in Gy.

    Parameters
    ----------
    path
        RTDOSE file, any transfer syntax pydicom decodes (implicit/explicit little endian,
        explicit big endian, RLE lossless; JPEG variants need a pydicom decoder plugin).
    relative_scale_gy
        Required for ``DoseUnits = RELATIVE`` and refused otherwise: the dose in Gy that a
        relative value of 1.0 stands for (after DoseGridScaling).  A relative dose has no
        absolute meaning without it.
    fractions
        Number of fractions the dose was delivered in, if the caller knows it (the RTDOSE
        does not say; the RTPLAN does).  Kept as ``Dose.fractions``.
    max_dose_gy
        Highest dose accepted in any voxel (default :data:`MAX_PLAUSIBLE_DOSE_GY`, 200 Gy);
        raise it for brachytherapy grids that sample the dose next to the sources.
    min_peak_dose_gy
        Lowest accepted grid maximum (default :data:`MIN_PLAUSIBLE_PEAK_DOSE_GY`, 1 mGy).
    max_voxels
        Largest grid read (default :data:`MAX_GRID_VOXELS`).

    Raises
    ------
    InputError
        Besides missing or malformed attributes: a pixel module inconsistent with itself or
        with the PixelData length, values overflowing BitsStored, negative or non-finite
        doses, a maximum outside ``[min_peak_dose_gy, max_dose_gy]`` (a dose in cGy
        labelled GY is the usual cause of too high a maximum), spacings outside
        ``MIN_SPACING_MM``-``MAX_SPACING_MM``, a grid reaching beyond
        ``MAX_COORDINATE_MM`` or larger than ``max_voxels``.

    Returns
    -------
    Dose
        ``values[k, j, i]`` in Gy (float64), on a grid whose affine follows PS3.3
        C.7.6.2.1.1.  ``provenance`` holds: source, sop_instance_uid,
        frame_of_reference_uid, series_instance_uid, study_instance_uid, dose_type,
        summation_type, dose_units, dose_grid_scaling, referenced_rtplan_uid (if present),
        referenced_fraction_group_numbers, frame_offsets ("relative" or "absolute"),
        oblique, image_orientation_patient, transfer_syntax, warnings.

    Notes
    -----
    How Grid Frame Offset Vector (3004,000C) is interpreted (PS3.3 C.8.8.3.2):

    * first value 0: offsets are *relative* to Image Position (Patient), positive along
      the slice normal (row cosines x column cosines). This is option (a) of the standard.
    * otherwise, first value equal to the z of Image Position (Patient): offsets are
      *absolute* patient z coordinates (option (b)); the standard defines this only for
      orientation (1,0,0,0,1,0). It is also accepted for other transverse orientations
      (normal along -z, e.g. feet-first), with a warning in provenance, because z is then
      still unambiguous. For a non-transverse orientation it is refused.
    * any other first value is refused.

    Offsets must be equally spaced (within 0.01 mm); they may decrease (frames stored from
    the other end), which gives a k axis pointing against the normal.
    """
    source = str(path)
    ds = read_dicom(path, modality="RTDOSE", sop_class_uids=(RT_DOSE_STORAGE,))
    warnings: list[str] = []
    units, dose_type, summation, unit_factor = _dose_meaning(ds, source, relative_scale_gy)
    values, scaling = _dose_values(
        ds, source, unit_factor, max_dose_gy, min_peak_dose_gy, max_voxels
    )
    grid, offsets_mode, oblique, iop = _dose_grid(ds, source, values.shape, warnings)
    kind = _DOSE_TYPES[dose_type]
    provenance: dict[str, Any] = {
        "source": source,
        "reader": "reirrad.io.dicom.read_rtdose",
        "sop_instance_uid": _str(ds, "SOPInstanceUID"),
        "series_instance_uid": _str(ds, "SeriesInstanceUID"),
        "study_instance_uid": _str(ds, "StudyInstanceUID"),
        "frame_of_reference_uid": _str(ds, "FrameOfReferenceUID"),
        "dose_type": dose_type,
        "summation_type": summation,
        "dose_units": units,
        "dose_grid_scaling": scaling,
        "frame_offsets": offsets_mode,
        "oblique": oblique,
        "image_orientation_patient": iop,
        "transfer_syntax": _str(ds.file_meta, "TransferSyntaxUID")
        if getattr(ds, "file_meta", None) is not None
        else None,
    }
    provenance.update(_referenced_plans(ds))
    if units == "RELATIVE":
        provenance["relative_scale_gy"] = float(relative_scale_gy)
    provenance.update(_dose_descriptions(ds, source))
    if kind is DoseKind.EFFECTIVE:
        warnings.append(
            "DoseType EFFECTIVE: the file holds a biologically weighted dose whose model the "
            "file does not state; it is kept as kind EFFECTIVE and cannot be converted again"
        )
    if oblique:
        warnings.append(
            f"oblique dose grid (ImageOrientationPatient {iop}); the affine is exact but "
            "axis-aligned operations are not available"
        )
    provenance["warnings"] = tuple(warnings)
    return Dose(
        grid=grid,
        values=values,
        kind=kind,
        fractions=None if fractions is None else float(fractions),
        quantity="physical" if kind is DoseKind.PHYSICAL else "effective",
        provenance=provenance,
    )


def _dose_meaning(
    ds: Dataset, source: str, relative_scale_gy: float | None
) -> tuple[str, str, str, float]:
    """DoseUnits, DoseType and DoseSummationType checked, and the factor to Gy they imply."""
    units = str(_require(ds, "DoseUnits", source)).strip().upper()
    dose_type = str(_require(ds, "DoseType", source)).strip().upper()
    summation = str(_require(ds, "DoseSummationType", source)).strip().upper()
    if summation not in _SUMMATION_TYPES:
        raise InputError(
            f"DoseSummationType {summation!r} is not a defined term (PS3.3 C.8.8.3.1: "
            + ", ".join(sorted(_SUMMATION_TYPES))
            + ")",
            source=source,
            field="DoseSummationType",
        )
    if dose_type not in _DOSE_TYPES:
        # ERROR (PS3.3 C.8.8.3: difference between desired and planned dose) is not a dose
        # that can be accumulated or converted to EQD2.
        raise InputError(
            f"DoseType {dose_type!r} is not a dose distribution reirrad can use "
            "(expected PHYSICAL or EFFECTIVE)",
            source=source,
            field="DoseType",
        )
    return units, dose_type, summation, _unit_factor(units, relative_scale_gy, source)


def _unit_factor(units: str, relative_scale_gy: float | None, source: str) -> float:
    """Gy per (scaled) stored value: 1 for GY, the caller's normalisation for RELATIVE."""
    if units == "GY":
        if relative_scale_gy is not None:
            raise InputError(
                "relative_scale_gy was given but the file's DoseUnits is GY (absolute dose); "
                "drop the normalisation",
                source=source,
                field="DoseUnits",
            )
        return 1.0
    if units == "RELATIVE":
        if relative_scale_gy is None:
            raise InputError(
                "DoseUnits is RELATIVE: the dose has no absolute value; supply the "
                "normalisation (the dose in Gy that a relative dose of 1.0 stands for, "
                "relative_scale_gy in Python, --relative-scale in reirrad dvh)",
                source=source,
                field="DoseUnits",
            )
        if not (np.isfinite(relative_scale_gy) and relative_scale_gy > 0):
            raise InputError(
                f"relative_scale_gy must be a positive number of Gy, got {relative_scale_gy!r}",
                source=source,
                field="DoseUnits",
            )
        return float(relative_scale_gy)
    raise InputError(
        f"DoseUnits {units!r} is not supported (DICOM defines GY and RELATIVE)",
        source=source,
        field="DoseUnits",
    )


def _dose_values(
    ds: Dataset,
    source: str,
    unit_factor: float,
    max_dose_gy: float,
    min_peak_dose_gy: float,
    max_voxels: int,
) -> tuple[NDArray[np.float64], float]:
    """The dose grid in Gy, shape (frames, rows, columns), and its DoseGridScaling."""
    rows = _int(ds, "Rows", source, required=True)
    columns = _int(ds, "Columns", source, required=True)
    samples = _int(ds, "SamplesPerPixel", source) or 1
    if samples != 1:
        raise InputError(
            f"expected 1 sample per pixel, found {samples}", source=source, field="SamplesPerPixel"
        )
    frames = _int(ds, "NumberOfFrames", source)
    frames = 1 if frames is None else frames
    if "PixelData" not in ds:
        raise InputError(
            "the file holds no dose grid (no PixelData; e.g. an RTDOSE carrying only DVHs)",
            source=source,
            field="PixelData",
        )
    _check_grid_size(source, frames, rows, columns, max_voxels, "NumberOfFrames")
    scaling = _float(ds, "DoseGridScaling", source)
    if scaling is None:
        # Type 1C: required when Pixel Data is present; without it the values are unusable.
        _require(ds, "DoseGridScaling", source)
    if scaling <= 0:
        raise InputError(
            f"must be positive, found {scaling!r}", source=source, field="DoseGridScaling"
        )
    fmt = _pixel_format(ds, source, allowed_bits=(16, 32), stored_equals_allocated=True)
    raw = _decode_pixels(ds, source, fmt, (frames, rows, columns))
    return _scaled_dose(raw, scaling * unit_factor, source, max_dose_gy, min_peak_dose_gy), scaling


def _dose_grid(
    ds: Dataset, source: str, shape: tuple[int, int, int], warnings: list[str]
) -> tuple[Grid, str, bool, Any]:
    """The dose grid's geometry (PS3.3 C.7.6.2.1.1 and C.8.8.3.2), checked.

    Returns the grid, how the frame offsets were read ("relative"/"absolute"), whether the
    grid is oblique, and ImageOrientationPatient.
    """
    frames = shape[0]
    row, col, oblique, iop = _orientation(ds, source)
    di, dj = _pixel_spacing(ds, source)
    ipp = _floats(ds, "ImagePositionPatient", source, count=3)
    _check_position(ipp, source, "ImagePositionPatient")
    normal = np.cross(row, col)
    positions, offsets_mode = _dose_frame_positions(
        ds, source, frames, ipp, row, col, normal, warnings
    )
    if frames > 1:
        step = _frame_step(positions, source)
    else:
        step = _single_frame_thickness(ds, source, warnings)
    _check_spacing(step, source, "GridFrameOffsetVector" if frames > 1 else "SliceThickness")
    origin = ipp + positions[0] * normal
    grid = Grid(shape=shape, affine=_affine(origin, row, col, di, dj, step * normal))
    _check_extent(grid, source, "ImagePositionPatient/PixelSpacing/GridFrameOffsetVector")
    return grid, offsets_mode, oblique, iop


def _frame_step(positions: NDArray[np.float64], source: str) -> float:
    """The one spacing of equally spaced, distinct frame positions."""
    ok, step = _equally_spaced(positions)
    if not ok:
        raise InputError(
            "frame offsets are not equally spaced "
            f"(steps {np.round(np.diff(positions), 4).tolist()} mm); a regular grid is "
            "required (resample the dose in the planning system)",
            source=source,
            field="GridFrameOffsetVector",
        )
    if abs(step) < _POSITION_TOL_MM:
        raise InputError(
            "frame offsets repeat (zero spacing)", source=source, field="GridFrameOffsetVector"
        )
    return step


def _referenced_plans(ds: Dataset) -> dict[str, Any]:
    """Provenance entries naming the RTPLAN(s) and fraction groups the dose belongs to."""
    referenced_plans = _sequence(ds, "ReferencedRTPlanSequence")
    if not referenced_plans:
        return {}
    entries: dict[str, Any] = {
        "referenced_rtplan_uid": _str(referenced_plans[0], "ReferencedSOPInstanceUID")
    }
    if len(referenced_plans) > 1:
        entries["referenced_rtplan_uids"] = [
            _str(item, "ReferencedSOPInstanceUID") for item in referenced_plans
        ]
    groups = [
        _str(group, "ReferencedFractionGroupNumber")
        for item in referenced_plans
        for group in _sequence(item, "ReferencedFractionGroupSequence")
    ]
    if groups:
        entries["referenced_fraction_group_numbers"] = groups
    return entries


def _dose_descriptions(ds: Dataset, source: str) -> dict[str, Any]:
    """Free-text attributes worth keeping in provenance, when present."""
    entries: dict[str, Any] = {}
    for keyword, key in (
        ("TissueHeterogeneityCorrection", "tissue_heterogeneity_correction"),
        ("DoseComment", "dose_comment"),
        ("Manufacturer", "manufacturer"),
    ):
        if _present(ds, keyword):
            value = _value(ds, keyword, source)
            if isinstance(value, pydicom.multival.MultiValue | list):
                entries[key] = [str(v) for v in value]
            else:
                entries[key] = str(value).strip()
    return entries


def _scaled_dose(
    raw: NDArray[np.integer],
    factor: float,
    source: str,
    max_dose_gy: float,
    min_peak_dose_gy: float,
) -> NDArray[np.float64]:
    """Stored values times DoseGridScaling (and the RELATIVE normalisation), checked.

    The extremes are checked on the integers first, so that no overflow happens while
    scaling and the message can name the attribute to blame.
    """
    if raw.size == 0:
        raise InputError("the dose grid has no voxels", source=source, field="PixelData")
    low, high = int(raw.min()), int(raw.max())
    if low < 0:
        raise InputError(
            f"the dose grid has negative values (stored minimum {low}); a dose cannot be "
            "negative: re-export the dose (PixelRepresentation must be 0 for a dose)",
            source=source,
            field="PixelData",
        )
    with np.errstate(over="ignore", under="ignore"):
        peak = float(high) * factor
    if not np.isfinite(peak):
        raise InputError(
            f"the largest stored value {high} times the scaling {factor:g} is not a finite "
            "dose; DoseGridScaling is corrupt",
            source=source,
            field="DoseGridScaling",
        )
    if peak > max_dose_gy:
        raise InputError(
            f"the maximum dose is {peak:.4g} Gy, above the plausible {max_dose_gy:g} Gy; the "
            "usual cause is a dose in cGy labelled GY (DoseUnits) or a wrong DoseGridScaling "
            f"({factor:g}): re-export the dose in Gy (brachytherapy grids near sources may "
            "need a higher limit, max_dose_gy)",
            source=source,
            field="DoseGridScaling",
        )
    if peak < min_peak_dose_gy:
        raise InputError(
            f"the maximum dose is {peak:.4g} Gy, below {min_peak_dose_gy:g} Gy: the grid holds "
            f"no treatment dose (all zero, or a corrupt DoseGridScaling {factor:g}); check "
            "the exported file",
            source=source,
            field="DoseGridScaling",
        )
    return raw.astype(np.float64) * factor


def _check_position(xyz: NDArray[np.float64], source: str, field: str) -> None:
    if np.max(np.abs(xyz)) > MAX_COORDINATE_MM:
        raise InputError(
            f"position {xyz.tolist()} mm is beyond the plausible +-{MAX_COORDINATE_MM:g} mm",
            source=source,
            field=field,
        )


def _dose_frame_positions(
    ds: Dataset,
    source: str,
    frames: int,
    ipp: NDArray[np.float64],
    row: NDArray[np.float64],
    col: NDArray[np.float64],
    normal: NDArray[np.float64],
    warnings: list[str],
) -> tuple[NDArray[np.float64], str]:
    """Frame positions along ``normal`` relative to Image Position (Patient)."""
    field_name = "GridFrameOffsetVector"
    if not _present(ds, field_name):
        if frames > 1:
            _require(ds, field_name, source)
        return np.zeros(1), "none (single frame)"
    offsets = _floats(ds, field_name, source)
    if offsets.size < frames:
        raise InputError(
            f"has {offsets.size} values for {frames} frames", source=source, field=field_name
        )
    if offsets.size > frames:
        if frames > 1:
            raise InputError(
                f"has {offsets.size} values for {frames} frames", source=source, field=field_name
            )
        warnings.append(
            f"GridFrameOffsetVector has {offsets.size} values for a single frame; "
            "only the first is used"
        )
        offsets = offsets[:1]

    if abs(offsets[0]) <= _POSITION_TOL_MM:
        return offsets - offsets[0], "relative"
    if abs(offsets[0] - ipp[2]) <= _POSITION_TOL_MM and abs(abs(normal[2]) - 1.0) < 1e-9:
        # Absolute patient z (option (b)); convert to distances along the normal.
        if not (np.allclose(row, [1, 0, 0]) and np.allclose(col, [0, 1, 0])):
            warnings.append(
                "GridFrameOffsetVector holds absolute z positions with an orientation other "
                "than (1,0,0,0,1,0), which DICOM PS3.3 C.8.8.3.2 does not define; they were "
                "read as patient z"
            )
        return (offsets - offsets[0]) * normal[2], "absolute"
    raise InputError(
        f"first value {offsets[0]:g} is neither 0 (offsets relative to ImagePositionPatient) "
        f"nor the z of ImagePositionPatient ({ipp[2]:g}) with a transverse orientation "
        "(absolute z); the frame positions are ambiguous",
        source=source,
        field=field_name,
    )


def _single_frame_thickness(ds: Dataset, source: str, warnings: list[str]) -> float:
    """k spacing of a single-frame dose: SliceThickness, else the offsets' step."""
    thickness = _float(ds, "SliceThickness", source)
    if thickness is not None and thickness > 0:
        return thickness
    if _present(ds, "GridFrameOffsetVector"):
        offsets = _floats(ds, "GridFrameOffsetVector", source)
        if offsets.size >= 2:
            ok, step = _equally_spaced(offsets)
            if ok and abs(step) > _POSITION_TOL_MM:
                warnings.append(
                    f"single frame without SliceThickness: frame thickness {abs(step):g} mm "
                    "taken from the spacing of GridFrameOffsetVector"
                )
                return abs(step)
    raise InputError(
        "single-frame dose without SliceThickness: the thickness of the dose plane is unknown",
        source=source,
        field="SliceThickness",
    )


# --------------------------------------------------------------------------------------
# RTSTRUCT
# --------------------------------------------------------------------------------------


@_collect_pydicom_warnings
def read_rtstruct(path: PathLike) -> StructureSet:
    """Read the ROIs of an RTSTRUCT file.

    Closed planar contours become :class:`~reirrad.core.structures.Structure` polygons
    (several per plane allowed); open planar, open non-planar and point contours are
    skipped with a message in ``warnings``, and every CLOSED_PLANAR contour of fewer than
    3 points is dropped with a warning naming its ROI and plane; an ROI without any usable
    contour is kept as an empty structure.

    Raises
    ------
    InputError
        Besides missing or malformed attributes: ROI numbers or ROI names that occur more
        than once (structures are matched by name, so a duplicate would silently pick one);
        an ROIContourSequence item whose ReferencedROINumber is not defined in
        StructureSetROISequence, or that repeats another's; a contour vertex that is not
        finite or lies beyond ``MAX_COORDINATE_MM``.
    """
    source = str(path)
    ds = read_dicom(path, modality="RTSTRUCT", sop_class_uids=(RT_STRUCTURE_SET_STORAGE,))
    warnings: list[str] = []

    # References: frame of reference, image series, images.
    for_uids: list[str] = []
    series_uids: list[str] = []
    image_uids: list[str] = []
    for rfor in _sequence(ds, "ReferencedFrameOfReferenceSequence"):
        uid = _str(rfor, "FrameOfReferenceUID")
        if uid and uid not in for_uids:
            for_uids.append(uid)
        for study in _sequence(rfor, "RTReferencedStudySequence"):
            for series in _sequence(study, "RTReferencedSeriesSequence"):
                uid = _str(series, "SeriesInstanceUID")
                if uid and uid not in series_uids:
                    series_uids.append(uid)
                for image in _sequence(series, "ContourImageSequence"):
                    uid = _str(image, "ReferencedSOPInstanceUID")
                    if uid:
                        image_uids.append(uid)
    if len(for_uids) > 1:
        warnings.append(f"several frames of reference referenced ({', '.join(for_uids)})")
    if len(series_uids) > 1:
        warnings.append(
            f"several image series referenced ({', '.join(series_uids)}); the first is kept"
        )

    roi_items = _sequence(ds, "StructureSetROISequence")
    if not roi_items and not _present(ds, "StructureSetROISequence"):
        _require(ds, "StructureSetROISequence", source)
    interpreted: dict[int, str | None] = {}
    for obs in _sequence(ds, "RTROIObservationsSequence"):
        number = _int(obs, "ReferencedROINumber", source, "RTROIObservationsSequence.")
        if number is not None:
            interpreted[number] = _str(obs, "RTROIInterpretedType")
    if "ROIContourSequence" not in ds:
        # Type 1 (PS3.3 C.8.8.6); its absence usually means a cut-off file.
        _require(ds, "ROIContourSequence", source)
    if "RTROIObservationsSequence" not in ds:
        warnings.append("no RTROIObservationsSequence: ROI types are unknown")
    rois: list[tuple[int, str, str | None]] = []
    for index, roi in enumerate(roi_items):
        prefix = f"StructureSetROISequence[{index}]."
        number = _int(roi, "ROINumber", source, prefix, required=True)
        name = _str(roi, "ROIName")
        if name is None:
            name = f"ROI {number}"
            warnings.append(f"ROI number {number} has no name; called {name!r}")
        rois.append((number, name, _str(roi, "ReferencedFrameOfReferenceUID")))
    _check_unique_rois(rois, source)
    contour_items = _contour_items(ds, {number for number, _, _ in rois}, source)

    structures: dict[str, Structure] = {}
    for number, name, roi_for in rois:
        key = name
        item = contour_items.get(number)
        contours: list[NDArray[np.float64]] = []
        color = None
        if item is not None:
            color = _color(item)
            contours = _contours(item, name, number, source, warnings)
        structures[key] = Structure(
            name=name,
            number=number,
            contours=tuple(contours),
            color=color,
            roi_type=interpreted.get(number),
            frame_of_reference_uid=roi_for or (for_uids[0] if for_uids else None),
        )
    return StructureSet(
        structures=structures,
        frame_of_reference_uid=for_uids[0] if for_uids else None,
        referenced_series_uid=series_uids[0] if series_uids else None,
        source=source,
        warnings=tuple(warnings),
        referenced_image_uids=tuple(dict.fromkeys(image_uids)),
    )


def _check_unique_rois(rois: list[tuple[int, str, str | None]], source: str) -> None:
    """ROI numbers and names must each be unique (names are how structures are matched)."""
    first_by_number: dict[int, str] = {}
    first_by_name: dict[str, int] = {}
    for number, name, _ in rois:
        if number in first_by_number:
            raise InputError(
                f"ROI number {number} is used twice ({first_by_number[number]!r} and "
                f"{name!r}); the file is corrupt, re-export the structure set",
                source=source,
                field="StructureSetROISequence.ROINumber",
            )
        first_by_number[number] = name
        if name in first_by_name:
            raise InputError(
                f"ROI name {name!r} is used twice (ROI {first_by_name[name]} and ROI {number}); "
                "structures are matched by name, so give each ROI a distinct name in the "
                "planning system and export again",
                source=source,
                field="StructureSetROISequence.ROIName",
            )
        first_by_name[name] = number


def _contour_items(ds: Dataset, numbers: set[int], source: str) -> dict[int, Dataset]:
    """ROI Contour items by ReferencedROINumber: each must name a defined ROI, once."""
    items: dict[int, Dataset] = {}
    for index, item in enumerate(_sequence(ds, "ROIContourSequence")):
        field_name = f"ROIContourSequence[{index}].ReferencedROINumber"
        number = _int(item, "ReferencedROINumber", source, f"ROIContourSequence[{index}].", True)
        if number not in numbers:
            raise InputError(
                f"refers to ROI number {number}, which StructureSetROISequence does not define "
                f"(defined: {sorted(numbers)}); the file is corrupt, re-export the structure set",
                source=source,
                field=field_name,
            )
        if number in items:
            raise InputError(
                f"ROI number {number} has two ROIContourSequence items; which contours belong "
                "to it is ambiguous (corrupt or edited file), re-export the structure set",
                source=source,
                field=field_name,
            )
        items[number] = item
    return items


def _color(item: Dataset) -> tuple[int, int, int] | None:
    try:
        value = item.get("ROIDisplayColor")
        if value is None or len(value) != 3:
            return None
        return tuple(int(v) for v in value)
    except Exception:
        return None


def _contour_points(contour: Dataset, source: str, prefix: str) -> NDArray[np.float64]:
    """ContourData as an (N, 3) array, parsed from the raw decimal string when possible."""
    tag = 0x30060050
    if tag not in contour:
        _require(contour, "ContourData", source, prefix)
    try:
        element = contour.get_item(tag)
        value = element.value
        if isinstance(value, bytes | bytearray):
            # Raw DS: parsing the backslash-separated text directly is ~10x faster than
            # creating one pydicom DSfloat per coordinate.
            text = value.decode("ascii").strip(" \x00")
            array = np.array(text.split("\\"), dtype=float) if text else np.empty(0)
        else:
            value = contour.ContourData
            values = value if isinstance(value, list | pydicom.multival.MultiValue) else [value]
            array = np.array([float(v) for v in values], dtype=float)
    except Exception as error:
        raise InputError(
            f"cannot read contour coordinates ({error})",
            source=source,
            field=f"{prefix}ContourData",
        ) from None
    if array.size % 3 != 0 or not np.all(np.isfinite(array)):
        raise InputError(
            f"expected x, y, z triplets of finite numbers, found {array.size} values",
            source=source,
            field=f"{prefix}ContourData",
        )
    if array.size and np.max(np.abs(array)) > MAX_COORDINATE_MM:
        raise InputError(
            f"a vertex lies {np.max(np.abs(array)):.4g} mm from the patient origin, beyond the "
            f"plausible +-{MAX_COORDINATE_MM:g} mm; the contour is corrupt",
            source=source,
            field=f"{prefix}ContourData",
        )
    return array.reshape(-1, 3)


def _contours(
    item: Dataset, name: str, number: int, source: str, warnings: list[str]
) -> list[NDArray[np.float64]]:
    contours: list[NDArray[np.float64]] = []
    skipped: dict[str, int] = {}
    seen: set[bytes] = set()
    degenerate = 0
    for index, contour in enumerate(_sequence(item, "ContourSequence")):
        prefix = f"ROIContourSequence[ROI {number}].ContourSequence[{index}]."
        geometric_type = (_str(contour, "ContourGeometricType") or "").upper()
        if not geometric_type:  # Type 1 (PS3.3 C.8.8.6): whether the polygon is closed
            raise InputError(
                f"ROI {name!r}: contour {index} has no ContourGeometricType",
                source=source,
                field=f"{prefix}ContourGeometricType",
            )
        if geometric_type != "CLOSED_PLANAR":
            label = geometric_type or "missing ContourGeometricType"
            skipped[label] = skipped.get(label, 0) + 1
            continue
        points = _contour_points(contour, source, prefix)
        stated = _int(contour, "NumberOfContourPoints", source, prefix)
        if stated is not None and stated != len(points):
            # which of the two is wrong cannot be told: a truncated or padded contour
            raise InputError(
                f"ROI {name!r}: contour {index} states {stated} points (NumberOfContourPoints) "
                f"but ContourData holds {len(points)}; re-export the structure set",
                source=source,
                field=f"{prefix}NumberOfContourPoints",
            )
        if len(points) < 3:
            degenerate += 1
            # Named one by one: a dropped contour changes the volume of a plane.
            plane = f" at z = {points[0, 2]:g} mm" if len(points) else ""
            warnings.append(
                f"ROI {name!r} (ROI {number}): contour {index}{plane} has {len(points)} "
                "point(s), a CLOSED_PLANAR contour needs at least 3; dropped"
            )
            continue
        deviation = _plane_deviation(points)
        if deviation > _PLANARITY_TOL_MM:
            warnings.append(
                f"ROI {name!r}: contour {index} is not planar (a vertex lies "
                f"{deviation:.3g} mm off the best-fit plane)"
            )
        # An exact copy of a polygon would cancel it under the even-odd rule; some exports
        # repeat contours, never meaning "hole the size of the island".
        key = points.tobytes()
        if key in seen:
            warnings.append(f"ROI {name!r}: contour {index} repeats an earlier one; dropped")
            continue
        seen.add(key)
        contours.append(points)
    for label, count in skipped.items():
        warnings.append(
            f"ROI {name!r}: {count} {label} contour(s) skipped (only CLOSED_PLANAR "
            "contours describe a volume)"
        )
    if degenerate and not contours:
        # contours were there, none describes an area: a broken ROI, not an empty one
        raise InputError(
            f"ROI {name!r} (ROI {number}): every CLOSED_PLANAR contour has fewer than 3 points; "
            "re-export the structure set",
            source=source,
            field=f"ROIContourSequence[ROI {number}].ContourSequence",
        )
    return contours


def _plane_deviation(points: NDArray[np.float64]) -> float:
    """Largest distance (mm) of a vertex from the least-squares plane of the polygon."""
    if np.ptp(points[:, 2]) <= _PLANARITY_TOL_MM:
        return float(np.ptp(points[:, 2]))  # the usual axial contour: fast path
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return float(np.max(np.abs(centred @ vt[-1])))


# --------------------------------------------------------------------------------------
# CT (image series) geometry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSeries:
    """Geometry and identity of an image series (CT, or MR/PET) without pixel values.

    Attributes
    ----------
    grid
        Voxel grid; k increases along the slice normal (row x column cosines).
    series_instance_uid, frame_of_reference_uid, modality
        As stated by the slices (identical in all of them).
    sop_instance_uids
        Slice SOP Instance UIDs in k order.
    sources
        Slice files in k order.
    provenance
        Patient position, slice thickness, what was skipped...
    """

    grid: Grid
    series_instance_uid: str | None
    frame_of_reference_uid: str | None
    modality: str
    sop_instance_uids: tuple[str, ...] = field(repr=False)
    sources: tuple[str, ...] = field(repr=False)
    provenance: dict = field(default_factory=dict, repr=False)


def read_ct_geometry(
    paths: PathLike | Sequence[PathLike], *, series_instance_uid: str | None = None
) -> Grid:
    """Voxel grid of a CT series (see :func:`read_ct_series`, which also gives the UIDs)."""
    return read_ct_series(paths, series_instance_uid=series_instance_uid).grid


@_collect_pydicom_warnings
def read_ct_series(
    paths: PathLike | Sequence[PathLike], *, series_instance_uid: str | None = None
) -> ImageSeries:
    """Read the geometry of an image series from its slice files (headers only).

    Parameters
    ----------
    paths
        A directory (its image files are used, other DICOM objects such as an RTSTRUCT in
        the same folder are skipped) or a list of slice files (each must be an image).
    series_instance_uid
        Pick this series when the files hold several.

    Raises
    ------
    InputError
        No slices; several series and none chosen; differing orientation, size, pixel
        spacing or frame of reference; oblique orientation; slices not stacked along their
        normal (gantry tilt); unequal or repeated slice spacing; a single slice without
        SliceThickness.

    Notes
    -----
    Slices are sorted by the projection of Image Position (Patient) onto the slice normal
    (row x column cosines, PS3.3 C.7.6.2.1.1); Instance Number and Slice Location are not
    trusted.  Oblique series are refused rather than resampled.
    """
    if isinstance(paths, str | os.PathLike):
        directory = Path(paths)
        if not directory.exists():
            raise InputError("not found", source=str(directory))
        if directory.is_dir():
            files = sorted(p for p in directory.iterdir() if p.is_file())
            datasets = _image_headers_in_directory(files, str(directory))
            origin_label = str(directory)
        else:
            datasets = [_image_header(directory)]
            origin_label = str(directory)
    else:
        files = [Path(p) for p in paths]
        if not files:
            raise InputError("no image files given")
        datasets = [_image_header(p) for p in files]
        origin_label = str(files[0].parent)

    series: dict[str, list[tuple[str, Dataset]]] = {}
    for source, ds in datasets:
        series.setdefault(_str(ds, "SeriesInstanceUID") or "", []).append((source, ds))
    if series_instance_uid is not None:
        if series_instance_uid not in series:
            raise InputError(
                f"series {series_instance_uid} not found; available: {', '.join(series)}",
                source=origin_label,
                field="SeriesInstanceUID",
            )
        chosen = series[series_instance_uid]
    elif len(series) > 1:
        described = "; ".join(f"{uid or '(none)'} ({len(v)} slices)" for uid, v in series.items())
        raise InputError(
            f"the files hold several image series ({described}); choose one",
            source=origin_label,
            field="SeriesInstanceUID",
        )
    else:
        chosen = next(iter(series.values()))
    return _series_geometry(chosen, origin_label)


def _image_header(path: Path) -> tuple[str, Dataset]:
    ds = read_dicom(
        path,
        modality=_IMAGE_MODALITIES,
        sop_class_uids=_IMAGE_SOP_CLASSES,
        stop_before_pixels=True,
    )
    return str(path), ds


def _image_headers_in_directory(files: list[Path], label: str) -> list[tuple[str, Dataset]]:
    found: list[tuple[str, Dataset]] = []
    for path in files:
        try:
            ds = read_dicom(path, stop_before_pixels=True)
        except InputError:
            continue  # non-DICOM files (notes, licences) may sit next to the slices
        if _str(ds, "Modality") in _IMAGE_MODALITIES:
            # Enhanced (multi-frame) CT/MR have another SOP class: refuse, do not skip.
            _check_kind(ds, str(path), _IMAGE_MODALITIES, _IMAGE_SOP_CLASSES)
            found.append((str(path), ds))
    if not found:
        raise InputError("no CT, MR or PET image slices found in this directory", source=label)
    return found


def _series_geometry(slices: list[tuple[str, Dataset]], label: str) -> ImageSeries:
    first_source, first = slices[0]
    row, col, oblique, iop = _orientation(first, first_source)
    if oblique:
        raise InputError(
            f"oblique image orientation {iop} is not supported (only slices whose rows and "
            "columns run along patient axes); resample the series to an axis-aligned grid",
            source=first_source,
            field="ImageOrientationPatient",
        )
    reference = _SliceReference(
        source=first_source,
        row=row,
        col=col,
        iop=iop,
        size=(
            _int(first, "Rows", first_source, required=True),
            _int(first, "Columns", first_source, required=True),
        ),
        spacing=_pixel_spacing(first, first_source),
        frame_of_reference=_str(first, "FrameOfReferenceUID"),
    )
    normal = np.cross(row, col)
    positions_arr = np.array([reference.position_of(source, ds) for source, ds in slices])
    along = positions_arr @ normal
    order = np.argsort(along, kind="stable")
    positions_arr, along = positions_arr[order], along[order]
    ordered = [slices[i] for i in order]
    _check_stack(positions_arr, along, normal, ordered)
    provenance: dict[str, Any] = {
        "warnings": (),
        "patient_position": _str(first, "PatientPosition"),
        "image_orientation_patient": iop,
    }
    step = _slice_step(along, first, first_source, label, provenance)
    di, dj = reference.spacing
    grid = Grid(
        shape=(len(ordered), *reference.size),
        affine=_affine(positions_arr[0], row, col, di, dj, step * normal),
    )
    _check_extent(grid, label, "ImagePositionPatient/PixelSpacing")
    return ImageSeries(
        grid=grid,
        series_instance_uid=_str(first, "SeriesInstanceUID"),
        frame_of_reference_uid=reference.frame_of_reference,
        modality=_str(first, "Modality") or "CT",
        sop_instance_uids=tuple(_str(ds, "SOPInstanceUID") or "" for _, ds in ordered),
        sources=tuple(source for source, _ in ordered),
        provenance=provenance,
    )


@dataclass(frozen=True)
class _SliceReference:
    """What every slice of a series must share with its first slice."""

    source: str
    row: NDArray[np.float64]
    col: NDArray[np.float64]
    iop: Any
    size: tuple[int, int]
    spacing: tuple[float, float]
    frame_of_reference: str | None

    def position_of(self, source: str, ds: Dataset) -> NDArray[np.float64]:
        """The slice's Image Position (Patient), once its orientation, size, pixel spacing
        and frame of reference are the first slice's (refused otherwise)."""
        other_row, other_col, _, other_iop = _orientation(ds, source)
        if not (
            np.allclose(other_row, self.row, atol=1e-6)
            and np.allclose(other_col, self.col, atol=1e-6)
        ):
            raise InputError(
                f"orientation {other_iop} differs from {self.iop} in {self.source}",
                source=source,
                field="ImageOrientationPatient",
            )
        size = (_int(ds, "Rows", source, required=True), _int(ds, "Columns", source, required=True))
        if size != self.size:
            raise InputError(
                f"image size differs from {self.source}", source=source, field="Rows/Columns"
            )
        if not np.allclose(_pixel_spacing(ds, source), self.spacing, atol=1e-4):
            raise InputError(
                f"pixel spacing differs from {self.source}", source=source, field="PixelSpacing"
            )
        if _str(ds, "FrameOfReferenceUID") != self.frame_of_reference:
            raise InputError(
                f"frame of reference differs from {self.source}",
                source=source,
                field="FrameOfReferenceUID",
            )
        position = _floats(ds, "ImagePositionPatient", source, count=3)
        _check_position(position, source, "ImagePositionPatient")
        return position


def _check_stack(positions, along, normal, ordered) -> None:
    """Slices sorted along the normal: every one on the normal through the first (no gantry
    tilt or shear), no two at one position."""
    lateral = positions - positions[0] - np.outer(along - along[0], normal)
    worst = int(np.argmax(np.linalg.norm(lateral, axis=1)))
    if np.linalg.norm(lateral[worst]) > _POSITION_TOL_MM:
        raise InputError(
            f"slice is shifted {np.linalg.norm(lateral[worst]):.3g} mm sideways from the stack "
            "(gantry tilt or sheared series); not supported",
            source=ordered[worst][0],
            field="ImagePositionPatient",
        )
    gaps = np.diff(along)
    if gaps.size and np.min(gaps) < _POSITION_TOL_MM:
        at = int(np.argmin(gaps))
        raise InputError(
            f"two slices at the same position ({along[at]:g} mm along the normal): "
            f"{ordered[at][0]} and {ordered[at + 1][0]}",
            source=ordered[at + 1][0],
            field="ImagePositionPatient",
        )


def _slice_step(along, first: Dataset, first_source: str, label: str, provenance: dict) -> float:
    """The slice spacing: from equally spaced positions, or a single slice's thickness."""
    if len(along) > 1:
        ok, step = _equally_spaced(along)
        if not ok:
            gaps = np.diff(along)
            raise InputError(
                f"slices are not equally spaced (gaps {np.unique(np.round(gaps, 3)).tolist()} "
                "mm); missing slices or a variable-thickness scan",
                source=label,
                field="ImagePositionPatient",
            )
        _check_spacing(step, label, "ImagePositionPatient")
        return step
    step = _float(first, "SliceThickness", first_source)
    if step is None or step <= 0:
        raise InputError(
            "single-slice series without a positive SliceThickness: the slice thickness is unknown",
            source=first_source,
            field="SliceThickness",
        )
    provenance["k_spacing_from"] = "SliceThickness"
    _check_spacing(step, first_source, "SliceThickness")
    return step


def read_ct_volume(
    paths: PathLike | Sequence[PathLike],
    *,
    series_instance_uid: str | None = None,
    max_voxels: int = MAX_GRID_VOXELS,
) -> tuple[NDArray[np.float32], Grid, str, str | None]:
    """Read a CT series' values in Hounsfield units, with its grid.

    Geometry and slice order come from :func:`read_ct_series`; each slice's pixel module is
    checked like an RTDOSE's (:func:`_pixel_format`, PixelData length, values within
    BitsStored) and its stored values are turned into HU by pydicom's modality LUT
    (``pydicom.pixels.apply_modality_lut``: Rescale Slope/Intercept or a Modality LUT
    Sequence, the Modality LUT Module of PS3.3 C.11.1 as pydicom's documentation cites it).

    Parameters
    ----------
    paths
        A directory of slices or a list of slice files (see :func:`read_ct_series`).
    series_instance_uid
        Pick this series when the files hold several.
    max_voxels
        Largest volume read (default :data:`MAX_GRID_VOXELS`).

    Returns
    -------
    values, grid, first_source, frame_of_reference_uid
        ``values[k, j, i]`` in HU (float32, k in the order of the grid), the grid, the
        first slice's file and the series' Frame of Reference UID.

    Raises
    ------
    InputError
        Everything :func:`read_ct_series` refuses; an MR or PET series (not in HU); a
        volume larger than ``max_voxels``; an inconsistent pixel module; a zero or
        non-finite Rescale Slope; non-finite values.
    """
    series = read_ct_series(paths, series_instance_uid=series_instance_uid)
    first = series.sources[0]
    if series.modality != "CT":
        raise InputError(
            f"is a {series.modality} series; values in Hounsfield units need a CT",
            source=first,
            field="Modality",
        )
    k, rows, columns = series.grid.shape
    _check_grid_size(first, k, rows, columns, max_voxels, "number of slices")
    volume = np.empty(series.grid.shape, dtype=np.float32)
    for index, source in enumerate(series.sources):
        ds = read_dicom(source, modality="CT", sop_class_uids=(CT_IMAGE_STORAGE,))
        volume[index] = read_slice_values(ds, source, rows, columns)
    return volume, series.grid, first, series.frame_of_reference_uid


def read_slice_values(ds: Dataset, source: str, rows: int, columns: int) -> NDArray[np.float64]:
    """The rescaled values of one greyscale image slice (CT in HU, PET in its Units).

    The pixel module is checked like an RTDOSE's (:func:`_pixel_format`, PixelData length,
    values within BitsStored) and pydicom's modality LUT is applied
    (``pydicom.pixels.apply_modality_lut``: Rescale Slope/Intercept or a Modality LUT
    Sequence, PS3.3 C.11.1).  Rescale Slope may differ from slice to slice (PET), so it is
    read per slice.

    Raises
    ------
    InputError
        No PixelData; more than one sample per pixel; an inconsistent pixel module; a zero
        or non-finite Rescale Slope or Intercept; non-finite rescaled values.
    """
    from pydicom.pixels import apply_modality_lut

    if "PixelData" not in ds:
        raise InputError("the slice has no PixelData", source=source, field="PixelData")
    samples = _int(ds, "SamplesPerPixel", source) or 1
    if samples != 1:
        raise InputError(
            f"expected 1 sample per pixel (greyscale), found {samples}",
            source=source,
            field="SamplesPerPixel",
        )
    fmt = _pixel_format(ds, source, allowed_bits=(8, 16), stored_equals_allocated=False)
    raw = _decode_pixels(ds, source, fmt, (1, rows, columns))[0]
    slope = _float(ds, "RescaleSlope", source)
    if slope is not None and slope == 0:
        raise InputError("must not be 0", source=source, field="RescaleSlope")
    _float(ds, "RescaleIntercept", source)  # refuses a non-numeric or non-finite value
    try:
        values = apply_modality_lut(raw, ds)
    except Exception as error:
        raise InputError(
            f"the modality LUT cannot be applied ({error})",
            source=source,
            field="RescaleSlope/RescaleIntercept",
        ) from None
    if not np.all(np.isfinite(values)):
        raise InputError("the rescaled values are not finite", source=source, field="RescaleSlope")
    return np.asarray(values, dtype=np.float64)


def check_frame_of_reference(
    dose: Dose, structure_set: StructureSet, *, dose_source: str | None = None
) -> None:
    """Refuse a structure set whose frame of reference differs from the dose grid's.

    Contours and dose are only comparable in one patient coordinate system (PS3.3 C.7.4.1,
    Frame of Reference Module); a dose planned on another CT, or a structure set of another
    patient, would give plausible-looking but meaningless DVHs.  The structure set's frame
    (Referenced Frame of Reference Sequence, and each ROI's Referenced Frame of Reference
    UID) must equal the dose's Frame of Reference UID; a file that states none is refused.

    Raises
    ------
    InputError
        The frames differ, or one of the files does not state its frame.
    """
    dose_source = dose_source or dose.provenance.get("source")
    dose_for = dose.provenance.get("frame_of_reference_uid")
    if not dose_for:
        raise InputError(
            "the dose does not state its frame of reference, so it cannot be matched to the "
            "structures; re-export the dose",
            source=dose_source,
            field="FrameOfReferenceUID",
        )
    # The set-level reference (3006,0010) may be absent; each ROI's Referenced Frame of
    # Reference UID (3006,0024) then still states the frame.
    stated = [structure_set.frame_of_reference_uid] + [
        s.frame_of_reference_uid for s in structure_set.structures.values()
    ]
    frames = list(dict.fromkeys(uid for uid in stated if uid))
    if not frames:
        raise InputError(
            "the structure set does not state its frame of reference, so it cannot be matched "
            "to the dose; re-export the structure set",
            source=structure_set.source,
            field="ReferencedFrameOfReferenceSequence",
        )
    for uid in frames:
        if uid != dose_for:
            dose_name = Path(str(dose_source)).name if dose_source else "dose"
            raise InputError(
                f"the structures are in frame of reference {uid}, the dose {dose_name} in "
                f"{dose_for}: they belong to different planning CTs (or patients); give the "
                "dose and structure set of the same plan",
                source=structure_set.source,
                field="ReferencedFrameOfReferenceSequence",
            )


def check_references(
    structure_set: StructureSet,
    reference: ImageSeries | Dose | str | Iterable[str],
    *,
    strict: bool = True,
) -> tuple[str, ...]:
    """Check that a structure set belongs to an image series or dose grid.

    Parameters
    ----------
    structure_set
        From :func:`read_rtstruct`.
    reference
        An :class:`ImageSeries` (frame of reference, series UID and referenced images are
        checked), a :class:`~reirrad.core.geometry.Dose` read from DICOM (frame of reference
        from its provenance), or one or more image Series Instance UIDs.
    strict
        Raise on any problem (default) instead of only returning the list.

    Returns
    -------
    tuple of str
        The problems found, empty when consistent.

    Raises
    ------
    InputError
        ``strict`` and at least one problem; the message lists them all.
    """
    problems: list[str] = []
    ss_for = structure_set.frame_of_reference_uid
    if isinstance(reference, ImageSeries):
        _compare_for(ss_for, reference.frame_of_reference_uid, "image series", problems)
        ref_series = reference.series_instance_uid
        if structure_set.referenced_series_uid is None:
            problems.append("the structure set does not reference any image series")
        elif structure_set.referenced_series_uid != ref_series:
            problems.append(
                f"the structure set references image series {structure_set.referenced_series_uid}"
                f", not {ref_series}"
            )
        else:
            available = set(reference.sop_instance_uids)
            missing = [u for u in structure_set.referenced_image_uids if u not in available]
            if missing:
                problems.append(
                    f"{len(missing)} of {len(structure_set.referenced_image_uids)} referenced "
                    f"images are not in the series (e.g. {missing[0]})"
                )
        for structure in structure_set.structures.values():
            if (
                structure.frame_of_reference_uid
                and reference.frame_of_reference_uid
                and structure.frame_of_reference_uid != reference.frame_of_reference_uid
            ):
                problems.append(
                    f"ROI {structure.name!r} is in frame of reference "
                    f"{structure.frame_of_reference_uid}, not {reference.frame_of_reference_uid}"
                )
    elif isinstance(reference, Dose):
        dose_for = reference.provenance.get("frame_of_reference_uid")
        _compare_for(ss_for, dose_for, "dose grid", problems)
    else:
        wanted = {reference} if isinstance(reference, str) else set(reference)
        if structure_set.referenced_series_uid is None:
            problems.append("the structure set does not reference any image series")
        elif structure_set.referenced_series_uid not in wanted:
            problems.append(
                f"the structure set references image series {structure_set.referenced_series_uid}"
                f", not {', '.join(sorted(wanted))}"
            )
    problems = list(dict.fromkeys(problems))
    if problems and strict:
        raise InputError(
            "structure set does not match: " + "; ".join(problems),
            source=structure_set.source,
            field="ReferencedFrameOfReferenceSequence",
        )
    return tuple(problems)


def _compare_for(ss_for: str | None, other: str | None, what: str, problems: list[str]) -> None:
    if ss_for is None:
        problems.append("the structure set does not state its frame of reference")
    elif other is None:
        problems.append(f"the {what} does not state its frame of reference")
    elif ss_for != other:
        problems.append(
            f"frame of reference {ss_for} of the structure set differs from {other} of the {what}"
        )


# --------------------------------------------------------------------------------------
# RTPLAN
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prescription:
    """One Dose Reference Sequence item (PS3.3 C.8.8.10). Doses in Gy, for the whole plan."""

    number: int | None
    dose_reference_type: str | None  # TARGET or ORGAN_AT_RISK
    structure_type: str | None  # POINT, VOLUME, COORDINATES, SITE
    description: str | None
    referenced_roi_number: int | None
    target_prescription_dose_gy: float | None
    target_minimum_dose_gy: float | None = None
    target_maximum_dose_gy: float | None = None
    delivery_maximum_dose_gy: float | None = None
    organ_at_risk_maximum_dose_gy: float | None = None
    point_coordinates: tuple[float, float, float] | None = None
    uid: str | None = None


@dataclass(frozen=True)
class ReferencedBeam:
    """A beam of a fraction group: Beam Dose (Gy per fraction) and Beam Meterset (MU)."""

    beam_number: int
    beam_dose_gy: float | None
    meterset: float | None


@dataclass(frozen=True)
class FractionGroup:
    """One Fraction Group Sequence item (PS3.3 C.8.8.13)."""

    number: int
    fractions_planned: int | None
    beams: tuple[ReferencedBeam, ...] = ()
    number_of_brachy_application_setups: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Beam:
    """One Beam (or Ion Beam) Sequence item (PS3.3 C.8.8.14)."""

    number: int
    name: str | None
    radiation_type: str | None
    beam_type: str | None  # STATIC or DYNAMIC
    treatment_delivery_type: str | None  # TREATMENT, OPEN_PORTFILM, ...
    nominal_energy: float | None  # MeV (photons: MV), first control point
    meterset: float | None  # from the fraction group that references the beam
    machine: str | None = None
    number_of_control_points: int | None = None


@dataclass(frozen=True)
class PlanInfo:
    """What an RTPLAN says about fractionation and prescription (no delivery details).

    ``fractions_planned`` is that of the single fraction group; with several fraction
    groups it is ``None`` (each group's count is in ``fraction_groups``; adding them would
    mix different doses per fraction).
    """

    sop_instance_uid: str | None
    label: str | None
    name: str | None
    fractions_planned: int | None
    fraction_groups: tuple[FractionGroup, ...]
    prescriptions: tuple[Prescription, ...]
    beams: tuple[Beam, ...]
    plan_date: _dt.date | None
    approval_status: str | None
    review_date: _dt.date | None
    frame_of_reference_uid: str | None
    source: str | None = None
    description: str | None = None
    plan_intent: str | None = None
    reviewer_name: str | None = None
    referenced_structure_set_uid: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def prescribed_dose_gy(self) -> float | None:
        """The plan's target prescription dose (Gy, whole plan) when the plan is unambiguous.

        Taken from TARGET dose references of structure type SITE or VOLUME (or, if there
        are none, from any TARGET reference); ``None`` when there is no such value or when
        they disagree (the caller must then choose one from :attr:`prescriptions`).
        """
        targets = [
            p
            for p in self.prescriptions
            if p.dose_reference_type == "TARGET" and p.target_prescription_dose_gy is not None
        ]
        preferred = [p for p in targets if p.structure_type in ("SITE", "VOLUME")] or targets
        doses = {round(p.target_prescription_dose_gy, 6) for p in preferred}
        return doses.pop() if len(doses) == 1 else None

    @property
    def dose_per_fraction_gy(self) -> float | None:
        """``prescribed_dose_gy / fractions_planned`` when both are known."""
        dose = self.prescribed_dose_gy
        if dose is None or not self.fractions_planned:
            return None
        return dose / self.fractions_planned


@_collect_pydicom_warnings
def read_rtplan(path: PathLike) -> PlanInfo:
    """Read fractionation, prescriptions and beams of an RTPLAN (photon, ion or brachy).

    Raises
    ------
    InputError
        Not an RTPLAN, truncated file, missing Fraction Group Sequence or fraction count,
        beams referenced but missing (a sign of an incomplete file).
    """
    source = str(path)
    ds = read_dicom(path, modality="RTPLAN", sop_class_uids=(RT_PLAN_STORAGE, RT_ION_PLAN_STORAGE))
    warnings: list[str] = []

    prescriptions = _plan_prescriptions(ds, source)
    groups, meterset_by_beam = _fraction_groups(ds, source)
    if len(groups) > 1:
        warnings.append(
            f"{len(groups)} fraction groups ("
            + ", ".join(f"#{g.number}: {g.fractions_planned} fractions" for g in groups)
            + "); fractions_planned is left unset, see fraction_groups"
        )

    beams = _plan_beams(ds, source, meterset_by_beam)

    structure_sets = _sequence(ds, "ReferencedStructureSetSequence")
    return PlanInfo(
        sop_instance_uid=_str(ds, "SOPInstanceUID"),
        label=_str(ds, "RTPlanLabel"),
        name=_str(ds, "RTPlanName"),
        fractions_planned=groups[0].fractions_planned if len(groups) == 1 else None,
        fraction_groups=tuple(groups),
        prescriptions=tuple(prescriptions),
        beams=tuple(beams),
        plan_date=_date(ds, "RTPlanDate"),
        approval_status=_str(ds, "ApprovalStatus"),
        review_date=_date(ds, "ReviewDate"),
        frame_of_reference_uid=_str(ds, "FrameOfReferenceUID"),
        source=source,
        description=_str(ds, "RTPlanDescription"),
        plan_intent=_str(ds, "PlanIntent"),
        reviewer_name=_str(ds, "ReviewerName"),
        referenced_structure_set_uid=(
            _str(structure_sets[0], "ReferencedSOPInstanceUID") if structure_sets else None
        ),
        warnings=tuple(warnings),
    )


def _plan_prescriptions(ds: Dataset, source: str) -> list[Prescription]:
    """The Dose Reference Sequence as prescriptions (PS3.3 C.8.8.10)."""
    prescriptions = []
    for index, item in enumerate(_sequence(ds, "DoseReferenceSequence")):
        prefix = f"DoseReferenceSequence[{index}]."
        point = None
        if _present(item, "DoseReferencePointCoordinates"):
            point = tuple(
                float(v)
                for v in _floats(
                    item, "DoseReferencePointCoordinates", source, count=3, prefix=prefix
                )
            )
        prescriptions.append(
            Prescription(
                number=_int(item, "DoseReferenceNumber", source, prefix),
                dose_reference_type=_str(item, "DoseReferenceType"),
                structure_type=_str(item, "DoseReferenceStructureType"),
                description=_str(item, "DoseReferenceDescription"),
                referenced_roi_number=_int(item, "ReferencedROINumber", source, prefix),
                target_prescription_dose_gy=_float(item, "TargetPrescriptionDose", source, prefix),
                target_minimum_dose_gy=_float(item, "TargetMinimumDose", source, prefix),
                target_maximum_dose_gy=_float(item, "TargetMaximumDose", source, prefix),
                delivery_maximum_dose_gy=_float(item, "DeliveryMaximumDose", source, prefix),
                organ_at_risk_maximum_dose_gy=_float(
                    item, "OrganAtRiskMaximumDose", source, prefix
                ),
                point_coordinates=point,
                uid=_str(item, "DoseReferenceUID"),
            )
        )
    return prescriptions


def _fraction_groups(
    ds: Dataset, source: str
) -> tuple[list[FractionGroup], dict[int, float | None]]:
    """The fraction groups (PS3.3 C.8.8.13) and the meterset of each referenced beam."""
    _require(ds, "FractionGroupSequence", source)
    groups = []
    meterset_by_beam: dict[int, float | None] = {}
    for index, item in enumerate(_sequence(ds, "FractionGroupSequence")):
        prefix = f"FractionGroupSequence[{index}]."
        number = _int(item, "FractionGroupNumber", source, prefix, required=True)
        fractions = _int(item, "NumberOfFractionsPlanned", source, prefix, required=True)
        if fractions is not None and fractions < 1:
            raise InputError(
                f"must be at least 1, found {fractions}",
                source=source,
                field=f"{prefix}NumberOfFractionsPlanned",
            )
        referenced = []
        for b_index, beam in enumerate(_sequence(item, "ReferencedBeamSequence")):
            b_prefix = f"{prefix}ReferencedBeamSequence[{b_index}]."
            beam_number = _int(beam, "ReferencedBeamNumber", source, b_prefix, required=True)
            meterset = _float(beam, "BeamMeterset", source, b_prefix)
            referenced.append(
                ReferencedBeam(
                    beam_number=beam_number,
                    beam_dose_gy=_float(beam, "BeamDose", source, b_prefix),
                    meterset=meterset,
                )
            )
            meterset_by_beam[beam_number] = meterset
        stated_beams = _int(item, "NumberOfBeams", source, prefix)
        if stated_beams is not None and stated_beams != len(referenced):
            raise InputError(
                f"NumberOfBeams is {stated_beams} but {len(referenced)} beams are referenced "
                "(incomplete or corrupt file)",
                source=source,
                field=f"{prefix}ReferencedBeamSequence",
            )
        groups.append(
            FractionGroup(
                number=number,
                fractions_planned=fractions,
                beams=tuple(referenced),
                number_of_brachy_application_setups=_int(
                    item, "NumberOfBrachyApplicationSetups", source, prefix
                ),
                description=_str(item, "FractionGroupDescription"),
            )
        )
    return groups, meterset_by_beam


def _plan_beams(ds: Dataset, source: str, meterset_by_beam: dict[int, float | None]) -> list[Beam]:
    """The (ion) beams; every beam a fraction group references must be present."""
    beam_keyword = "IonBeamSequence" if "IonBeamSequence" in ds else "BeamSequence"
    beams = []
    for index, item in enumerate(_sequence(ds, beam_keyword)):
        prefix = f"{beam_keyword}[{index}]."
        number = _int(item, "BeamNumber", source, prefix, required=True)
        control_points = _sequence(
            item,
            "IonControlPointSequence"
            if beam_keyword == "IonBeamSequence"
            else "ControlPointSequence",
        )
        stated_cps = _int(item, "NumberOfControlPoints", source, prefix)
        if stated_cps is not None and stated_cps != len(control_points):
            raise InputError(
                f"NumberOfControlPoints is {stated_cps} but {len(control_points)} control "
                "points are present (incomplete or corrupt file)",
                source=source,
                field=f"{prefix}ControlPointSequence",
            )
        energy = (
            _float(control_points[0], "NominalBeamEnergy", source, f"{prefix}ControlPoint[0].")
            if control_points
            else None
        )
        beams.append(
            Beam(
                number=number,
                name=_str(item, "BeamName"),
                radiation_type=_str(item, "RadiationType"),
                beam_type=_str(item, "BeamType"),
                treatment_delivery_type=_str(item, "TreatmentDeliveryType"),
                nominal_energy=energy,
                meterset=meterset_by_beam.get(number),
                machine=_str(item, "TreatmentMachineName"),
                number_of_control_points=stated_cps,
            )
        )
    known = {b.number for b in beams}
    missing = sorted(n for n in meterset_by_beam if n not in known)
    if missing:
        raise InputError(
            f"fraction groups reference beams {missing} that are not in {beam_keyword} "
            "(incomplete or corrupt file)",
            source=source,
            field=beam_keyword,
        )
    return beams
