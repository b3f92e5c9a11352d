"""DICOM folder/zip uploads and the course made from them."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reirrad.errors import InputError
from reirrad.web.registry import ingest
from reirrad.web.registry.forms import DicomCourseForm
from reirrad.web.registry.permissions import (
    can_edit,
    patient_for,
    upload_for,
)
from reirrad.web.registry.views import posted_id
from reirrad.web.registry.views.courses import _course_entry


@login_required
def upload_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload DICOM files, a folder or a zip for a patient (editors only)."""
    patient = patient_for(request.user, pk)
    if not can_edit(request.user, patient):
        raise PermissionDenied("your role may not upload")
    if request.method == "POST":
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > ingest.MAX_TOTAL_BYTES:
            return HttpResponse("The upload is too large.", status=413)
        files = request.FILES.getlist("files")
        if not files:
            messages.error(request, "Choose files, a folder or a zip to upload.")
        else:
            upload = ingest.ingest(
                patient, [(f.name, f.file) for f in files], user=request.user, request=request
            )
            return redirect("registry:upload", pk=upload.pk)
    return render(request, "registry/upload_form.html", {"patient": patient})


def _upload_context(request: HttpRequest, upload: Any, form: Any) -> dict[str, Any]:
    studies = ingest.grouped(upload)
    by_modality: dict[str, list[Any]] = {}
    for series in (s for group in studies.values() for s in group):
        by_modality.setdefault(series.modality, []).append(series)
    return {
        "upload": upload,
        "patient": upload.patient,
        "studies": studies,
        "by_modality": by_modality,
        "form": form,
        "can_edit": can_edit(request.user, upload.patient),
    }


@login_required
@require_GET
def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    upload = upload_for(request.user, pk)
    return render(
        request, "registry/upload_detail.html", _upload_context(request, upload, DicomCourseForm())
    )


def _ids(values: list[str]) -> tuple[int, ...]:
    return tuple(posted_id(v) for v in values if v)


@login_required
@require_POST
def upload_course(request: HttpRequest, pk: int) -> HttpResponse:
    """Create a DICOM course from objects of an upload (editors only)."""
    upload = upload_for(request.user, pk)
    if not can_edit(request.user, upload.patient):
        raise PermissionDenied("your role may not add a course")
    form = DicomCourseForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        ct_series = request.POST.get("ct_series", "")
        ct = tuple(
            item.stored_id
            for item in upload.items.select_related("stored").order_by("name")
            if ct_series
            and item.stored.series_instance_uid == ct_series
            and item.stored.modality == "CT"
        )
        try:
            selection = ingest.DicomSelection(
                rtstruct=posted_id(request.POST.get("rtstruct", "")),
                rtdose=_ids(request.POST.getlist("rtdose")),
                rtplan=(_ids([request.POST.get("rtplan", "")]) or (None,))[0],
                ct=ct,
                registration=(_ids([request.POST.get("registration", "")]) or (None,))[0],
            )
            entry = _course_entry(data)
            course = ingest.create_dicom_course(
                upload.patient, upload, entry, selection, user=request.user, request=request
            )
        except InputError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Course {course.course_id} added from the upload.")
            return redirect("registry:course", pk=course.pk)
    return render(
        request, "registry/upload_detail.html", _upload_context(request, upload, form), status=400
    )
