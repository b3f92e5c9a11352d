"""Starting an assessment: its inputs frozen (the generated case file, the SHA-256 of every
input, the reirrad version and the parameters), then its run queued
(:mod:`reirrad.web.registry.tasks`, run by :mod:`reirrad.web.registry.runner`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from reirrad import __version__
from reirrad.core.tissue import OVERLAP_RULES
from reirrad.errors import InputError
from reirrad.web.registry import audit
from reirrad.web.registry.casefile import course_files, validated_case
from reirrad.web.registry.models import Assessment, Course, Patient
from reirrad.web.registry.permissions import can_assess
from reirrad.web.registry.tasks import enqueue_run

#: Options of an assessment a user may choose (passed on to ``run_case``).
PARAMETERS = ("methods", "constraint_sets", "reference", "overlap_rule")
#: An assessment may choose a named overlap rule (core.tissue.OVERLAP_RULES) instead of the
#: case's; a priority list stays a case-file matter.


def start_assessment(
    patient: Patient,
    user: Any,
    *,
    courses: Iterable[Course] | None = None,
    parameters: Mapping[str, Any] | None = None,
    supersedes: Assessment | None = None,
    request: Any = None,
    enqueue: bool = True,
) -> Assessment:
    """Freeze the inputs of a new assessment of ``patient`` and queue its run.

    Raises :class:`PermissionDenied` when ``user`` may not assess this patient and
    :class:`~reirrad.errors.InputError` when the registry's case is not a valid case.
    """
    if not can_assess(user, patient):
        raise PermissionDenied("you may not start an assessment of this patient")
    chosen = list(courses) if courses is not None else list(patient.courses.all())
    if not chosen:
        raise InputError("choose at least one course", field="courses")
    if any(c.patient_id != patient.pk for c in chosen):
        raise PermissionDenied("a chosen course is not this patient's")
    params = {k: v for k, v in dict(parameters or {}).items() if v not in (None, "", [])}
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise InputError(f"unknown assessment parameter(s) {unknown}", field="parameters")
    rule = params.get("overlap_rule")
    if rule is not None and rule not in OVERLAP_RULES:
        raise InputError(
            f"overlap rule {rule!r}: choose one of {', '.join(OVERLAP_RULES)}",
            field="overlap_rule",
        )
    _, text = validated_case(patient, chosen, {"overlap_rule": rule} if rule else None)
    hashes = {"case.yaml": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    hashes |= {item.path: item.stored.sha256 for item in course_files(chosen)}
    params["courses"] = [c.course_id for c in sorted(chosen, key=lambda c: c.start)]
    params["data_quality"] = {c.course_id: c.data_quality for c in chosen}
    with transaction.atomic():
        assessment = Assessment.objects.create(
            patient=patient,
            created_by=user,
            case_yaml=text,
            input_hashes=hashes,
            reirrad_version=__version__,
            parameters=params,
            supersedes=supersedes,
        )
        assessment.courses.set(chosen)
        audit.record("create", request=request, user=user, obj=assessment)
        if enqueue:
            transaction.on_commit(lambda: enqueue_run(assessment.pk))
    return assessment
