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

from reirrad.core.case import StructureSpec, TissueDefaults
from reirrad.core.recovery import recovery_model_from_spec
from reirrad.errors import InputError
from reirrad.web.registry import audit
from reirrad.web.registry.models import EDIT_ROLES, Department, Patient, Structure

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
    structures = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        label="Structures, one a line: name | role | alpha/beta (Gy) | recovery | organ key",
        help_text="e.g. SpinalCanal | organ_at_risk | 2 | nieder-step | spinal_cord "
        "(roles: target, organ_at_risk, external; recovery 'none' for none; the organ key "
        "links a constraint set and may be left out)",
    )
    default_tissue = forms.CharField(
        required=False,
        max_length=200,
        label="Tissue outside the structures (dose grids): alpha/beta (Gy) | recovery",
        help_text="analysis.default_tissue of the case file, e.g. 3 | nieder-step; an "
        "assessment of DICOM doses needs it",
    )

    def __init__(self, *args: Any, departments: QuerySet[Department], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments

    def clean_default_tissue(self) -> dict[str, Any] | None:
        """``analysis.default_tissue`` of the case file: voxels outside every structure."""
        text = self.cleaned_data["default_tissue"].strip()
        if not text:
            return None
        parts = [p.strip() for p in text.split("|")]
        try:
            if len(parts) != 2:
                raise ValueError("give alpha/beta | recovery")
            tissue = TissueDefaults(alpha_beta=float(parts[0]), recovery=parts[1])
            recovery_model_from_spec(tissue.recovery)
        except (ValueError, InputError) as error:
            raise forms.ValidationError(_first_error(error)) from None
        return {"alpha_beta": tissue.alpha_beta, "recovery": tissue.recovery}

    def clean_structures(self) -> list[StructureSpec]:
        """Each line a structure, checked by the case file's rules; an error names its line."""
        specs: list[StructureSpec] = []
        for number, line in enumerate(self.cleaned_data["structures"].splitlines(), 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) not in (4, 5):
                raise forms.ValidationError(
                    f"line {number}: give name | role | alpha/beta | recovery [| organ key]"
                )
            try:
                alpha_beta = float(parts[2])
            except ValueError:
                raise forms.ValidationError(
                    f"line {number}: alpha/beta {parts[2]!r} is not a number"
                ) from None
            try:
                spec = StructureSpec(
                    name=parts[0], role=parts[1], alpha_beta=alpha_beta, recovery=parts[3],
                    organ=(parts[4] if len(parts) == 5 else "") or None,
                )  # fmt: skip
                recovery_model_from_spec(spec.recovery)
            except (ValueError, InputError) as error:  # pydantic's ValidationError is a ValueError
                raise forms.ValidationError(f"line {number}: {_first_error(error)}") from None
            if spec.name in {s.name for s in specs}:
                raise forms.ValidationError(f"line {number}: {spec.name} is given twice")
            specs.append(spec)
        return specs

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


def _first_error(error: Exception) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):  # pydantic: the first problem, with the field it is about
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(getattr(error, "problem", error))


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
                    case_options=(
                        {"analysis": {"default_tissue": data["default_tissue"]}}
                        if data["default_tissue"] else {}
                    ),
                )  # fmt: skip
                for position, spec in enumerate(data["structures"]):
                    Structure.objects.create(
                        patient=patient, position=position, name=spec.name, role=spec.role,
                        organ=spec.organ or "", alpha_beta=spec.alpha_beta, recovery=spec.recovery,
                    )  # fmt: skip
                audit.record(
                    "create", request=request, obj=patient, source="form",
                    structures=[spec.name for spec in data["structures"]],
                    department=data["department"].name,
                )  # fmt: skip
        except IntegrityError:  # the same id saved by another session since the check
            form.add_error("identifier", "This id was just taken in the department.")
        else:
            messages.success(request, f"Patient {patient.identifier} created.")
            return redirect("registry:patient", pk=patient.pk)
    status = 400 if form.errors else 200
    return render(request, "registry/patient_form.html", {"form": form}, status=status)
