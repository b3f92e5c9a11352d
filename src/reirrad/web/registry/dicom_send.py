"""Sending an assessment's doses back to the planning system (in the worker).

Two steps, each a background job, each in the audit log (action ``export``, detail ``kind``
``dicom_send``), so no table of its own is needed:

1. **prepare**: the frozen case of a finished assessment is written out again (hashes
   checked, as for a run) and :func:`reirrad.pipelines.send_back.write_send_back` writes the
   cumulative EQD2 (EFFECTIVE) and residual budget (PHYSICAL) RTDOSEs; both go into the
   content-addressed store, and the entry ``prepared`` names them by SHA-256 with their
   maximum and mean.
2. **send**: after a physicist confirmed the preview of exactly those two hashes, they are
   sent by C-STORE (:func:`reirrad.io.dicom_scu.send_files`) to the configured destination;
   the entry ``sent`` (or ``send_failed``) holds each object's C-STORE status.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from reirrad.errors import InputError
from reirrad.web.registry import audit
from reirrad.web.registry.models import Assessment, AuditEvent, StoredObject
from reirrad.web.registry.runner import _materialize

logger = logging.getLogger(__name__)

KIND = "dicom_send"
#: The steps of the audit entries of a send, in the order they happen.
STEPS = ("prepare_requested", "prepared", "prepare_failed", "send_requested", "sent", "send_failed")


def destination_text() -> str:
    """The configured planning-system AE (``AE@host:port``), or "" when none is set."""
    return str(getattr(settings, "DICOM_SEND_TO", "") or "").strip()


def destination():
    """The configured destination as a :class:`~reirrad.io.dicom_scu.Peer` (InputError if bad)."""
    from reirrad.io.dicom_scu import parse_destination

    text = destination_text()
    if not text:
        raise InputError(
            "no planning system is configured: set REIRRAD_DICOM_SEND_TO=AE@host:port",
            source="settings",
        )
    return parse_destination(text, source="REIRRAD_DICOM_SEND_TO")


def entries(assessment: Assessment, *steps: str):
    """Audit entries of this assessment's sends, newest first (optionally of some steps)."""
    found = AuditEvent.objects.filter(
        object_type="Assessment", object_id=str(assessment.pk), detail__kind=KIND
    )
    if steps:
        found = found.filter(detail__step__in=list(steps))
    return found.order_by("-at", "-id")


def latest_preparation(assessment: Assessment) -> AuditEvent | None:
    """The newest ``prepared`` (or ``prepare_failed``) entry, or None."""
    return entries(assessment, "prepared", "prepare_failed").first()


def _user(user_id: int | None):
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def _store(path: Path, name: str) -> StoredObject:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return StoredObject.from_path(
        path,
        kind=StoredObject.Kind.DICOM,
        media_type="application/dicom",
        original_name=name,
        modality="RTDOSE",
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        frame_of_reference_uid=str(ds.FrameOfReferenceUID),
        series_description=str(ds.get("SeriesDescription", ""))[:200],
    )


def _labels(path: Path) -> dict[str, Any]:
    """What the stored file itself says it is (the page shows these, not what we meant to
    write): DoseType, Series Description and the derivation codes (CID 7220)."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return {
        "dose_type": str(ds.get("DoseType", "")),
        "series_description": str(ds.get("SeriesDescription", "")),
        "derivation": [
            f"{c.CodeValue} {c.CodeMeaning}" for c in ds.get("DerivationCodeSequence", [])
        ],
    }


def prepare(assessment_id: int, user_id: int | None = None) -> str:
    """Write and store the two RTDOSEs of a finished assessment; return the audit step."""
    from reirrad.pipelines.send_back import write_send_back

    assessment = Assessment.objects.get(pk=assessment_id)
    user = _user(user_id)
    try:
        if assessment.status != Assessment.Status.DONE:
            raise InputError(f"assessment {assessment.pk} is {assessment.status}, not done")
        with tempfile.TemporaryDirectory(prefix="reirrad-send-") as scratch:
            folder = Path(scratch)
            case_path = _materialize(assessment, folder / "case")
            made = write_send_back(
                case_path,
                folder / "out",
                constraint_sets=assessment.parameters.get("constraint_sets"),
            )
            cumulative = _store(made.cumulative_path, f"assessment-{assessment.pk}-eqd2.dcm")
            budget = _store(made.budget_path, f"assessment-{assessment.pk}-budget.dcm")
    except InputError as error:
        audit.record("export", user=user, obj=assessment, kind=KIND, step="prepare_failed",
                     reason=str(error))  # fmt: skip
        return "prepare_failed"
    objects = [
        {"name": "cumulative EQD2", "sha256": cumulative.sha256,
         "sop_instance_uid": cumulative.sop_instance_uid, **_labels(cumulative.path),
         **made.statistics["cumulative_eqd2"]},
        {"name": f"residual budget ({made.fractions} fractions)", "sha256": budget.sha256,
         "sop_instance_uid": budget.sop_instance_uid, **_labels(budget.path),
         **made.statistics["residual_budget"]},
    ]  # fmt: skip
    audit.record(
        "export", user=user, obj=assessment, kind=KIND, step="prepared", objects=objects,
        fractions=made.fractions, frame_of_reference_uid=made.frame_of_reference_uid,
        limits_used=list(made.limits_used), limits_not_used=list(made.limits_not_used),
        exhausted=list(made.exhausted),
    )  # fmt: skip
    return "prepared"


def send(assessment_id: int, sha256s: list[str], user_id: int | None = None) -> str:
    """C-STORE the confirmed objects to the configured destination; return the audit step."""
    from reirrad.io.dicom_scu import send_files

    assessment = Assessment.objects.get(pk=assessment_id)
    user = _user(user_id)
    target = destination_text()
    detail: dict[str, Any] = {"kind": KIND, "destination": target, "sha256": list(sha256s)}
    try:
        peer = destination()
        stored = [StoredObject.objects.filter(sha256=s).first() for s in sha256s]
        if any(s is None or not s.path.is_file() for s in stored):
            raise InputError("a confirmed object is missing from the store", source="file store")
        calling = str(getattr(settings, "DICOM_AE_TITLE", "REIRRAD") or "REIRRAD")
        results = send_files([s.path for s in stored], peer, calling_ae=calling)
    except InputError as error:
        audit.record("export", user=user, obj=assessment, step="send_failed",
                     reason=str(error), **detail)  # fmt: skip
        return "send_failed"
    rows = [
        {"sop_instance_uid": r.sop_instance_uid, "status": r.status, "message": r.message}
        for r in results
    ]
    step = "sent" if all(r.ok for r in results) else "send_failed"
    audit.record("export", user=user, obj=assessment, step=step, results=rows, **detail)
    logger.info("assessment %s: send-back to %s: %s", assessment.pk, target, step)
    return step
