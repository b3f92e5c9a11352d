"""Object-level access: who sees which patient and may do what.

A user sees a patient of a department they are a member of, or one shared with such a
department (read only). Every view and download finds its object through these functions,
so an object the user may not see is a 404, whatever its URL.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from reirrad.web.registry.models import (
    ASSESS_ROLES,
    EDIT_ROLES,
    SIGN_ROLES,
    Assessment,
    Course,
    Membership,
    Patient,
    Upload,
)


def visible_patients(user: Any) -> QuerySet[Patient]:
    """Patients of the user's departments and those shared with them."""
    if not user.is_authenticated:
        return Patient.objects.none()
    departments = Membership.objects.filter(user=user).values("department_id")
    return Patient.objects.filter(
        Q(department_id__in=departments) | Q(shared_with__in=departments)
    ).distinct()


def patient_for(user: Any, pk: int) -> Patient:
    """The patient, or 404 when it does not exist or the user may not see it."""
    try:
        return visible_patients(user).get(pk=pk)
    except Patient.DoesNotExist:
        raise Http404("no such patient") from None


def assessment_for(user: Any, pk: int) -> Assessment:
    """The assessment, or 404 when the user may not see its patient."""
    try:
        return Assessment.objects.select_related("patient").get(
            pk=pk, patient__in=visible_patients(user)
        )
    except Assessment.DoesNotExist:
        raise Http404("no such assessment") from None


def course_for(user: Any, pk: int) -> Course:
    """The course, or 404 when the user may not see its patient."""
    try:
        return Course.objects.select_related("patient").get(
            pk=pk, patient__in=visible_patients(user)
        )
    except Course.DoesNotExist:
        raise Http404("no such course") from None


def upload_for(user: Any, pk: int) -> Upload:
    """The upload, or 404 when the user may not see its patient."""
    try:
        return Upload.objects.select_related("patient").get(
            pk=pk, patient__in=visible_patients(user)
        )
    except Upload.DoesNotExist:
        raise Http404("no such upload") from None


def role_in(user: Any, patient: Patient) -> str | None:
    """The user's role in the patient's own department (``None``: not a member)."""
    if not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, department_id=patient.department_id)
        .values_list("role", flat=True)
        .first()
    )


def can_assess(user: Any, patient: Patient) -> bool:
    return role_in(user, patient) in ASSESS_ROLES


def can_edit(user: Any, patient: Patient) -> bool:
    return role_in(user, patient) in EDIT_ROLES


def can_sign(user: Any, patient: Patient) -> bool:
    return role_in(user, patient) in SIGN_ROLES


#: Only a physicist confirms what is sent back to the planning system (reirrad 8).
SEND_ROLES = frozenset({"physicist"})


def can_send_dicom(user: Any, patient: Patient) -> bool:
    return role_in(user, patient) in SEND_ROLES
