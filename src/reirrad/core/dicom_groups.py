"""Proposed courses from received DICOM objects (pure: no file or network access).

A DICOM node receives objects one by one, in any order, from any sender.  This module turns
the headers of what arrived (:class:`ObjectSummary`, filled in by
:func:`reirrad.io.dicom_node.summarize_file`) into :class:`ProposedCourse` objects a person
confirms, following the references the standard defines between RT objects:

* RT Plan -> RT Dose: Referenced RT Plan Sequence (300C,0002) of the RT Dose
  (DICOM PS3.3 C.8.8.3, RT Dose Module);
* RT Plan -> RT Structure Set: Referenced Structure Set Sequence (300C,0060) of the plan
  (PS3.3 C.8.8.9, RT General Plan Module);
* RT Structure Set -> image series: Referenced Frame of Reference Sequence (3006,0010) >
  RT Referenced Study > RT Referenced Series > Contour Image Sequence (PS3.3 C.8.8.5);
* RT (Ion) Beams Treatment Record -> plan: Referenced RT Plan Sequence, delivery dates in
  Treatment Session (Ion) Beam Sequence > Treatment Date (3008,0250) (PS3.3 C.8.8.21/22);
* Spatial / Deformable Spatial Registration -> the frames of reference it relates
  (PS3.3 C.20.2 and C.20.3).

Nothing is guessed: every reference that points at an object not received is named in
:attr:`ProposedCourse.missing`, and a patient ID that arrives with two different names or
birth dates is a conflict (:attr:`ProposedCourse.conflicts`) for a person to resolve, never
merged silently.  Objects of another patient ID never join a course.

:func:`idle_studies` decides when a study has stopped receiving objects, so that grouping
runs once per transfer rather than after every object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_IDLE_SECONDS",
    "ObjectSummary",
    "ProposedCourse",
    "ReferencedSeries",
    "group_objects",
    "idle_studies",
]

#: Seconds without a new object after which a study counts as complete.  A configuration
#: default, not a published value: planning systems send one plan's objects back to back
#: (well under a second apart on a local network), so 30 s leaves a wide margin while a
#: planner still sees the proposal promptly.  Configurable where it is used.
DEFAULT_IDLE_SECONDS = 30.0

# Modalities (0008,0060) of the objects grouped here (PS3.3 C.7.3.1.1.1 defined terms).
_IMAGE_MODALITIES = frozenset({"CT", "MR", "PT"})
_RECORD_MODALITY = "RTRECORD"
_REG_MODALITY = "REG"


@dataclass(frozen=True)
class ReferencedSeries:
    """An image series a structure set references, with the images it lists."""

    series_uid: str
    image_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectSummary:
    """What grouping needs from one DICOM object's header.

    Empty strings and tuples mean "absent from the header".  Dates are DICOM DA strings
    (``YYYYMMDD``).
    """

    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    study_uid: str = ""
    series_uid: str = ""
    frame_of_reference_uid: str = ""
    referenced_plan_uids: tuple[str, ...] = ()
    referenced_structure_set_uids: tuple[str, ...] = ()
    referenced_series: tuple[ReferencedSeries, ...] = ()
    registered_frame_uids: tuple[str, ...] = ()
    plan_label: str = ""
    fractions_planned: tuple[int, ...] = ()
    plan_date: str = ""
    study_date: str = ""
    treatment_dates: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class ProposedCourse:
    """A course proposed from received objects, for a planner to confirm.

    ``plan_uid`` is the plan the course is built around; when that plan itself was not
    received (only objects referring to it), ``plan_received`` is False and ``missing``
    says so.  ``start``/``end`` are ``YYYYMMDD`` strings or empty, ``date_source`` says
    where they come from.
    """

    patient_id: str
    patient_name: str
    patient_birth_date: str
    plan_uid: str
    plan_received: bool
    plan_label: str
    fractions: int | None
    start: str
    end: str
    date_source: str
    dose_uids: tuple[str, ...]
    structure_set_uid: str
    image_series_uid: str
    image_uids: tuple[str, ...]
    registration_uids: tuple[str, ...]
    record_uids: tuple[str, ...]
    frame_of_reference_uids: tuple[str, ...]
    missing: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def object_uids(self) -> tuple[str, ...]:
        """Every received object of the course (plan first)."""
        plan = (self.plan_uid,) if self.plan_received else ()
        ss = (self.structure_set_uid,) if self.structure_set_uid else ()
        return (
            plan + self.dose_uids + ss + self.image_uids + self.registration_uids + self.record_uids
        )


def idle_studies(
    last_arrival: Mapping[str, float], now: float, idle_seconds: float = DEFAULT_IDLE_SECONDS
) -> list[str]:
    """Studies whose last object arrived at least ``idle_seconds`` before ``now``.

    Parameters
    ----------
    last_arrival
        Study Instance UID -> arrival time (seconds, any monotonic clock) of its latest
        object.
    now
        The current time on the same clock.
    idle_seconds
        Quiet period after which a study counts as complete (must be >= 0).

    Returns
    -------
    list of str
        The idle studies, oldest activity first (ties by UID, so the order is stable).
    """
    if idle_seconds < 0:
        raise ValueError("idle_seconds must be >= 0")
    idle = [(t, uid) for uid, t in last_arrival.items() if now - t >= idle_seconds]
    return [uid for _, uid in sorted(idle)]


def _clean_name(name: str) -> str:
    # PN components are separated by '^'; trailing empty components and padding carry no
    # information (PS3.5 6.2.1), everything else (case included) is compared as sent.
    return name.strip().rstrip("^").strip()


def _patient_conflicts(summaries: Sequence[ObjectSummary]) -> dict[str, tuple[str, ...]]:
    names: dict[str, set[str]] = defaultdict(set)
    births: dict[str, set[str]] = defaultdict(set)
    for s in summaries:
        if _clean_name(s.patient_name):
            names[s.patient_id].add(_clean_name(s.patient_name))
        if s.patient_birth_date.strip():
            births[s.patient_id].add(s.patient_birth_date.strip())
    out: dict[str, tuple[str, ...]] = {}
    for pid in {s.patient_id for s in summaries}:
        found = []
        if len(names[pid]) > 1:
            found.append(
                f"patient ID {pid!r} arrived with {len(names[pid])} different names "
                f"({', '.join(sorted(names[pid]))}): a person must decide whether these are "
                "the same patient"
            )
        if len(births[pid]) > 1:
            found.append(
                f"patient ID {pid!r} arrived with {len(births[pid])} different birth dates "
                f"({', '.join(sorted(births[pid]))}): a person must decide whether these are "
                "the same patient"
            )
        out[pid] = tuple(found)
    return out


def _first(values: Iterable[str]) -> str:
    return next((v for v in values if v), "")


def group_objects(summaries: Iterable[ObjectSummary]) -> list[ProposedCourse]:
    """Group received objects into proposed courses, one per RT plan (received or referenced).

    Parameters
    ----------
    summaries
        Headers of the received objects (any order; a SOP Instance UID seen twice is
        counted once, the first summary wins).

    Returns
    -------
    list of ProposedCourse
        One per plan UID that was received or is referenced by a received dose or treatment
        record, sorted by patient ID, start date and plan UID.
    """
    by_uid: dict[str, ObjectSummary] = {}
    for s in summaries:
        by_uid.setdefault(s.sop_instance_uid, s)
    objects = list(by_uid.values())
    conflicts = _patient_conflicts(objects)

    plans = {s.sop_instance_uid: s for s in objects if s.modality == "RTPLAN"}
    refers: dict[str, list[ObjectSummary]] = defaultdict(list)  # plan UID -> doses, records
    for s in objects:
        if s.modality in ("RTDOSE", _RECORD_MODALITY):
            for uid in s.referenced_plan_uids:
                refers[uid].append(s)
    courses = [
        _course(uid, plans.get(uid), refers.get(uid, []), by_uid, objects, conflicts)
        for uid in sorted(set(plans) | set(refers))
    ]
    courses.sort(key=lambda c: (c.patient_id, c.start, c.plan_uid))
    return courses


def _course(
    plan_uid: str,
    plan: ObjectSummary | None,
    referring: list[ObjectSummary],
    by_uid: Mapping[str, ObjectSummary],
    objects: Sequence[ObjectSummary],
    conflicts: Mapping[str, tuple[str, ...]],
) -> ProposedCourse:
    missing: list[str] = []
    notes: list[str] = []
    anchor = plan if plan is not None else referring[0]
    pid = anchor.patient_id
    same_patient = [s for s in referring if s.patient_id == pid]
    for s in referring:
        if s.patient_id != pid:
            notes.append(
                f"{s.modality} {s.sop_instance_uid} refers to this plan but belongs to patient "
                f"ID {s.patient_id!r}, not {pid!r}: not grouped"
            )
    doses = tuple(sorted(s.sop_instance_uid for s in same_patient if s.modality == "RTDOSE"))
    records = [s for s in same_patient if s.modality == _RECORD_MODALITY]
    if plan is None:
        for s in same_patient:
            missing.append(
                f"{s.modality} {s.sop_instance_uid} refers to plan {plan_uid} not received"
            )
    elif not doses:
        missing.append(f"no RTDOSE received for plan {plan_uid}")

    ss_uid, series, images = _structures_and_images(plan, by_uid, objects, pid, missing)
    frames = sorted(
        {s.frame_of_reference_uid for s in (plan, *same_patient) if s and s.frame_of_reference_uid}
        | {by_uid[u].frame_of_reference_uid for u in (ss_uid, *images) if u in by_uid} - {""}
    )
    regs = _registrations(objects, pid, frames, notes)
    fractions = _plan_fractions(plan, plan_uid, missing)
    start, end, date_source = _course_dates(plan, plan_uid, records, missing)

    return ProposedCourse(
        patient_id=pid,
        patient_name=anchor.patient_name,
        patient_birth_date=anchor.patient_birth_date,
        plan_uid=plan_uid,
        plan_received=plan is not None,
        plan_label=plan.plan_label if plan is not None else "",
        fractions=fractions,
        start=start,
        end=end,
        date_source=date_source,
        dose_uids=doses,
        structure_set_uid=ss_uid,
        image_series_uid=series,
        image_uids=images,
        registration_uids=regs,
        record_uids=tuple(sorted(r.sop_instance_uid for r in records)),
        frame_of_reference_uids=tuple(frames),
        missing=tuple(missing),
        conflicts=conflicts.get(pid, ()),
        notes=tuple(notes),
    )


def _registrations(
    objects: Sequence[ObjectSummary], pid: str, frames: Sequence[str], notes: list[str]
) -> tuple[str, ...]:
    """SOP Instance UIDs of the REG objects relating one of the course's frames to another.

    Frame UIDs are globally unique. A REG without a Patient ID (allowed to be empty, type 2,
    PS3.3 C.7.1.1) is linked by frame alone, and said so; one of another ID never is.
    Several are named in the notes: which one maps the course is a person's choice.
    """
    related = [
        s
        for s in objects
        if s.modality == _REG_MODALITY
        and s.patient_id in (pid, "")
        and set(s.registered_frame_uids) & set(frames)
    ]
    regs = tuple(sorted(s.sop_instance_uid for s in related))
    notes += [
        f"REG {s.sop_instance_uid} has no Patient ID: linked by its frame of reference only"
        for s in related
        if not s.patient_id
    ]
    if len(regs) > 1:
        notes.append(
            f"{len(regs)} REG objects relate this course's frames of reference: the person "
            "confirming chooses the one that maps it onto the reference course"
        )
    return regs


def _plan_fractions(plan: ObjectSummary | None, plan_uid: str, missing: list[str]) -> int | None:
    """The plan's Number of Fractions Planned; several different groups: left to a person."""
    if plan is None:
        return None
    groups = plan.fractions_planned
    if len(set(groups)) == 1:
        return groups[0]
    if len(groups) > 1:
        missing.append(
            f"plan {plan_uid} has {len(groups)} fraction groups ({', '.join(map(str, groups))} "
            "fractions): the course's fraction number must be confirmed by a person"
        )
    else:
        missing.append(f"plan {plan_uid} states no Number of Fractions Planned")
    return None


def _course_dates(
    plan: ObjectSummary | None,
    plan_uid: str,
    records: Sequence[ObjectSummary],
    missing: list[str],
) -> tuple[str, str, str]:
    """(start, end, where they came from): the treatment records, else the RT Plan Date."""
    treatment = sorted(d for r in records for d in r.treatment_dates if d)
    if treatment:
        return treatment[0], treatment[-1], "treatment records"
    if plan is not None and plan.plan_date:
        return plan.plan_date, "", "plan date (no treatment record received)"
    missing.append(f"no date for plan {plan_uid}: no treatment record and no RT Plan Date")
    return "", "", "none: no treatment record and no plan date"


def _structures_and_images(
    plan: ObjectSummary | None,
    by_uid: Mapping[str, ObjectSummary],
    objects: Sequence[ObjectSummary],
    pid: str,
    missing: list[str],
) -> tuple[str, str, tuple[str, ...]]:
    """The plan's structure set and the image series it references (UIDs received)."""
    if plan is None:
        return "", "", ()
    if not plan.referenced_structure_set_uids:
        missing.append(f"plan {plan.sop_instance_uid} references no structure set")
        return "", "", ()
    ss_uid = plan.referenced_structure_set_uids[0]
    ss = by_uid.get(ss_uid)
    if ss is None or ss.patient_id != pid:
        missing.append(
            f"plan {plan.sop_instance_uid} references structure set {ss_uid} not received"
        )
        return "", "", ()
    if not ss.referenced_series:
        missing.append(f"structure set {ss_uid} references no image series")
        return ss_uid, "", ()
    ref = ss.referenced_series[0]
    in_series = {
        s.sop_instance_uid
        for s in objects
        if s.modality in _IMAGE_MODALITIES
        and s.patient_id == pid
        and s.series_uid == ref.series_uid
    }
    if ref.image_uids:
        listed = set(ref.image_uids)
        received = in_series & listed
        if len(received) < len(listed):
            missing.append(
                f"structure set references {_series_kind(objects, ref.series_uid)} series "
                f"{ref.series_uid}: {len(received)} of {len(listed)} slices received"
            )
    else:
        received = in_series
        if not received:
            missing.append(
                f"structure set references image series {ref.series_uid}: no image received"
            )
    return ss_uid, ref.series_uid, tuple(sorted(received))


def _series_kind(objects: Sequence[ObjectSummary], series_uid: str) -> str:
    return _first(s.modality for s in objects if s.series_uid == series_uid) or "image"
