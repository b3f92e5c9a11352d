"""Adding and changing follow-up observations (responses and toxicities) of a patient."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from reirrad.errors import InputError
from reirrad.web.registry.follow_up import (
    FOLLOW_UP_ROLES,
    KINDS,
    form_class,
    initial_of,
    save_observation,
)
from reirrad.web.registry.models import Patient
from reirrad.web.registry.permissions import patient_for, role_in

_TITLES = {"response": "tumour response", "toxicity": "toxicity (CTCAE v5.0)"}


def _editable(request: HttpRequest, pk: int) -> Patient:
    patient = patient_for(request.user, pk)
    if role_in(request.user, patient) not in FOLLOW_UP_ROLES:
        raise PermissionDenied("your role may not change the follow-up record")
    return patient


@login_required
def observation_edit(
    request: HttpRequest, pk: int, kind: str, obs_pk: int | None = None
) -> HttpResponse:
    """Form of a new observation (``obs_pk`` None) or of a saved one; POST saves it."""
    if kind not in KINDS:
        raise Http404("no such kind of observation")
    patient = _editable(request, pk)
    row = None
    if obs_pk is not None:
        row = KINDS[kind].objects.filter(patient=patient, pk=obs_pk).first()
        if row is None:
            raise Http404("no such observation")
    extra = {"patient": patient} if kind == "toxicity" else {}
    Form = form_class(kind)
    error = None
    if request.method == "POST":
        form = Form(request.POST, **extra)
        if form.is_valid():
            try:
                save_observation(patient, kind, form.cleaned_data, row=row, request=request)
            except InputError as problem:
                error = f"Not saved: {problem}"
            else:
                messages.success(request, f"The {_TITLES[kind]} observation was saved.")
                return redirect("registry:patient", pk=patient.pk)
    else:
        form = Form(initial=initial_of(row) if row is not None else None, **extra)
    context = {"patient": patient, "form": form, "kind": kind, "title": _TITLES[kind],
               "row": row, "error": error}  # fmt: skip
    status = 400 if request.method == "POST" else 200
    return render(request, "registry/observation_form.html", context, status=status)
