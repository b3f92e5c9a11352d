"""Retrieve prior courses of a patient from the PACS (a background job; see
:mod:`reirrad.web.registry.dicom_retrieve`). Editors of the patient's department only."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from reirrad.web.registry import audit
from reirrad.web.registry import dicom_retrieve as logic
from reirrad.web.registry.permissions import can_edit, patient_for


@login_required
@require_POST
def retrieve_prior(request: HttpRequest, pk: int) -> HttpResponse:
    from reirrad.web.registry.tasks import retrieve_prior_task

    patient = patient_for(request.user, pk)
    if not can_edit(request.user, patient):
        raise PermissionDenied("your role may not retrieve objects for this patient")
    if not logic.pacs_text():
        messages.error(request, "No PACS is configured (REIRRAD_DICOM_PACS).")
        return redirect("registry:patient", pk=patient.pk)
    audit.record("import", request=request, obj=patient, kind=logic.KIND, step="retrieve_requested",
                 pacs=logic.pacs_text())  # fmt: skip
    user_id = request.user.pk
    transaction.on_commit(lambda: retrieve_prior_task.enqueue(patient.pk, user_id))
    messages.success(
        request,
        f"Asked {logic.pacs_text()} for the RT objects of {patient.identifier}; they arrive "
        "through the DICOM node.",
    )
    return redirect("registry:patient", pk=patient.pk)
