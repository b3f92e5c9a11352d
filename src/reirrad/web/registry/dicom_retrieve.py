"""Retrieving a patient's prior courses from a PACS (in the worker).

The PACS (``REIRRAD_DICOM_PACS``) is asked for the studies of the patient's identifier
(Study Root C-FIND, exact patient ID) and moves their RT series (RTPLAN, RTDOSE, RTSTRUCT, REG,
RTRECORD) by C-MOVE to this node's AE (``REIRRAD_DICOM_AE_TITLE``), i.e. to ``reirrad
dicom-listen``, whose spool is the way in for every received object; the PACS must know that
AE's host and port. Each request and its outcome (per study: completed and failed
sub-operations) is an audit entry (action ``import``, detail ``kind: dicom_retrieve``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from reirrad.errors import InputError
from reirrad.web.registry import audit
from reirrad.web.registry.models import Patient

KIND = "dicom_retrieve"


def pacs_text() -> str:
    """The configured PACS (``AE@host:port``), or ""."""
    return str(getattr(settings, "DICOM_PACS", "") or "").strip()


def retrieve_prior(patient_id: int, user_id: int | None = None) -> str:
    """Find the patient's studies on the PACS and move their RT series here; the audit step."""
    from reirrad.io.dicom_scu import RT_MODALITIES, find_studies, move_study, parse_destination

    patient = Patient.objects.get(pk=patient_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    own_ae = str(getattr(settings, "DICOM_AE_TITLE", "REIRRAD") or "REIRRAD")
    detail = {"kind": KIND, "pacs": pacs_text(), "move_destination": own_ae}
    studies = []
    try:
        if not pacs_text():
            raise InputError("no PACS is configured: set REIRRAD_DICOM_PACS=AE@host:port",
                             source="settings")  # fmt: skip
        pacs = parse_destination(pacs_text(), source="REIRRAD_DICOM_PACS")
        for study in find_studies(pacs, patient.identifier, calling_ae=own_ae):
            if not set(study.modalities) & set(RT_MODALITIES) and study.modalities:
                continue  # no RT object in it (a study listing no modalities is tried)
            moved = move_study(pacs, study.study_uid, own_ae, calling_ae=own_ae)
            studies.append(
                {"study_uid": study.study_uid, "date": study.study_date,
                 "completed": sum(m.completed for m in moved),
                 "failed": sum(m.failed for m in moved)}
            )  # fmt: skip
    except InputError as error:
        audit.record("import", user=user, obj=patient, step="retrieve_failed",
                     reason=str(error), studies=studies, **detail)  # fmt: skip
        return "retrieve_failed"
    audit.record("import", user=user, obj=patient, step="retrieved", studies=studies, **detail)
    return "retrieved"
