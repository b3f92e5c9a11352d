"""Exports of an assessment (case YAML, EFFECTIVE RTDOSE, CSV) and the page's stored figures.

Everything served here was stored when the assessment ran (:mod:`reirrad.web.registry.page`)
or frozen when it was created (the case YAML), so a signed assessment's exports are the ones
it was signed with. Every object is found through :func:`assessment_for` (another
department's user: 404) and every export is audited.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from reirrad.web.registry import audit
from reirrad.web.registry.models import StoredObject
from reirrad.web.registry.page import EXPORTS
from reirrad.web.registry.permissions import assessment_for

#: A stored SVG is shown in an <img> (which runs no script); opened directly it is sandboxed.
FIGURE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _stored(sha256: str | None) -> StoredObject:
    stored = StoredObject.objects.filter(sha256=sha256).first() if sha256 else None
    if stored is None or not stored.path.is_file():
        raise Http404("this assessment has no such output")
    return stored


def _private(response: HttpResponse) -> HttpResponse:
    response.headers["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def assessment_export(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """One export of the assessment, as an attachment."""
    assessment = assessment_for(request.user, pk)
    filename = f"{assessment.patient.identifier}-assessment-{assessment.pk}-{name}"
    if name == "case.yaml":
        data = assessment.case_yaml.encode("utf-8")
        audit.record("export", request=request, obj=assessment, format=name)
        response = HttpResponse(data, content_type="application/yaml")
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return _private(response)
    if name not in EXPORTS:
        raise Http404("no such export")
    page = (assessment.summary or {}).get("page") or {}
    stored = _stored(page.get("exports", {}).get(name))
    audit.record("export", request=request, obj=assessment, format=name, sha256=stored.sha256)
    response = FileResponse(
        open(stored.path, "rb"),  # noqa: SIM115 - FileResponse closes it
        content_type=EXPORTS[name],
        as_attachment=True,
        filename=filename,
    )
    return _private(response)


@login_required
@require_GET
def assessment_figure(request: HttpRequest, pk: int, n: int) -> HttpResponse:
    """The page's figure number ``n`` (SVG), part of the page view (not audited apart)."""
    assessment = assessment_for(request.user, pk)
    figures = ((assessment.summary or {}).get("page") or {}).get("figures", [])
    if not 0 <= n < len(figures):
        raise Http404("no such figure")
    stored = _stored(figures[n]["sha256"])
    response = FileResponse(open(stored.path, "rb"), content_type="image/svg+xml")  # noqa: SIM115
    response.headers["Content-Security-Policy"] = FIGURE_CSP
    return _private(response)
