"""Courses proposed by the DICOM node: the department's incoming list and the confirm page.

A member of the proposal's department sees it; a planner, physicist or admin confirms it
(the course is created by the upload path's ``create_dicom_course``) or rejects it; both
are audited. Another department's proposal is a 404.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from pydicom.uid import DeformableSpatialRegistrationStorage

from reirrad.errors import InputError
from reirrad.web.registry import dicom_intake
from reirrad.web.registry.forms import DicomCourseForm
from reirrad.web.registry.models import EDIT_ROLES, DicomProposal, Membership, StoredObject
from reirrad.web.registry.views.courses import _course_entry


def _role(user: Any, proposal: DicomProposal) -> str | None:
    return (
        Membership.objects.filter(user=user, department_id=proposal.department_id)
        .values_list("role", flat=True)
        .first()
    )


def proposal_for(user: Any, pk: int) -> DicomProposal:
    """The proposal, or 404 when the user is not a member of its department."""
    departments = Membership.objects.filter(user=user).values("department_id")
    try:
        return DicomProposal.objects.select_related("patient", "department").get(
            pk=pk, department_id__in=departments
        )
    except DicomProposal.DoesNotExist:
        raise Http404("no such proposal") from None


@login_required
@require_GET
def incoming(request: HttpRequest) -> HttpResponse:
    """Proposals of the user's departments, undecided first."""
    departments = Membership.objects.filter(user=request.user).values("department_id")
    proposals = DicomProposal.objects.filter(department_id__in=departments).select_related(
        "patient", "department"
    )
    open_states = (DicomProposal.State.PROPOSED, DicomProposal.State.CONFLICT)
    return render(request, "registry/dicom_incoming.html", {
        "open": [p for p in proposals if p.state in open_states],
        "decided": [p for p in proposals if p.state not in open_states][:50],
    })  # fmt: skip


def _initial(proposal: DicomProposal) -> dict[str, Any]:
    label = proposal.plan_label or "DICOM"
    course_id = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60] or f"dicom{proposal.pk}"
    return {"course_id": course_id, "label": proposal.plan_label, "start": proposal.start,
            "end": proposal.end, "fractions": proposal.fractions}  # fmt: skip


def _reg_label(stored: StoredObject) -> str:
    """What a person needs to tell REG objects apart: kind, description, when received."""
    kind = "deformable" if stored.sop_class_uid == DeformableSpatialRegistrationStorage else "rigid"
    description = stored.series_description or "no series description"
    received = timezone.localtime(stored.created_at).strftime("%Y-%m-%d %H:%M")
    return f"{kind}: {description} (received {received}; {stored.sop_instance_uid})"


def _context(request: HttpRequest, proposal: DicomProposal, form: Any) -> dict[str, Any]:
    parts = proposal.parts
    ids = [x for v in parts.values() for x in (v if isinstance(v, list) else [v]) if x]
    stored = StoredObject.objects.in_bulk(ids)
    rows = []
    for key, label in (("rtplan", "RTPLAN"), ("rtdose", "RTDOSE"), ("rtstruct", "RTSTRUCT"),
                       ("registration", "REG"), ("records", "RT record")):  # fmt: skip
        values = parts.get(key)
        values = values if isinstance(values, list) else [values] if values else []
        rows += [(label, stored[x]) for x in values if x in stored]
    ct = [stored[x] for x in parts.get("ct", []) if x in stored]
    regs = [(x, _reg_label(stored[x])) for x in parts.get("registration") or [] if x in stored]
    return {
        "proposal": proposal, "rows": rows, "ct": ct, "form": form, "regs": regs,
        "reg_choice": request.POST.get("registration", ""),
        "can_confirm": _role(request.user, proposal) in EDIT_ROLES
        and proposal.state in (DicomProposal.State.PROPOSED, DicomProposal.State.CONFLICT),
    }  # fmt: skip


@login_required
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a proposal; POST ``action=confirm`` (with the course form) or ``action=reject``."""
    proposal = proposal_for(request.user, pk)
    if request.method != "POST":
        form = DicomCourseForm(initial=_initial(proposal))
        return render(request, "registry/dicom_proposal.html", _context(request, proposal, form))
    if _role(request.user, proposal) not in EDIT_ROLES:
        raise PermissionDenied("your role may not confirm or reject a proposed course")
    action = request.POST.get("action")
    form = DicomCourseForm(request.POST if action == "confirm" else None,
                           initial=_initial(proposal))  # fmt: skip
    try:
        if action == "reject":
            dicom_intake.reject(proposal, user=request.user, request=request,
                                reason=request.POST.get("reason", ""))  # fmt: skip
            messages.success(request, "Proposal rejected.")
            return redirect("registry:dicom_incoming")
        if action == "confirm" and form.is_valid():
            course = dicom_intake.confirm(
                proposal, _course_entry(form.cleaned_data), user=request.user, request=request,
                resolution=request.POST.get("resolution", ""),
                registration=request.POST.get("registration", ""),
            )  # fmt: skip
            messages.success(request, f"Course {course.course_id} created from the DICOM node.")
            return redirect("registry:course", pk=course.pk)
        if action not in ("confirm", "reject"):
            form.add_error(None, "choose confirm or reject")
    except InputError as error:
        form.add_error(None, str(error))
    proposal.refresh_from_db()
    return render(
        request, "registry/dicom_proposal.html", _context(request, proposal, form), status=400
    )
