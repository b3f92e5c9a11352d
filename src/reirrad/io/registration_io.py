"""Read (and write) DICOM Spatial Registration objects (REG, rigid matrices).

A Spatial Registration instance (SOP Class 1.2.840.10008.5.1.4.1.1.66.1) has its own Frame
of Reference, the *registered* coordinate system. Each item of the Registration Sequence
(0070,0308) names a Frame of Reference UID (0020,0052) and, in its Matrix Registration
Sequence (0070,0309) > Matrix Sequence (0070,030A), Frame of Reference Transformation
Matrices (3006,00C6) that transform coordinates of that frame into the registered one
(PS3.3 C.20.2; several matrices in one Matrix Sequence are applied in order). With ``A``
the matrix of the reference frame's item (identity when the reference frame *is* the
registration's frame) and ``B`` that of the moving frame, ``x_ref = A^-1 B x_mov``.
Only RIGID matrices are accepted (Frame of Reference Transformation Matrix Type (0070,030C));
RIGID_SCALE and AFFINE would change volumes and are refused.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from reirrad.core.registration import Transform, is_rigid
from reirrad.errors import InputError
from reirrad.io.dicom import MAX_COORDINATE_MM, read_dicom

__all__ = [
    "SPATIAL_REGISTRATION_STORAGE",
    "read_spatial_registration",
    "write_spatial_registration",
]

SPATIAL_REGISTRATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.1"


def _item_matrix(item: Dataset, source: str, where: str) -> np.ndarray:
    total = np.eye(4)
    # Type 1 in the Spatial Registration Module (PS3.3 C.20.2): a registration item without
    # its matrix is broken, not an identity
    registrations = item.get("MatrixRegistrationSequence")
    if not registrations:
        raise InputError(
            "the registration item has no Matrix Registration Sequence",
            source=source,
            field=f"{where}.MatrixRegistrationSequence",
        )
    for m_index, matrix_registration in enumerate(registrations):
        matrices = matrix_registration.get("MatrixSequence")
        if not matrices:
            raise InputError(
                "the matrix registration has no Matrix Sequence",
                source=source,
                field=f"{where}.MatrixRegistrationSequence[{m_index}].MatrixSequence",
            )
        for s_index, entry in enumerate(matrices):
            field = f"{where}.MatrixRegistrationSequence[{m_index}].MatrixSequence[{s_index}]"
            if "FrameOfReferenceTransformationMatrixType" not in entry:  # Type 1
                raise InputError(
                    "the matrix has no FrameOfReferenceTransformationMatrixType (RIGID, "
                    "RIGID_SCALE or AFFINE): reirrad does not assume one",
                    source=source,
                    field=f"{field}.FrameOfReferenceTransformationMatrixType",
                )
            kind = str(entry.FrameOfReferenceTransformationMatrixType).upper()
            if kind != "RIGID":
                raise InputError(
                    f"matrix type {kind} is not rigid; reirrad accepts RIGID registrations only",
                    source=source,
                    field=field,
                )
            values = entry.get("FrameOfReferenceTransformationMatrix")
            if values is None or len(values) != 16:
                raise InputError(
                    "the transformation matrix must have 16 values", source=source, field=field
                )
            try:
                matrix = np.asarray([float(v) for v in values]).reshape(4, 4)
            except (TypeError, ValueError):
                raise InputError(
                    f"the transformation matrix holds non-numbers ({list(values)!r})",
                    source=source,
                    field=f"{field}.FrameOfReferenceTransformationMatrix",
                ) from None
            if not np.all(np.isfinite(matrix)):
                raise InputError(
                    "the transformation matrix holds non-finite values (NaN or Inf)",
                    source=source,
                    field=f"{field}.FrameOfReferenceTransformationMatrix",
                )
            if np.max(np.abs(matrix[:3, 3])) > MAX_COORDINATE_MM:
                raise InputError(
                    f"the translation {matrix[:3, 3].tolist()} mm is beyond the plausible "
                    f"+-{MAX_COORDINATE_MM:g} mm; the registration is corrupt",
                    source=source,
                    field=f"{field}.FrameOfReferenceTransformationMatrix",
                )
            if not is_rigid(matrix, tol=1e-3):
                raise InputError(
                    "the matrix is labelled RIGID but is not a rotation + translation",
                    source=source,
                    field=field,
                )
            total = matrix @ total  # applied in order
    return total


def read_spatial_registration(
    path: str | Path,
    *,
    moving_frame_uid: str | None = None,
    reference_frame_uid: str | None = None,
) -> Transform:
    """Transform (moving -> reference) from a DICOM REG file.

    Parameters
    ----------
    path
        The Spatial Registration file.
    moving_frame_uid
        Frame of reference of the earlier course. When omitted, the REG must register
        exactly one frame other than the reference.
    reference_frame_uid
        Frame of reference of the reference course; default the REG's own frame.

    Raises
    ------
    InputError
        Wrong SOP class, no item for a frame, a non-rigid matrix.
    """
    source = str(path)
    # read_dicom refuses non-regular files (FIFOs, devices), oversized, non-DICOM and
    # truncated files before and while pydicom parses them.
    ds = read_dicom(path, stop_before_pixels=True)
    if str(ds.get("SOPClassUID", "")) != SPATIAL_REGISTRATION_STORAGE:
        raise InputError(
            "not a Spatial Registration object (SOP Class 1.2.840.10008.5.1.4.1.1.66.1); "
            "deformable registrations are not read",
            source=source,
            field="SOPClassUID",
        )
    registered_frame = str(ds.get("FrameOfReferenceUID", ""))
    reference_frame_uid = reference_frame_uid or registered_frame
    items = {}
    for index, item in enumerate(ds.get("RegistrationSequence", [])):
        uid = str(item.get("FrameOfReferenceUID", ""))
        if not uid:
            raise InputError(
                "a registration item has no Frame of Reference UID",
                source=source,
                field=f"RegistrationSequence[{index}]",
            )
        items[uid] = _item_matrix(item, source, f"RegistrationSequence[{index}]")
    if not items:
        raise InputError(
            "the Registration Sequence is empty", source=source, field="RegistrationSequence"
        )
    if reference_frame_uid in items:
        a = items[reference_frame_uid]
    elif reference_frame_uid == registered_frame:
        a = np.eye(4)
    else:
        raise InputError(
            f"the registration does not involve the reference frame {reference_frame_uid}",
            source=source,
            field="RegistrationSequence",
        )
    others = [uid for uid in items if uid != reference_frame_uid]
    if moving_frame_uid is None:
        if len(others) != 1:
            raise InputError(
                f"the registration relates {len(others)} other frames to the reference; say "
                "which is the moving course's frame",
                source=source,
                field="RegistrationSequence",
            )
        moving_frame_uid = others[0]
    if moving_frame_uid not in items:
        raise InputError(
            f"the registration has no item for the moving frame {moving_frame_uid}",
            source=source,
            field="RegistrationSequence",
        )
    matrix = np.linalg.inv(a) @ items[moving_frame_uid]
    return Transform(
        matrix=matrix,
        kind="reg",
        uncertain=False,
        moving_frame_uid=moving_frame_uid,
        reference_frame_uid=reference_frame_uid,
        description=f"DICOM Spatial Registration {Path(path).name} ({ds.SOPInstanceUID})",
    )


def write_spatial_registration(
    path: str | Path,
    matrix: np.ndarray,
    *,
    moving_frame_uid: str,
    reference_frame_uid: str,
    template: Dataset | None = None,
    study_instance_uid: str | None = None,
    description: str = "rigid registration",
) -> Path:
    """Write a REG file whose frame is ``reference_frame_uid``: ``x_ref = matrix @ x_mov``."""
    from pydicom.uid import generate_uid

    from reirrad.io.export import _copy_patient_study, _new_dataset

    if not is_rigid(matrix):
        raise InputError("only rigid matrices are written", field="matrix")
    ds = _new_dataset(SPATIAL_REGISTRATION_STORAGE, generate_uid())
    _copy_patient_study(ds, template, study_instance_uid)
    ds.Modality = "REG"
    ds.Manufacturer = "reirrad"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = description[:64]
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = reference_frame_uid
    ds.PositionReferenceIndicator = ""
    now = _dt.datetime.now()
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.ContentLabel = "REG"
    ds.ContentDescription = description[:64]
    ds.ContentCreatorName = ""
    items = []
    for uid, m in (
        (reference_frame_uid, np.eye(4)),
        (moving_frame_uid, np.asarray(matrix, dtype=float)),
    ):
        entry = Dataset()
        entry.FrameOfReferenceTransformationMatrixType = "RIGID"
        entry.FrameOfReferenceTransformationMatrix = [f"{v:.10g}" for v in m.flatten()]
        matrix_registration = Dataset()
        matrix_registration.MatrixSequence = [entry]
        matrix_registration.FrameOfReferenceTransformationComment = description[:64]
        item = Dataset()
        item.FrameOfReferenceUID = uid
        item.MatrixRegistrationSequence = [matrix_registration]
        items.append(item)
    ds.RegistrationSequence = items
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
