"""Patient list, patient page, case import and export."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reirrad.errors import InputError
from reirrad.web.registry import audit, ingest
from reirrad.web.registry.casefile import import_case, write_case_folder
from reirrad.web.registry.follow_up import FOLLOW_UP_ROLES
from reirrad.web.registry.models import (
    EDIT_ROLES,
    Department,
)
from reirrad.web.registry.permissions import (
    can_assess,
    can_edit,
    patient_for,
    role_in,
    visible_patients,
)
from reirrad.web.registry.timeline import timeline
from reirrad.web.registry.views import posted_id


@login_required
@require_GET
def patient_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    patients = visible_patients(request.user).select_related("department")
    if query:
        patients = patients.filter(Q(identifier__icontains=query) | Q(diagnosis__icontains=query))
    patients = patients.annotate(n_courses=Count("courses", distinct=True)).order_by("identifier")
    return render(
        request, "registry/patient_list.html", {"patients": patients[:500], "query": query}
    )


@login_required
@require_GET
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = patient_for(request.user, pk)
    courses = patient.courses.prefetch_related("prescriptions", "files").order_by("start")
    context = {
        "patient": patient,
        "courses": courses,
        "structures": patient.structures.order_by("position"),
        "timeline": timeline(list(courses), patient),
        "responses": patient.responses.order_by("date", "position"),
        "toxicities": patient.toxicities.select_related("structure").order_by("date", "position"),
        "can_follow_up": role_in(request.user, patient) in FOLLOW_UP_ROLES,
        "assessments": patient.assessments.select_related("created_by", "signoff"),
        "role": role_in(request.user, patient),
        "can_assess": can_assess(request.user, patient),
        "can_edit": can_edit(request.user, patient),
    }
    return render(request, "registry/patient_detail.html", context)


@login_required
@require_POST
def patient_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The patient as a zip of ``case.yaml`` and its DICOM files (audited)."""
    patient = patient_for(request.user, pk)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="reirrad-export-") as scratch:
        case_path, hashes = write_case_folder(patient, scratch)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for relative in sorted(hashes):
                archive.write(Path(scratch) / relative, arcname=relative)
    audit.record(
        "export", request=request, obj=patient, format="case-zip",
        files=len(hashes), case_sha256=hashes["case.yaml"],
    )  # fmt: skip
    buffer.seek(0)
    return FileResponse(
        buffer, as_attachment=True, filename=f"{patient.identifier}-case.zip",
        content_type="application/zip",
    )  # fmt: skip


@login_required
def patient_import(request: HttpRequest) -> HttpResponse:
    """A new patient from a case file (YAML, or a zip with the case and its DICOM files)."""
    departments = Department.objects.filter(
        membership__user=request.user, membership__role__in=EDIT_ROLES
    ).order_by("name")
    if not departments.exists():
        raise PermissionDenied("your role may not add patients")
    error = None
    if request.method == "POST":
        upload = request.FILES.get("case")
        try:
            department = departments.get(pk=posted_id(request.POST.get("department", "")))
        except Department.DoesNotExist:
            raise Http404("no such department") from None
        if upload is None:
            error = "Choose a case file (YAML) or a zip of the case and its files."
        elif upload.size > ingest.MAX_CASE_UPLOAD_BYTES:
            error = "The upload is too large."
        else:
            try:
                with tempfile.TemporaryDirectory(prefix="reirrad-import-") as scratch:
                    case_path = ingest.unpack_case(upload.name, upload.file, Path(scratch))
                    patient = import_case(case_path, department, user=request.user, request=request)
            except InputError as problem:
                error = f"The case was not imported: {problem}"
            else:
                messages.success(request, f"Patient {patient.identifier} imported.")
                return redirect("registry:patient", pk=patient.pk)
    return render(
        request,
        "registry/patient_import.html",
        {"departments": departments, "error": error},
        status=400 if error else 200,
    )
