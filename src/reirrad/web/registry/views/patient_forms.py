"""A new patient typed in (the other way in is a case-file import, :mod:`.patients`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from reirrad.web.registry import audit
from reirrad.web.registry.models import EDIT_ROLES, Department, Patient

_DATE = forms.DateInput(attrs={"type": "date"})


def editable_departments(user: Any) -> QuerySet[Department]:
    """Departments where the user may add patients (planner, physicist, admin)."""
    return Department.objects.filter(
        membership__user=user, membership__role__in=EDIT_ROLES
    ).order_by("name")


class PatientForm(forms.Form):
    """The case file's ``patient`` and ``diagnosis`` sections (docs/case-format.md).

    The registry holds an anonymised id, not a name, as the case file does.
    """

    department = forms.ModelChoiceField(queryset=Department.objects.none(), empty_label=None)
    identifier = forms.CharField(
        max_length=200, label="Patient id (anonymised, unique in the department)"
    )
    sex = forms.ChoiceField(choices=Patient.Sex.choices, initial=Patient.Sex.UNKNOWN)
    birth_date = forms.DateField(widget=_DATE, required=False, label="Birth date")
    site = forms.CharField(max_length=200, required=False, label="Diagnosis: site")
    histology = forms.CharField(max_length=300, required=False, label="Diagnosis: histology")
    diagnosis_date = forms.DateField(widget=_DATE, required=False, label="Diagnosis: date")

    def __init__(self, *args: Any, departments: QuerySet[Department], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        born, diagnosed = data.get("birth_date"), data.get("diagnosis_date")
        if born and born > dt.date.today():
            self.add_error("birth_date", "The birth date is in the future.")
        if born and diagnosed and diagnosed < born:
            self.add_error("diagnosis_date", "The diagnosis is before the birth date.")
        if (data.get("histology") or diagnosed) and not data.get("site"):
            self.add_error("site", "A diagnosis needs its site (as the case file does).")
        department, identifier = data.get("department"), data.get("identifier")
        if department and identifier and department.patients.filter(identifier=identifier).exists():
            self.add_error(
                "identifier",
                f"{department.name} already has a patient {identifier}; open it from the "
                "patient list, or choose another id.",
            )
        return data

    def diagnosis(self) -> dict[str, Any] | None:
        """The ``diagnosis`` section as the case file writes it (``None``: no site given)."""
        data = self.cleaned_data
        if not data["site"]:
            return None
        section: dict[str, Any] = {"site": data["site"]}
        if data["histology"]:
            section["histology"] = data["histology"]
        if data["diagnosis_date"]:
            section["date"] = data["diagnosis_date"].isoformat()
        return section


@login_required
def patient_new(request: HttpRequest) -> HttpResponse:
    """Form and creation of a patient in one of the user's departments (audited)."""
    departments = editable_departments(request.user)
    if not departments.exists():
        raise PermissionDenied("your role may not add patients")
    form = PatientForm(request.POST or None, departments=departments)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                patient = Patient.objects.create(
                    department=data["department"], identifier=data["identifier"],
                    sex=data["sex"], birth_date=data["birth_date"],
                    diagnosis=form.diagnosis(), created_by=request.user,
                )  # fmt: skip
                audit.record(
                    "create", request=request, obj=patient, source="form",
                    department=data["department"].name,
                )  # fmt: skip
        except IntegrityError:  # the same id saved by another session since the check
            form.add_error("identifier", "This id was just taken in the department.")
        else:
            messages.success(request, f"Patient {patient.identifier} created.")
            return redirect("registry:patient", pk=patient.pk)
    status = 400 if form.errors else 200
    return render(request, "registry/patient_form.html", {"form": form}, status=status)
