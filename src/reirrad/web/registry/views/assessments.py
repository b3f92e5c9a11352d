"""Assessments: start, progress, outputs, sign-off."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reirrad.core.tissue import OVERLAP_RULES
from reirrad.errors import InputError
from reirrad.web.registry import audit, store
from reirrad.web.registry.assessments import start_assessment
from reirrad.web.registry.models import (
    Assessment,
    Role,
    SignOff,
)
from reirrad.web.registry.permissions import (
    assessment_for,
    can_assess,
    can_sign,
    patient_for,
)
from reirrad.web.registry.views import posted_id

#: The stored HTML report is self-contained (inline styles, embedded images) and runs no
#: script: it gets a policy of its own, sandboxed.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; sandbox"


#: The outputs a user may download, and how each is served.
OUTPUTS = {
    "report.html": ("report_html", "view_report", False),
    "report.pdf": ("report_pdf", "view_report", False),
    "result.json": ("result_json", "download", True),
}


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
    rule = request.POST.get("overlap_rule", "")
    if rule:
        if rule not in OVERLAP_RULES:
            raise Http404("no such overlap rule")
        parameters["overlap_rule"] = rule
    selected = courses if chosen else None  # none chosen: all the patient's courses
    supersedes = None
    if request.POST.get("supersedes"):
        supersedes = assessment_for(request.user, posted_id(request.POST["supersedes"]))
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


def _counts(summary: dict[str, Any]) -> dict[str, int]:
    """Verdict counts of the limits table the page shows (voxel-wise when the run has one)."""
    page = summary.get("page")
    if not page:
        return summary.get("counts", {})
    verdicts = [row["verdict"].lower() for row in page["sections"]["limits"]]
    return {v: verdicts.count(v) for v in ("pass", "fail")}


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
        "counts": _counts(summary),
        "running": assessment.status in (Assessment.Status.QUEUED, Assessment.Status.RUNNING),
        "signoff": signoff,
        # the report's sections, figures and exports stored at run time (registry/page.py)
        "page": summary.get("page"),
        "rtdose": "cumulative_eqd2_RD.dcm" in (summary.get("page") or {}).get("exports", {}),
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
