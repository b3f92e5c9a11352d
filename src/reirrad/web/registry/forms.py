"""Forms of the registry pages (types and required fields; the case rules are the library's)."""

from __future__ import annotations

from django import forms

from reirrad.web.registry.models import Course

_DATE = forms.DateInput(attrs={"type": "date"})


class SummaryCourseForm(forms.Form):
    """A course typed in from a treatment summary, with one prescription and the statistics."""

    course_id = forms.CharField(max_length=100, label="Course id (unique for the patient)")
    label = forms.CharField(max_length=300, required=False)
    institution = forms.CharField(max_length=200, required=False)
    start = forms.DateField(widget=_DATE, label="First fraction")
    end = forms.DateField(widget=_DATE, label="Last fraction")
    fractions = forms.IntegerField(min_value=1)
    technique = forms.CharField(max_length=300, required=False)
    systemic_therapy = forms.CharField(max_length=300, required=False)
    status = forms.ChoiceField(choices=Course.Status.choices, initial=Course.Status.DELIVERED)
    data_quality = forms.ChoiceField(
        choices=Course.Quality.choices, initial=Course.Quality.UNVERIFIED
    )
    data_quality_note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Data-quality note"
    )
    rx_target = forms.CharField(max_length=200, required=False, label="Prescription: target")
    rx_dose_gy = forms.FloatField(required=False, label="Prescription: dose (Gy)")
    rx_fractions = forms.IntegerField(required=False, min_value=1, label="Prescription: fractions")
    statistics = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Dose statistics, one a line: structure | statistic | physical dose in Gy",
        help_text="e.g. Right parotid gland | Dmean | 29.9 (structures as declared for the patient)",
    )
    document = forms.FileField(required=False, label="Summary document (PDF, PNG, JPEG or TIFF)")

    def clean(self) -> dict:
        data = super().clean()
        rx = [data.get("rx_target"), data.get("rx_dose_gy"), data.get("rx_fractions")]
        if any(v not in (None, "") for v in rx) and not all(v not in (None, "") for v in rx):
            raise forms.ValidationError(
                "give the prescription's target, dose and fractions, or none of them"
            )
        return data


class DicomCourseForm(SummaryCourseForm):
    """The course's facts; its doses come from the chosen DICOM objects."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["statistics"]
        del self.fields["document"]
