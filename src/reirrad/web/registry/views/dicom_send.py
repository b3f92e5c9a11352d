"""Send an assessment's doses back to the planning system, after a physicist confirms.

GET shows the destination, the two prepared RTDOSE objects (maximum and mean) and every
earlier attempt from the audit log. POST ``prepare`` queues writing them; POST ``send``
queues the C-STORE of exactly the two objects the physicist saw (their SHA-256 come back with
the form and must be the newest prepared ones). Only a physicist of the patient's own
department may post; anyone who may see the assessment sees the page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from reirrad.errors import InputError
from reirrad.web.registry import audit
from reirrad.web.registry import dicom_send as logic
from reirrad.web.registry.models import Assessment
from reirrad.web.registry.permissions import assessment_for, can_send_dicom


@login_required
@require_http_methods(["GET", "POST"])
def dicom_send(request: HttpRequest, pk: int) -> HttpResponse:
    assessment = assessment_for(request.user, pk)
    may_send = can_send_dicom(request.user, assessment.patient)
    if request.method == "POST":
        if not may_send:
            raise PermissionDenied("only a physicist of the patient's department sends doses")
        action = request.POST.get("action", "")
        if action == "prepare":
            _prepare(request, assessment)
        elif action == "send":
            _send(request, assessment)
        else:
            messages.error(request, "Unknown action.")
        return redirect("registry:dicom_send", pk=assessment.pk)
    prepared = logic.latest_preparation(assessment)
    pending = logic.entries(assessment).first()
    try:
        destination, destination_error = str(logic.destination()), ""
    except InputError as error:
        destination, destination_error = "", str(error)
    return render(
        request,
        "registry/dicom_send.html",
        {
            "assessment": assessment,
            "patient": assessment.patient,
            "may_send": may_send,
            "done": assessment.status == Assessment.Status.DONE,
            "prepared": prepared.detail if prepared and prepared.detail["step"] == "prepared" else None,
            "prepare_failed": prepared.detail.get("reason") if prepared and prepared.detail["step"] == "prepare_failed" else "",
            "working": pending is not None
            and pending.detail.get("step") in ("prepare_requested", "send_requested"),
            "attempts": logic.entries(assessment),
            "destination": destination,
            "destination_error": destination_error,
        },
    )  # fmt: skip


def _prepare(request: HttpRequest, assessment: Assessment) -> None:
    from reirrad.web.registry.tasks import prepare_send_task

    if assessment.status != Assessment.Status.DONE:
        messages.error(request, "Only a finished assessment can be sent.")
        return
    audit.record("export", request=request, obj=assessment, kind=logic.KIND,
                 step="prepare_requested")  # fmt: skip
    user_id = request.user.pk
    transaction.on_commit(lambda: prepare_send_task.enqueue(assessment.pk, user_id))
    messages.success(request, "The two RTDOSE objects are being prepared.")


def _send(request: HttpRequest, assessment: Assessment) -> None:
    from reirrad.web.registry.tasks import send_task

    prepared = logic.latest_preparation(assessment)
    if prepared is None or prepared.detail.get("step") != "prepared":
        messages.error(request, "Prepare the objects first.")
        return
    wanted = [o["sha256"] for o in prepared.detail["objects"]]
    if request.POST.getlist("sha256") != wanted:
        messages.error(request, "The objects changed since the preview; check them again.")
        return
    if request.POST.get("reviewed") != "yes":
        messages.error(request, "Confirm that you have checked the objects and the destination.")
        return
    try:
        target = str(logic.destination())
    except InputError as error:
        messages.error(request, str(error))
        return
    audit.record("export", request=request, obj=assessment, kind=logic.KIND,
                 step="send_requested", destination=target, sha256=wanted)  # fmt: skip
    user_id = request.user.pk
    transaction.on_commit(lambda: send_task.enqueue(assessment.pk, wanted, user_id))
    messages.success(request, f"Sending to {target}; the result appears below.")
