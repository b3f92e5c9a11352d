"""Grouping received DICOM headers into proposed courses, and the idle-study detector.

The expected groupings follow from the references the tests write into the headers (the
DICOM reference chain plan <- dose, plan -> structure set -> images), not from the code.
"""

from __future__ import annotations

import math

import pytest

from reirrad.core.dicom_groups import (
    ObjectSummary,
    ReferencedSeries,
    group_objects,
    idle_studies,
)

PID = "P1"
FOR = "9.1"


def obj(uid, modality, **kw) -> ObjectSummary:
    base = dict(
        sop_class_uid="1.2",
        sop_instance_uid=uid,
        modality=modality,
        patient_id=PID,
        patient_name="Doe^Jane",
        patient_birth_date="19600101",
        study_uid="5.1",
        frame_of_reference_uid=FOR,
    )
    base.update(kw)
    return ObjectSummary(**base)


def course_objects(n_ct=3, *, plan="4.5.6", ss="3.1", series="2.1", prefix="1.1"):
    cts = [obj(f"{prefix}.{k}", "CT", series_uid=series) for k in range(n_ct)]
    rs = obj(
        ss,
        "RTSTRUCT",
        referenced_series=(ReferencedSeries(series, tuple(c.sop_instance_uid for c in cts)),),
    )
    rp = obj(
        plan,
        "RTPLAN",
        referenced_structure_set_uids=(ss,),
        plan_label="PROST",
        fractions_planned=(23,),
        plan_date="20240105",
    )
    rd = obj("1.2.3", "RTDOSE", referenced_plan_uids=(plan,))
    return cts, rs, rp, rd


def test_complete_course_is_one_proposal_with_every_object():
    cts, rs, rp, rd = course_objects()
    reg = obj("7.7", "REG", registered_frame_uids=(FOR, "9.2"))
    other_reg = obj("7.8", "REG", registered_frame_uids=("9.3", "9.4"))
    (course,) = group_objects([rd, *cts, other_reg, rp, rs, reg])
    assert course.plan_uid == "4.5.6" and course.plan_received
    assert course.dose_uids == ("1.2.3",)
    assert course.structure_set_uid == "3.1"
    assert course.image_series_uid == "2.1"
    assert set(course.image_uids) == {"1.1.0", "1.1.1", "1.1.2"}
    assert course.registration_uids == ("7.7",)
    assert course.fractions == 23
    assert (course.start, course.end) == ("20240105", "")
    assert course.date_source.startswith("plan date")
    assert course.missing == () and course.conflicts == ()


def test_a_reg_without_patient_id_is_linked_by_frame_and_said_so():
    cts, rs, rp, rd = course_objects()
    anonymous = obj("7.7", "REG", patient_id="", registered_frame_uids=("9.2", FOR))
    foreign = obj("7.8", "REG", patient_id="P2", registered_frame_uids=("9.2", FOR))
    (course,) = group_objects([*cts, rs, rp, rd, anonymous, foreign])
    assert course.registration_uids == ("7.7",)
    assert any("REG 7.7 has no Patient ID" in n for n in course.notes)


def test_treatment_record_dates_take_precedence_over_the_plan_date():
    cts, rs, rp, rd = course_objects()
    records = [
        obj("8.1", "RTRECORD", referenced_plan_uids=("4.5.6",), treatment_dates=("20240110",)),
        obj("8.2", "RTRECORD", referenced_plan_uids=("4.5.6",), treatment_dates=("20240212",)),
    ]
    (course,) = group_objects([*cts, rs, rp, rd, *records])
    assert (course.start, course.end) == ("20240110", "20240212")
    assert course.date_source == "treatment records"
    assert course.record_uids == ("8.1", "8.2")


def test_dose_of_a_plan_not_received_is_named():
    _, _, _, rd = course_objects()
    (course,) = group_objects([rd])
    assert not course.plan_received
    assert "RTDOSE 1.2.3 refers to plan 4.5.6 not received" in course.missing


def test_missing_ct_slices_are_counted():
    cts, rs, rp, rd = course_objects(n_ct=4)
    (course,) = group_objects([rs, rp, rd, cts[0]])
    assert "structure set references CT series 2.1: 1 of 4 slices received" in course.missing
    (none,) = group_objects([rs, rp, rd])
    assert "structure set references image series 2.1: 0 of 4 slices received" in none.missing


def test_missing_structure_set_and_dose_are_named():
    _, _, rp, _ = course_objects()
    (course,) = group_objects([rp])
    assert "plan 4.5.6 references structure set 3.1 not received" in course.missing
    assert "no RTDOSE received for plan 4.5.6" in course.missing


def test_two_names_for_one_patient_id_are_a_conflict_not_a_merge():
    cts, rs, rp, rd = course_objects()
    renamed = obj("1.2.4", "RTDOSE", referenced_plan_uids=("4.5.6",), patient_name="Doe^John")
    (course,) = group_objects([*cts, rs, rp, rd, renamed])
    assert len(course.conflicts) == 1 and "2 different names" in course.conflicts[0]
    other_birth = obj("1.2.5", "CT", series_uid="x", patient_birth_date="19610101")
    (course,) = group_objects([*cts, rs, rp, rd, other_birth])
    assert any("birth dates" in c for c in course.conflicts)


def test_padding_of_a_name_is_not_a_conflict_and_empty_values_are_ignored():
    cts, rs, rp, rd = course_objects()
    padded = obj("1.2.4", "RTDOSE", referenced_plan_uids=("4.5.6",), patient_name="Doe^Jane^^ ")
    blank = obj("1.2.5", "CT", series_uid="x", patient_name="", patient_birth_date="")
    (course,) = group_objects([*cts, rs, rp, rd, padded, blank])
    assert course.conflicts == ()


def test_an_object_of_another_patient_id_never_joins_the_course():
    cts, rs, rp, rd = course_objects()
    foreign = obj("1.2.9", "RTDOSE", referenced_plan_uids=("4.5.6",), patient_id="P2")
    (course,) = group_objects([*cts, rs, rp, rd, foreign])
    assert course.patient_id == PID
    assert course.dose_uids == ("1.2.3",)
    assert any("1.2.9" in n and "'P2'" in n for n in course.notes)


def test_two_plans_two_courses_and_a_duplicate_uid_counted_once():
    a = course_objects(plan="4.1", ss="3.1", series="2.1", prefix="1.1")
    b = course_objects(plan="4.2", ss="3.2", series="2.2", prefix="1.2")
    b = (*b[:3], obj("1.2.8", "RTDOSE", referenced_plan_uids=("4.2",)))
    courses = group_objects([*a[0], *a[1:], *b[0], *b[1:], a[3]])
    assert [c.plan_uid for c in courses] == ["4.1", "4.2"]
    assert [c.dose_uids for c in courses] == [("1.2.3",), ("1.2.8",)]


def test_several_fraction_groups_leave_the_fractions_to_a_person():
    cts, rs, rp, rd = course_objects()
    rp = obj(rp.sop_instance_uid, "RTPLAN", referenced_structure_set_uids=("3.1",),
             fractions_planned=(25, 5), plan_date="20240105")  # fmt: skip
    (course,) = group_objects([*cts, rs, rp, rd])
    assert course.fractions is None
    assert any("2 fraction groups" in m for m in course.missing)


def test_idle_studies():
    arrivals = {"a": 100.0, "b": 120.0, "c": 95.0}
    assert idle_studies(arrivals, now=130.0, idle_seconds=30.0) == ["c", "a"]
    assert idle_studies(arrivals, now=150.0, idle_seconds=30.0) == ["c", "a", "b"]
    assert idle_studies(arrivals, now=124.9, idle_seconds=30.0) == []
    assert idle_studies({}, now=math.inf) == []
    with pytest.raises(ValueError):
        idle_studies(arrivals, now=0.0, idle_seconds=-1)
