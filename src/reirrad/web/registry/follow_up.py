"""The follow-up record in the registry: forms and the one way an observation is saved.

An observation typed into a form is checked by the case file's own rules
(:mod:`reirrad.core.follow_up`, and the case checks of :func:`reirrad.io.casefile.parse_case`:
declared structure, grade 0-5, not before the diagnosis, says something): the patient's case
with the new or changed observation is built and parsed as a case file is, so the registry
and the case file cannot disagree about what a valid observation is.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from django import forms
from django.db import transaction

from reirrad.core import follow_up as core
from reirrad.io.casefile import parse_case, parse_yaml
from reirrad.web.registry import audit
from reirrad.web.registry.casefile import (
    _dump,
    case_data,
    case_yaml,
    response_row,
    toxicity_row,
)
from reirrad.web.registry.models import (
    EDIT_ROLES,
    Patient,
    ResponseObservation,
    Role,
    ToxicityObservation,
)

#: Roles that may add and change follow-up observations: the editors and the physicians who
#: see the patient in clinic.
FOLLOW_UP_ROLES = EDIT_ROLES | {Role.PHYSICIAN}

#: kind -> (row model, field names of the form in the case item's order)
KINDS = {"response": ResponseObservation, "toxicity": ToxicityObservation}

_DATE = forms.DateInput(attrs={"type": "date"})


def _choices(model: type, field: str, blank: bool) -> list[tuple[str, str]]:
    """The values a core model's ``Literal`` field allows, as form choices."""
    annotation = model.model_fields[field].annotation
    if typing.get_origin(annotation) is not typing.Literal:  # Optional[Literal[...]]
        annotation = next(
            a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal
        )
    literal = annotation
    values = [(v, v) for v in typing.get_args(literal)]
    return ([("", "—")] if blank else []) + values


class ResponseForm(forms.Form):
    date = forms.DateField(widget=_DATE)
    modality = forms.ChoiceField(choices=_choices(core.ResponseObservation, "modality", False))
    site = forms.ChoiceField(choices=_choices(core.ResponseObservation, "site", False))
    size_mm = forms.CharField(
        required=False, max_length=60, label="Size (mm)", help_text="up to three, e.g. 28 x 24"
    )
    suv_max = forms.FloatField(required=False, label="SUVmax")
    recist = forms.ChoiceField(
        required=False, choices=_choices(core.ResponseObservation, "recist", True),
        label="RECIST 1.1 (only where stated)",
    )  # fmt: skip
    percist = forms.ChoiceField(
        required=False, choices=_choices(core.ResponseObservation, "percist", True),
        label="PERCIST 1.0 (only where stated)",
    )  # fmt: skip
    reported = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_size_mm(self) -> list[float] | None:
        text = self.cleaned_data["size_mm"].strip()
        if not text:
            return None
        parts = [p for p in re.split(r"[x×,;\s]+", text) if p]
        try:
            return [float(p) for p in parts]
        except ValueError:
            raise forms.ValidationError("give numbers in mm, e.g. 28 x 24") from None


class ToxicityForm(forms.Form):
    date = forms.DateField(widget=_DATE)
    term = forms.CharField(max_length=300, label="CTCAE v5.0 term")
    grade = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None,
        choices=[("", "not stated")] + [(g, str(g)) for g in range(6)],
        help_text="0: looked for and absent",
    )  # fmt: skip
    structure = forms.ChoiceField(required=False, label="Organ (declared structure)")
    attribution = forms.ChoiceField(
        required=False, choices=_choices(core.ToxicityObservation, "attribution", True)
    )
    onset = forms.ChoiceField(
        required=False, choices=_choices(core.ToxicityObservation, "onset", True)
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = patient.structures.order_by("position").values_list("name", flat=True)
        self.fields["structure"].choices = [("", "—")] + [(n, n) for n in names]


def form_class(kind: str) -> type[forms.Form]:
    return ResponseForm if kind == "response" else ToxicityForm


def initial_of(row: ResponseObservation | ToxicityObservation) -> dict[str, Any]:
    """Form values of a saved row."""
    from reirrad.web.registry.casefile import response_data, toxicity_data

    if isinstance(row, ResponseObservation):
        data = response_data(row)
        if "size_mm" in data:
            data["size_mm"] = " x ".join(f"{v:g}" for v in data["size_mm"])
        return data
    return toxicity_data(row)


def _item(cleaned: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cleaned.items() if v is not None and v != "" and v != []}


def checked_item(patient: Patient, kind: str, cleaned: dict[str, Any], index: int | None) -> Any:
    """The observation as the case file's validation reads it, in the patient's case with it
    added (``index`` None) or replacing the ``index``-th; InputError when refused."""
    data = case_data(patient)
    record = data.get("follow_up") or {"response": [], "toxicity": []}
    items = list(record.get(kind, []))
    position = len(items) if index is None else index
    if index is None:
        items.append(_item(cleaned))
    else:
        items[index] = _item(cleaned)
    data["follow_up"] = record | {kind: items}
    source = f"registry patient {patient.identifier}"
    case = parse_case(parse_yaml(case_yaml(data), source=source), source=source)
    return getattr(case.follow_up, kind)[position]


def ordered(patient: Patient, kind: str) -> list[Any]:
    """The patient's rows of ``kind`` in the order the case file lists them."""
    return list(KINDS[kind].objects.filter(patient=patient).order_by("position", "pk"))


@transaction.atomic
def save_observation(
    patient: Patient,
    kind: str,
    cleaned: dict[str, Any],
    *,
    row: ResponseObservation | ToxicityObservation | None = None,
    request: Any = None,
) -> ResponseObservation | ToxicityObservation:
    """Validate and save a new observation (``row`` None) or a change of ``row``; audited."""
    rows = ordered(patient, kind)
    index = None if row is None else [r.pk for r in rows].index(row.pk)
    item = _dump(checked_item(patient, kind, cleaned, index))
    position = (max((r.position for r in rows), default=-1) + 1) if row is None else row.position
    if kind == "response":
        new = response_row(patient, item, position)
    else:
        structures = {s.name: s for s in patient.structures.all()}
        new = toxicity_row(patient, item, structures, position)
    new.pk = row.pk if row is not None else None
    new.save()
    new.refresh_from_db()
    audit.record(
        "create" if row is None else "change", request=request, obj=new, kind=kind, item=item
    )
    return new
