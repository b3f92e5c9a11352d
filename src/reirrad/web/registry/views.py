"""Server-rendered pages. Every object is found through :mod:`.permissions`, so one the user
may not see is a 404 whatever its URL; every state change is a POST behind CSRF."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from reirrad.errors import InputError
from reirrad.web.registry import audit, ingest, store
from reirrad.web.registry.assessments import start_assessment
from reirrad.web.registry.casefile import import_case, write_case_folder
from reirrad.web.registry.forms import DicomCourseForm, SummaryCourseForm
from reirrad.web.registry.models import (
    EDIT_ROLES,
    Assessment,
    AuditEvent,
    Department,
    Role,
    SignOff,
    Structure,
    StructureMapping,
)
from reirrad.web.registry.permissions import (
    assessment_for,
    can_assess,
    can_edit,
    can_sign,
    course_for,
    patient_for,
    role_in,
    upload_for,
    visible_patients,
)
from reirrad.web.registry.structures import mapping_rows
from reirrad.web.registry.summary import (
    MAX_DOCUMENT_BYTES,
    SummaryCourse,
    add_summary_course,
    parse_statistics,
)
from reirrad.web.registry.timeline import timeline

#: The stored HTML report is self-contained (inline styles, embedded images) and runs no
#: script: it gets a policy of its own, sandboxed.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; sandbox"


class ThrottledLoginView(LoginView):
    """Django's login, refused after too many recent failures for the name or the address."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_S)
        username = str(request.POST.get("username", ""))[:150]
        address = audit.client_address(request)
        recent = AuditEvent.objects.filter(action="failed_login", at__gte=since)
        failures = recent.filter(Q(username=username) | Q(remote_addr=address)).count()
        if failures >= settings.LOGIN_FAILURE_LIMIT:
            audit.record("failed_login", request=request, username=username, throttled=True)
            form = self.get_form()
            form.errors.clear()
            minutes = settings.LOGIN_FAILURE_WINDOW_S // 60
            form.add_error(None, f"Too many failed logins; try again in {minutes} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


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
        "timeline": timeline(list(courses)),
        "assessments": patient.assessments.select_related("created_by", "signoff"),
        "role": role_in(request.user, patient),
        "can_assess": can_assess(request.user, patient),
        "can_edit": can_edit(request.user, patient),
    }
    return render(request, "registry/patient_detail.html", context)


@login_required
@require_POST
def assessment_new(request: HttpRequest, pk: int) -> HttpResponse:
    patient = patient_for(request.user, pk)
    if not can_assess(request.user, patient):
        raise PermissionDenied("your role may not start an assessment")
    chosen = request.POST.getlist("course")
    courses = patient.courses.filter(pk__in=[c for c in chosen if c.isdigit()])
    if chosen and courses.count() != len(set(chosen)):
        raise Http404("no such course")
    sets = [s.strip() for s in request.POST.get("constraint_sets", "").split(",") if s.strip()]
    parameters: dict[str, Any] = {"constraint_sets": sets}
    reference = request.POST.get("reference", "")
    if reference:  # a course id of this patient
        if not patient.courses.filter(course_id=reference).exists():
            raise Http404("no such course")
        parameters["reference"] = reference
    method = request.POST.get("method", "")
    if method:
        if method not in ("structure", "prescription", "none"):
            raise Http404("no such method")
        parameters["methods"] = method
    selected = courses if chosen else None  # none chosen: all the patient's courses
    supersedes = None
    if request.POST.get("supersedes"):
        supersedes = assessment_for(request.user, _integer(request.POST["supersedes"]))
        if supersedes.patient_id != patient.pk:
            raise Http404("no such assessment of this patient")
        if not chosen:  # the courses of the one it supersedes, as they are now
            selected = supersedes.courses.all()
    try:
        assessment = start_assessment(
            patient,
            request.user,
            courses=selected,
            parameters=parameters,
            supersedes=supersedes,
            request=request,
        )
    except InputError as error:
        messages.error(request, f"The assessment cannot start: {error}")
        return redirect("registry:patient", pk=patient.pk)
    messages.success(request, f"Assessment {assessment.pk} is queued.")
    return redirect("registry:assessment", pk=assessment.pk)


def _integer(text: str) -> int:
    if not text.isdigit():
        raise Http404("no such object")
    return int(text)


def _assessment_context(request: HttpRequest, assessment: Assessment) -> dict[str, Any]:
    summary = assessment.summary or {}
    signoff = getattr(assessment, "signoff", None)
    return {
        "can_sign": signoff is None
        and assessment.status == Assessment.Status.DONE
        and assessment.report_pdf is not None
        and can_sign(request.user, assessment.patient),
        "can_assess": can_assess(request.user, assessment.patient),
        "assessment": assessment,
        "patient": assessment.patient,
        "summary": summary,
        "counts": summary.get("counts", {}),
        "running": assessment.status in (Assessment.Status.QUEUED, Assessment.Status.RUNNING),
        "signoff": signoff,
    }


@login_required
@require_GET
def assessment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    assessment = assessment_for(request.user, pk)
    context = _assessment_context(request, assessment)
    context["courses"] = assessment.courses.order_by("start")
    return render(request, "registry/assessment_detail.html", context)


@login_required
@require_GET
def assessment_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status fragment the assessment page reloads while the run is going on."""
    assessment = assessment_for(request.user, pk)
    return render(
        request, "registry/_assessment_status.html", _assessment_context(request, assessment)
    )


#: The outputs a user may download, and how each is served.
OUTPUTS = {
    "report.html": ("report_html", "view_report", False),
    "report.pdf": ("report_pdf", "view_report", False),
    "result.json": ("result_json", "download", True),
}


@login_required
@require_GET
def assessment_output(request: HttpRequest, pk: int, output: str) -> HttpResponse:
    assessment = assessment_for(request.user, pk)
    if output not in OUTPUTS:
        raise Http404("no such output")
    field, action, attachment = OUTPUTS[output]
    stored = getattr(assessment, field)
    if stored is None or not stored.path.is_file():
        raise Http404("this assessment has no such output")
    audit.record(action, request=request, obj=assessment, output=output, sha256=stored.sha256)
    name = f"{assessment.patient.identifier}-assessment-{assessment.pk}-{output}"
    response = FileResponse(
        open(stored.path, "rb"),  # noqa: SIM115 - FileResponse closes it
        content_type=stored.media_type,
        as_attachment=attachment,
        filename=name,
    )
    if output == "report.html":
        response.headers["Content-Security-Policy"] = REPORT_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response


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
@require_POST
def assessment_sign(request: HttpRequest, pk: int) -> HttpResponse:
    """A physician signs the report PDF: with their password again, on the PDF's SHA-256."""
    assessment = assessment_for(request.user, pk)
    if not can_sign(request.user, assessment.patient):
        raise PermissionDenied("only a physician of the patient's department signs")
    back = redirect("registry:assessment", pk=assessment.pk)
    if hasattr(assessment, "signoff"):
        messages.error(request, "This assessment is already signed.")
        return back
    pdf = assessment.report_pdf
    if assessment.status != Assessment.Status.DONE or pdf is None:
        messages.error(request, "Only a finished assessment with a PDF report can be signed.")
        return back
    if request.POST.get("reviewed") != "yes":
        messages.error(request, "Confirm that you have reviewed the report.")
        return back
    if not request.user.check_password(request.POST.get("password", "")):
        audit.record("failed_login", request=request, obj=assessment, reason="sign-off password")
        messages.error(request, "The password is not right; the report is not signed.")
        return back
    # sign the bytes that are in the store now, not only the hash the row claims
    if store.sha256_of(pdf.path) != pdf.sha256:
        messages.error(request, "The stored PDF does not match its hash; it cannot be signed.")
        return back
    signoff = SignOff.objects.create(
        assessment=assessment, user=request.user, role=Role.PHYSICIAN, pdf_sha256=pdf.sha256
    )
    audit.record("sign_off", request=request, obj=assessment, pdf_sha256=signoff.pdf_sha256)
    messages.success(request, f"Signed: report PDF {pdf.sha256[:16]}...")
    return back


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
        structure = course.patient.structures.get(pk=_integer(request.POST.get("structure", "")))
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
    return tuple(_integer(v) for v in values if v)


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
                rtstruct=_integer(request.POST.get("rtstruct", "")),
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
            department = departments.get(pk=_integer(request.POST.get("department", "")))
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


#: Course fields the course forms share with :class:`SummaryCourse`.
_COURSE_FIELDS = (
    "course_id", "start", "end", "fractions", "label", "institution", "technique",
    "systemic_therapy", "status", "data_quality", "data_quality_note",
)  # fmt: skip


def _course_entry(data: dict, **extra) -> SummaryCourse:
    """A course from a course form's cleaned data (summary document or DICOM upload)."""
    prescriptions = []
    if data.get("rx_target"):
        prescriptions.append((data["rx_target"], data["rx_dose_gy"], data["rx_fractions"], True))
    return SummaryCourse(
        **{k: data[k] for k in _COURSE_FIELDS}, prescriptions=prescriptions, **extra
    )
