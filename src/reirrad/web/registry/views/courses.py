"""Course pages, structure mapping, summary-document courses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reirrad.errors import InputError
from reirrad.web.registry import audit
from reirrad.web.registry.forms import SummaryCourseForm
from reirrad.web.registry.models import (
    Structure,
    StructureMapping,
)
from reirrad.web.registry.permissions import (
    can_edit,
    course_for,
    patient_for,
)
from reirrad.web.registry.structures import mapping_rows
from reirrad.web.registry.summary import (
    MAX_DOCUMENT_BYTES,
    SummaryCourse,
    add_summary_course,
    parse_statistics,
)
from reirrad.web.registry.views import posted_id

#: Course fields the course forms share with :class:`SummaryCourse`.
_COURSE_FIELDS = (
    "course_id", "start", "end", "fractions", "label", "institution", "technique",
    "systemic_therapy", "status", "data_quality", "data_quality_note",
)  # fmt: skip


@login_required
@require_GET
def course_detail(request: HttpRequest, pk: int) -> HttpResponse:
    course = course_for(request.user, pk)
    files = course.files.select_related("stored").order_by("stored__modality", "path")
    series: dict[tuple[str, str], list[Any]] = {}
    for item in files:  # a CT series is one row (its slices listed inside)
        series.setdefault((item.stored.modality, item.stored.series_instance_uid), []).append(item)
    groups = [
        {
            "modality": modality or items[0].stored.kind,
            "files": items,
            "first": items[0],
            "size": sum(i.stored.size for i in items),
        }
        for (modality, _), items in series.items()
    ]
    statistics = course.dose_statistics.select_related("structure").order_by("position")
    context = {
        "course": course,
        "patient": course.patient,
        "prescriptions": course.prescriptions.order_by("position"),
        "statistics": statistics,
        "groups": groups,
        "mapping": mapping_rows(course) if course.source == course.Source.DICOM else [],
        "can_edit": can_edit(request.user, course.patient),
    }
    return render(request, "registry/course_detail.html", context)


@login_required
@require_POST
def course_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """Set which RTSTRUCT ROI is a case structure in this course (editors only)."""
    course = course_for(request.user, pk)
    if not can_edit(request.user, course.patient):
        raise PermissionDenied("your role may not change a course")
    try:
        structure = course.patient.structures.get(pk=posted_id(request.POST.get("structure", "")))
    except Structure.DoesNotExist:
        raise Http404("no such structure") from None
    roi = request.POST.get("roi", "").strip()[:200]
    if roi:
        StructureMapping.objects.update_or_create(
            course=course, structure=structure, defaults={"roi_name": roi}
        )
    else:
        StructureMapping.objects.filter(course=course, structure=structure).delete()
    audit.record(
        "change", request=request, obj=course, field="structure_map",
        structure=structure.name, roi=roi or None,
    )  # fmt: skip
    messages.success(request, f"{structure.name}: {roi or 'mapping removed'}")
    return redirect("registry:course", pk=course.pk)


@login_required
@require_GET
def course_file(request: HttpRequest, pk: int, file_pk: int) -> HttpResponse:
    """Download one stored file of a course (audited)."""
    course = course_for(request.user, pk)
    try:
        item = course.files.select_related("stored").get(pk=file_pk)
    except course.files.model.DoesNotExist:
        raise Http404("no such file") from None
    if not item.stored.path.is_file():
        raise Http404("the file is missing from the store")
    audit.record("download", request=request, obj=course, path=item.path, sha256=item.stored.sha256)
    return FileResponse(
        open(item.stored.path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=Path(item.path).name,
        content_type=item.stored.media_type,
    )


@login_required
def summary_course_new(request: HttpRequest, pk: int) -> HttpResponse:
    """A course from a summary document: typed-in numbers and the document (editors only)."""
    patient = patient_for(request.user, pk)
    if not can_edit(request.user, patient):
        raise PermissionDenied("your role may not add a course")
    form = SummaryCourseForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        document = data.get("document")
        try:
            if document is not None and document.size > MAX_DOCUMENT_BYTES:
                raise InputError(
                    f"the document is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB",
                    field="document",
                )
            entry = _course_entry(data, statistics=parse_statistics(data.get("statistics") or ""))
            course = add_summary_course(
                patient,
                entry,
                document=document.file if document is not None else None,
                document_name=document.name if document is not None else "",
                user=request.user,
                request=request,
            )
        except InputError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Course {course.course_id} added.")
            return redirect("registry:course", pk=course.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "registry/summary_course_form.html",
        {"patient": patient, "form": form, "structures": patient.structures.order_by("position")},
        status=status,
    )


@login_required
@require_GET
def course_document(request: HttpRequest, pk: int) -> HttpResponse:
    """The summary document a course was typed in from (audited)."""
    course = course_for(request.user, pk)
    stored = course.source_document
    if stored is None or not stored.path.is_file():
        raise Http404("this course has no document")
    audit.record("download", request=request, obj=course, document_sha256=stored.sha256)
    return FileResponse(
        open(stored.path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=stored.original_name or f"{course.course_id}-summary",
        content_type=stored.media_type,
    )


def _course_entry(data: dict, **extra) -> SummaryCourse:
    """A course from a course form's cleaned data (summary document or DICOM upload)."""
    prescriptions = []
    if data.get("rx_target"):
        prescriptions.append((data["rx_target"], data["rx_dose_gy"], data["rx_fractions"], True))
    return SummaryCourse(
        **{k: data[k] for k in _COURSE_FIELDS}, prescriptions=prescriptions, **extra
    )
