"""Objects received by the DICOM node, registered into the registry; proposed courses.

The node (:mod:`reirrad.io.dicom_node`) writes each object to its spool atomically; the
spool is the queue.  :func:`register_spooled` registers one spool file into the
content-addressed store and the database through the upload path's
:func:`~reirrad.web.registry.ingest.register_dicom_file`, then records a
:class:`~reirrad.web.registry.models.ReceivedObject` row keyed on (SOP Instance UID,
SHA-256).  Registering a file twice returns the first row, so a crash between the spool
write and the registration loses nothing (:func:`sweep`, run when the listener starts,
registers whatever the spool holds without a row) and duplicates nothing.

:func:`propose` turns a :class:`~reirrad.core.dicom_groups.ProposedCourse` into a
:class:`~reirrad.web.registry.models.DicomProposal`, matching the patient by ID within the
listener's department. A different birth date than the registry's, or a name or birth
date that differs from an earlier proposal under the same ID, makes it a *conflict* for a
person to resolve; nothing is merged.  An unknown ID does not create a patient: the
proposal waits, and the patient is created when a planner confirms it (a patient enters
the registry only through a person, as with the patient form).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from reirrad.core.dicom_groups import ProposedCourse
from reirrad.errors import InputError
from reirrad.io.dicom_node import is_conflict_copy, spooled_objects
from reirrad.web.registry import audit, ingest, store
from reirrad.web.registry.models import (
    Department,
    DicomProposal,
    Patient,
    ReceivedObject,
    StoredObject,
    Upload,
    UploadItem,
)

LOG = logging.getLogger("reirrad.dicom_node")

#: What the node registers: the upload path's modalities and the treatment records (their
#: dates date a course).
MODALITIES = (*ingest.MODALITIES, "RTRECORD")


def node_department() -> Department:
    """The department the listener files objects under (``REIRRAD_DICOM_DEPARTMENT``).

    Without the setting, the only department; several departments need the setting.
    """
    name = settings.DICOM_DEPARTMENT
    if name:
        found = Department.objects.filter(name=name).first()
        if found is None:
            raise InputError(
                f"no department named {name!r}; create it or correct the setting",
                field="REIRRAD_DICOM_DEPARTMENT",
            )
        return found
    departments = list(Department.objects.all()[:2])
    if len(departments) != 1:
        raise InputError(
            "set REIRRAD_DICOM_DEPARTMENT to the department that receives the objects "
            f"({len(departments)} departments exist)",
            field="REIRRAD_DICOM_DEPARTMENT",
        )
    return departments[0]


def _uid_of(path: Path) -> str:
    return path.name.split(".conflict-")[0].removesuffix(".dcm")


def register_spooled(path: Path, department: Department) -> ReceivedObject | None:
    """Register one spool file (idempotent); ``None`` when it is refused (logged)."""
    sha256 = store.sha256_of(path)
    uid = _uid_of(path)
    found = ReceivedObject.objects.filter(sop_instance_uid=uid, sha256=sha256).first()
    if found is not None:
        return found
    try:
        stored = ingest.register_dicom_file(path, path.name, modalities=MODALITIES, link=True)
    except InputError as error:
        LOG.warning("not registered: %s", error)
        return None
    try:
        with transaction.atomic():
            return ReceivedObject.objects.create(
                department=department, stored=stored, sop_instance_uid=uid, sha256=sha256,
                spool_name=path.name[:200],
            )  # fmt: skip
    except IntegrityError:  # registered meanwhile by another process (sweep and listener)
        return ReceivedObject.objects.get(sop_instance_uid=uid, sha256=sha256)


def register_batch(paths: Iterable[Path], department: Department) -> int:
    """Register several spool files in one transaction (one commit: the batching that
    keeps registration beside the network); return how many were registered."""
    count = 0
    with transaction.atomic():
        for path in paths:
            count += register_spooled(path, department) is not None
    return count


def unregistered(spool: Path) -> list[Path]:
    """Spool files without a :class:`ReceivedObject` row (by name; a registered name whose
    bytes differ is a conflict copy, which has its own name)."""
    names = set(ReceivedObject.objects.values_list("spool_name", flat=True))
    return [p for p in spooled_objects(spool) if p.name not in names]


def sweep(spool: Path, department: Department) -> list[str]:
    """Register everything in the spool that has no row yet (after a crash); return the
    Study Instance UIDs of what it registered (to be grouped as new arrivals)."""
    todo = unregistered(spool)
    if not todo:
        return []
    LOG.info("registering %d spooled object(s) left from before", len(todo))
    register_batch(todo, department)
    rows = ReceivedObject.objects.filter(spool_name__in=[p.name[:200] for p in todo])
    return sorted(set(rows.values_list("stored__study_instance_uid", flat=True)) - {""})


def check_spool(spool: Path | None = None) -> list[str]:
    """Names of spool files not registered (the consistency check's ``spool`` entry)."""
    spool = Path(spool or settings.DICOM_SPOOL_DIR)
    return [p.name for p in unregistered(spool)] if spool.is_dir() else []


def _date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date() if text else None
    except ValueError:
        return None


def _stored_ids(uids: Iterable[str]) -> list[int]:
    """The first-received object of each UID (a conflict copy is never chosen silently)."""
    uids = list(uids)
    rows = ReceivedObject.objects.filter(sop_instance_uid__in=uids).values_list(
        "sop_instance_uid", "stored_id", "spool_name"
    )
    first = {u: s for u, s, name in rows if not is_conflict_copy(Path(name))}
    return [first[u] for u in uids if u in first]


def _identity_conflicts(course: ProposedCourse, department: Department) -> list[str]:
    found = []
    patient = Patient.objects.filter(department=department, identifier=course.patient_id).first()
    born = _date(course.patient_birth_date)
    if patient is not None and patient.birth_date and born and patient.birth_date != born:
        found.append(
            f"birth date {born} received for patient ID {course.patient_id}, the registry has "
            f"{patient.birth_date}: check the identity; nothing was merged"
        )
    earlier = DicomProposal.objects.filter(
        department=department, patient_identifier=course.patient_id
    ).exclude(plan_uid=course.plan_uid)
    for other in earlier:
        for what, mine, theirs in (
            ("name", course.patient_name, other.patient_name),
            ("birth date", course.patient_birth_date, other.patient_birth_date),
        ):
            if mine and theirs and mine != theirs:
                found.append(
                    f"{what} {mine!r} differs from {theirs!r} received earlier under patient "
                    f"ID {course.patient_id} (proposal {other.pk}): check the identity"
                )
    return found


def propose(course: ProposedCourse, department: Department) -> DicomProposal:
    """Record (or update, while undecided) the proposal of a course."""
    conflicts = [*course.conflicts, *_identity_conflicts(course, department)]
    patient = Patient.objects.filter(department=department, identifier=course.patient_id).first()
    objects = {
        "rtplan": (_stored_ids([course.plan_uid]) or [None])[0] if course.plan_received else None,
        "rtdose": _stored_ids(course.dose_uids),
        "rtstruct": (_stored_ids([course.structure_set_uid]) or [None])[0],
        "ct": _stored_ids(course.image_uids),
        "registration": _stored_ids(course.registration_uids),
        "records": _stored_ids(course.record_uids),
    }
    fields = {
        "patient": patient, "patient_identifier": course.patient_id[:200],
        "patient_name": course.patient_name[:200],
        "patient_birth_date": course.patient_birth_date[:8], "plan_label": course.plan_label[:200],
        "start": _date(course.start), "end": _date(course.end),
        "date_source": course.date_source[:200], "fractions": course.fractions,
        "parts": objects, "missing": list(course.missing), "conflicts": conflicts,
        "notes": list(course.notes),
        "state": DicomProposal.State.CONFLICT if conflicts else DicomProposal.State.PROPOSED,
    }  # fmt: skip
    with transaction.atomic():
        proposal, created = DicomProposal.objects.select_for_update().get_or_create(
            department=department, plan_uid=course.plan_uid, defaults=fields
        )
        if not created and proposal.state in (
            DicomProposal.State.PROPOSED, DicomProposal.State.CONFLICT,
        ):  # fmt: skip
            for key, value in fields.items():
                setattr(proposal, key, value)
            proposal.save()
        elif not created:
            LOG.warning("objects of the %s proposal %d arrived again; not changed",
                        proposal.state, proposal.pk)  # fmt: skip
        audit.record("create" if created else "change", obj=proposal, patient=patient,
                     username="dicom-node", plan=course.plan_uid, state=proposal.state)  # fmt: skip
    return proposal


def chosen_registration(proposal: DicomProposal, choice: str = "") -> int | None:
    """The REG object (stored id) the confirmed course uses, or None.

    ``choice`` is a stored object's id among the proposal's REG objects, or ``"none"``. One
    REG received and no choice: that one. Several and no choice: refused -- which of them
    maps this course onto the reference course is a person's decision, never the first by
    UID.
    """
    regs = list(proposal.parts.get("registration") or [])
    choice = (choice or "").strip()
    if choice == "none" or not regs:
        return None
    if not choice:
        if len(regs) == 1:
            return regs[0]
        raise InputError(
            f"{len(regs)} REG objects were received for this course: choose the one that maps "
            "it onto the reference course, or none",
            field="registration",
        )
    if choice.isdigit() and int(choice) in regs:
        return int(choice)
    raise InputError("the chosen REG object is not one of this proposal's", field="registration")


def confirm(
    proposal: DicomProposal,
    entry: Any,
    *,
    user: Any,
    request: Any = None,
    resolution: str = "",
    registration: str = "",
) -> Any:
    """Create the course of a proposal exactly as an upload does; return the Course.

    The objects become an :class:`Upload` of the patient (created here for an unknown ID)
    and :func:`~reirrad.web.registry.ingest.create_dicom_course` makes the course. A
    conflict needs ``resolution``: what the person checked. ``registration``: see
    :func:`chosen_registration`.
    """
    if proposal.state not in (DicomProposal.State.PROPOSED, DicomProposal.State.CONFLICT):
        raise InputError(f"this proposal is already {proposal.state}", field="state")
    if proposal.state == DicomProposal.State.CONFLICT and not resolution.strip():
        raise InputError(
            "the patient's identity is in conflict: say how you resolved it", field="resolution"
        )
    objects = proposal.parts
    if not objects.get("rtstruct") or not objects.get("rtdose"):
        raise InputError(
            "a course needs an RTSTRUCT and at least one RTDOSE; missing: "
            + ("; ".join(proposal.missing) or "see the list of objects"),
            field="objects",
        )
    reg = chosen_registration(proposal, registration)
    with transaction.atomic():
        patient = proposal.patient
        if patient is None:
            patient = Patient.objects.create(
                department=proposal.department, identifier=proposal.patient_identifier,
                birth_date=_date(proposal.patient_birth_date), created_by=user,
            )  # fmt: skip
            audit.record("create", request=request, user=user, obj=patient, source="dicom-node")
        ids = [objects["rtstruct"], *objects["rtdose"], *objects.get("ct", [])]
        ids += [x for x in (objects.get("rtplan"), reg) if x]
        upload = Upload.objects.create(patient=patient, created_by=user)
        stored = StoredObject.objects.in_bulk(ids)
        UploadItem.objects.bulk_create(
            UploadItem(upload=upload, stored=s, name=s.original_name) for s in stored.values()
        )
        selection = ingest.DicomSelection(
            rtstruct=objects["rtstruct"], rtdose=tuple(objects["rtdose"]),
            rtplan=objects.get("rtplan"), ct=tuple(objects.get("ct", [])),
            registration=reg,
        )  # fmt: skip
        course = ingest.create_dicom_course(
            patient, upload, entry, selection, user=user, request=request
        )
        proposal.patient, proposal.course = patient, course
        proposal.state = DicomProposal.State.CONFIRMED
        proposal.decided_by, proposal.decided_at = user, timezone.now()
        proposal.save()
        audit.record("confirm", request=request, user=user, obj=proposal, patient=patient,
                     course=course.pk, resolution=resolution[:500],
                     registration=reg)  # fmt: skip
    return course


def reject(proposal: DicomProposal, *, user: Any, request: Any = None, reason: str = "") -> None:
    """Reject a proposal (the received objects stay in the store; nothing is deleted)."""
    if proposal.state not in (DicomProposal.State.PROPOSED, DicomProposal.State.CONFLICT):
        raise InputError(f"this proposal is already {proposal.state}", field="state")
    with transaction.atomic():
        proposal.state = DicomProposal.State.REJECTED
        proposal.decided_by, proposal.decided_at = user, timezone.now()
        proposal.save()
        audit.record("reject", request=request, user=user, obj=proposal,
                     patient=proposal.patient, reason=reason[:500])  # fmt: skip
