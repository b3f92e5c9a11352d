"""A new patient typed in (the other way in is a case-file import, :mod:`.patients`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from pydantic import ValidationError

from reirrad.core.case import StructureSpec, TissueDefaults
from reirrad.core.recovery import recovery_model_from_spec
from reirrad.errors import InputError
from reirrad.io.casefile import input_error_from_validation
from reirrad.web.registry import audit
from reirrad.web.registry.casefile import registry_case
from reirrad.web.registry.models import EDIT_ROLES, Department, Patient, Structure
from reirrad.web.registry.permissions import can_edit, patient_for

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
        return parse_structure_lines(self.cleaned_data["structures"])

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


def parse_structure_lines(text: str) -> list[StructureSpec]:
    """Structures one a line, ``name | role | alpha/beta | recovery [| organ key]``, each
    checked by the case file's rules; an error names its line. An empty alpha/beta or
    recovery takes the case's tissue defaults for the role; a recovery may be a JSON spec."""
    specs: list[StructureSpec] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (4, 5):
            raise forms.ValidationError(
                f"line {number}: give name | role | alpha/beta | recovery [| organ key]"
            )
        try:
            alpha_beta = float(parts[2]) if parts[2] else None
        except ValueError:
            raise forms.ValidationError(
                f"line {number}: alpha/beta {parts[2]!r} is not a number"
            ) from None
        try:
            recovery = json.loads(parts[3]) if parts[3].startswith("{") else parts[3] or None
            spec = StructureSpec(
                name=parts[0], role=parts[1], alpha_beta=alpha_beta, recovery=recovery,
                organ=(parts[4] if len(parts) == 5 else "") or None,
            )  # fmt: skip
            if spec.recovery is not None:
                recovery_model_from_spec(spec.recovery)
        except (ValueError, InputError) as error:  # pydantic's ValidationError is a ValueError
            raise forms.ValidationError(f"line {number}: {_first_error(error)}") from None
        if spec.name in {s.name for s in specs}:
            raise forms.ValidationError(f"line {number}: {spec.name} is given twice")
        specs.append(spec)
    return specs


def structure_line(structure: Structure) -> str:
    """A registry structure as a line :func:`parse_structure_lines` reads back."""
    recovery = structure.recovery
    if isinstance(recovery, dict):
        recovery = json.dumps(recovery)
    parts = [
        structure.name, structure.role,
        "" if structure.alpha_beta is None else f"{structure.alpha_beta:g}",
        recovery or "", structure.organ,
    ]  # fmt: skip
    return " | ".join(parts if structure.organ else parts[:4])


def _first_error(error: Exception) -> str:
    """The problem in the case file's words (pydantic's errors as a case file reports them)."""
    if isinstance(error, ValidationError):
        return str(input_error_from_validation(error))
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


class StructuresForm(forms.Form):
    """The patient's structures as lines; existing ones change, new ones are added."""

    structures = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        label="Structures, one a line: name | role | alpha/beta (Gy) | recovery | organ key",
        help_text="Empty alpha/beta or recovery: the case's tissue defaults for the role. "
        "Structures are not removed here: courses' dose statistics, mappings and "
        "assessments refer to them.",
    )

    def clean_structures(self) -> list[StructureSpec]:
        return parse_structure_lines(self.cleaned_data["structures"])


@login_required
def patient_structures(request: HttpRequest, pk: int) -> HttpResponse:
    """Change the tissue parameters, role or organ key of a patient's structures, or add
    structures; the whole case is validated before anything is saved (audited)."""
    patient = patient_for(request.user, pk)
    if not can_edit(request.user, patient):
        raise PermissionDenied("your role may not change structures")
    existing = {s.name: s for s in patient.structures.order_by("position")}
    initial = "\n".join(structure_line(s) for s in existing.values())
    form = StructuresForm(request.POST or None, initial={"structures": initial})
    if request.method == "POST" and form.is_valid():
        specs = form.cleaned_data["structures"]
        missing = [name for name in existing if name not in {s.name for s in specs}]
        if missing:
            form.add_error(
                "structures",
                f"{', '.join(missing)} missing: structures are not removed here; keep their lines",
            )
        else:
            try:
                changed = _save_structures(patient, existing, specs)
            except InputError as error:
                form.add_error("structures", f"the case would not be valid: {error.problem}")
            else:
                audit.record("change", request=request, obj=patient, structures=changed)
                messages.success(request, "Structures saved.")
                return redirect("registry:patient", pk=patient.pk)
    status = 400 if form.errors else 200
    context = {"form": form, "patient": patient}
    return render(request, "registry/structures_form.html", context, status=status)


def _save_structures(
    patient: Patient, existing: dict[str, Structure], specs: list[StructureSpec]
) -> dict[str, list[str]]:
    """Update and add rows, then validate the registry's case; roll back if it fails."""
    changed: dict[str, list[str]] = {"added": [], "changed": []}
    with transaction.atomic():
        next_position = 1 + max((s.position for s in existing.values()), default=-1)
        for spec in specs:
            values = {
                "role": spec.role, "organ": spec.organ or "",
                "alpha_beta": spec.alpha_beta, "recovery": spec.recovery,
            }  # fmt: skip
            row = existing.get(spec.name)
            if row is None:
                Structure.objects.create(
                    patient=patient, position=next_position, name=spec.name, **values
                )
                next_position += 1
                changed["added"].append(spec.name)
            elif any(getattr(row, key) != value for key, value in values.items()):
                Structure.objects.filter(pk=row.pk).update(**values)
                changed["changed"].append(spec.name)
        registry_case(patient)  # InputError rolls the whole change back
    return changed
