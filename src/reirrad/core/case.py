"""The re-irradiation case: patient, diagnosis, courses, structures, analysis options.

This is the validated domain model behind the YAML case format (``docs/case-format.md``).
The models are pydantic (frozen, unknown fields forbidden, so a misspelt key is an error);
reading the YAML and naming the file in errors is :mod:`reirrad.io.casefile`'s job.

Cross-field rules checked here: end date not before start, courses in time order and not
overlapping, every structure resolvable to tissue parameters, every dose statistic a
valid dose metric, every structure named in a course declared, every custom constraint on
a structure that has dose in at least one course, a primary prescription where the
``prescription`` method needs one.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reirrad.core.metrics import parse_metric
from reirrad.core.recovery import RecoveryModel, recovery_model_from_spec
from reirrad.errors import InputError

__all__ = [
    "METHODS",
    "Analysis",
    "Case",
    "ConstraintSpec",
    "ConstraintsSection",
    "Course",
    "Diagnosis",
    "DicomSource",
    "Exploration",
    "MixedStatistic",
    "Patient",
    "Prescription",
    "Recurrence",
    "Stage",
    "StructureSpec",
    "TissueDefaults",
]

#: Conversion methods for a course's structure statistics (see :mod:`reirrad.core.assessment`).
METHODS = ("structure", "prescription", "none")
Method = Literal["structure", "prescription", "none"]
Role = Literal["target", "organ_at_risk"]
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Patient(_Model):
    """Who the case is about (anonymised id)."""

    id: str
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    birth_date: dt.date | None = None
    age_at_diagnosis: Annotated[float, Field(ge=0, le=130)] | None = None


class Stage(_Model):
    """TNM stage at diagnosis."""

    edition: Literal["AJCC9", "AJCC8", "UICC9", "UICC8"] = "AJCC9"
    t: str
    n: str
    m: str


class Diagnosis(_Model):
    site: str
    histology: str | None = None
    date: dt.date | None = None
    stage: Stage | None = None


class Recurrence(_Model):
    """The recurrence being considered for re-irradiation (inputs of the Li 2018 index)."""

    date: dt.date | None = None
    volume_ml: PositiveFloat | None = None
    rt_category: str | None = Field(
        default=None, description="rT1..rT4, or a group 'rT1-2' / 'rT3-4' when only that is known"
    )
    age_years: Annotated[float, Field(ge=0, le=130)] | None = None
    prior_grade3_toxicity: bool | None = None
    note: str | None = None


class Prescription(_Model):
    """A dose level of a course (one of several in a simultaneous integrated boost)."""

    target: str
    dose_gy: PositiveFloat
    fractions: PositiveInt
    primary: bool = False

    @property
    def dose_per_fraction_gy(self) -> float:
        return self.dose_gy / self.fractions


class DicomSource(_Model):
    """DICOM files of a course; paths are relative to the case file."""

    rtdose: list[str]
    rtstruct: str
    rtplan: str | None = None
    ct: str | None = None
    structure_map: dict[str, str] = Field(
        default_factory=dict, description="case structure name -> ROI name in the RTSTRUCT"
    )
    statistics: list[str] = Field(
        default_factory=lambda: ["Dmean", "Dmax", "D0.035cc", "D2%", "D98%"],
        description="dose statistics computed from the DVHs",
    )
    allow_partial_coverage: bool = Field(
        default=False,
        description="accept structures partly outside the dose grid (the outside part counted "
        "as 0 Gy); otherwise refused",
    )

    @field_validator("statistics")
    @classmethod
    def _dose_metrics(cls, value: list[str]) -> list[str]:
        names = []
        for text in value:
            metric = parse_metric(text)
            if not metric.is_dose:
                raise ValueError(f"{text}: only dose statistics can be computed for the assessment")
            names.append(metric.name)
        return names

    @field_validator("rtdose", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class Course(_Model):
    """One course of radiotherapy: dates, fractions, prescriptions and the doses it gave."""

    id: str
    label: str | None = None
    start: dt.date
    end: dt.date
    fractions: PositiveInt
    technique: str | None = None
    systemic_therapy: str | None = None
    prescriptions: list[Prescription] = Field(default_factory=list)
    doses: dict[str, dict[str, PositiveFloat]] = Field(
        default_factory=dict,
        description="structure name -> {metric: physical dose in Gy}, e.g. {Dmean: 29.9}",
    )
    dicom: DicomSource | None = None

    @model_validator(mode="after")
    def _check(self) -> Course:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        for structure, stats in self.doses.items():
            for name in stats:
                try:
                    metric = parse_metric(name)
                except InputError as error:
                    raise ValueError(f"doses.{structure}: {error.problem}") from None
                if not metric.is_dose:
                    raise ValueError(
                        f"doses.{structure}.{name}: only dose statistics (Dmean, Dmax, D2%, "
                        "D0.035cc...) can be entered per course"
                    )
        if sum(p.primary for p in self.prescriptions) > 1:
            raise ValueError("only one prescription may be marked primary")
        return self

    @property
    def overall_time_days(self) -> int:
        """Days from first to last fraction (the dates are inclusive)."""
        return (self.end - self.start).days

    def primary_prescription(self) -> Prescription:
        """The prescription the ``prescription`` method uses; refuses to guess between several."""
        if not self.prescriptions:
            raise InputError(
                "the 'prescription' method needs a prescription; add one under prescriptions",
                field=f"courses[{self.id}].prescriptions",
            )
        primary = [p for p in self.prescriptions if p.primary]
        if primary:
            return primary[0]
        if len(self.prescriptions) == 1:
            return self.prescriptions[0]
        raise InputError(
            "several prescriptions and none marked 'primary: true'; mark the one whose dose "
            "per fraction the 'prescription' method should use",
            field=f"courses[{self.id}].prescriptions",
        )


class TissueDefaults(_Model):
    """alpha/beta and recovery model used for a role when a structure does not set its own."""

    alpha_beta: PositiveFloat | None = None
    recovery: str | dict | None = None


class StructureSpec(_Model):
    """A structure's tissue parameters."""

    name: str
    role: Role
    organ: str | None = Field(
        default=None, description="organ key linking to constraint sets, e.g. parotid"
    )
    alpha_beta: PositiveFloat | None = None
    recovery: str | dict | None = None
    note: str | None = None


class MixedStatistic(_Model):
    """A declared sum of *different* statistics across courses (e.g. C1 Dmean + C2 Dmax)."""

    name: str
    per_course: dict[str, str]
    structures: list[str] | None = None
    note: str | None = None

    @field_validator("per_course")
    @classmethod
    def _metrics(cls, value: dict[str, str]) -> dict[str, str]:
        return {course: parse_metric(metric).name for course, metric in value.items()}


class Analysis(_Model):
    """How the assessment is made."""

    method: Method | dict[str, Method] = "structure"
    mixed_statistics: list[MixedStatistic] = Field(default_factory=list)
    reference_course: str | None = None


class ConstraintSpec(_Model):
    """A case-specific limit (same fields as in the constraint data files)."""

    id: str
    structure: str
    metric: str
    quantity: Literal["eqd2", "bed", "physical"]
    scope: Literal["cumulative", "course"] = "cumulative"
    comparator: Literal["<", "<="] = "<="
    limit: PositiveFloat
    alpha_beta_gy: PositiveFloat | None = None
    recovery_credit: bool = True
    min_interval_days: Annotated[float, Field(ge=0)] | None = None
    tier: str | None = None
    endpoint: str = ""
    source: str
    evidence: str

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return parse_metric(value).name


class ConstraintsSection(_Model):
    sets: list[str] = Field(default_factory=list)
    custom: list[ConstraintSpec] = Field(default_factory=list)


class Exploration(_Model):
    """Inputs of the fractionation explorer (``reirrad explore``).

    Either ``new_course`` names a course of the case to re-plan (the explorer then uses the
    courses before it as the history, and that course's doses divided by its primary
    prescription as the relative dose distribution), or ``start`` gives the date the new
    course would start and ``relative_doses`` its dose distribution.
    """

    target: str
    new_course: str | None = None
    start: dt.date | None = None
    relative_doses: dict[str, dict[str, PositiveFloat]] = Field(
        default_factory=dict,
        description="structure -> {statistic: dose in % of the prescription dose}",
    )
    fractions: list[PositiveInt] | None = None
    curative_threshold_gy: PositiveFloat = 46.0
    curative_quantity: Literal[
        "reirradiation_eqd2", "reirradiation_physical", "cumulative_eqd2"
    ] = "reirradiation_eqd2"
    max_dose_per_fraction_gy: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Exploration:
        if (self.new_course is None) == (self.start is None):
            raise ValueError("give either new_course (a course to re-plan) or start (a new date)")
        if self.start is not None and not self.relative_doses:
            raise ValueError("a new course needs relative_doses (% of the prescription)")
        for structure, stats in self.relative_doses.items():
            for name in stats:
                try:
                    metric = parse_metric(name)
                except InputError as error:
                    raise ValueError(f"relative_doses.{structure}: {error.problem}") from None
                if not metric.is_dose:
                    raise ValueError(
                        f"relative_doses.{structure}.{name}: a dose statistic is needed"
                    )
        return self


class Case(_Model):
    """A whole re-irradiation case."""

    reirrad_case: Literal[1] = Field(description="case format version")
    patient: Patient
    diagnosis: Diagnosis | None = None
    recurrence: Recurrence | None = None
    tissue_defaults: dict[Role, TissueDefaults] = Field(default_factory=dict)
    structures: list[StructureSpec]
    courses: list[Course] = Field(min_length=1)
    analysis: Analysis = Field(default_factory=Analysis)
    constraints: ConstraintsSection = Field(default_factory=ConstraintsSection)
    exploration: Exploration | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> Case:
        ids = [c.id for c in self.courses]
        if len(set(ids)) != len(ids):
            raise ValueError(f"course ids must be unique, got {ids}")
        for before, after in zip(self.courses, self.courses[1:], strict=False):
            if after.start <= before.end:
                raise ValueError(
                    f"courses {before.id} ({before.start}..{before.end}) and {after.id} "
                    f"({after.start}..{after.end}) overlap or are out of order; list courses "
                    "in time order, a later one starting after the earlier one ends"
                )
        names = [s.name for s in self.structures]
        if len(set(names)) != len(names):
            raise ValueError("structure names must be unique")
        declared = set(names)
        for course in self.courses:
            unknown = sorted(set(course.doses) - declared)
            if unknown:
                raise ValueError(
                    f"course {course.id}: doses for undeclared structure(s) {unknown}; "
                    f"declare them under structures (declared: {sorted(declared)})"
                )
        for spec in self.structures:
            self.tissue(spec)  # raises when alpha/beta or recovery cannot be resolved
        with_dose = {name for c in self.courses for name in c.doses} | {
            name for c in self.courses if c.dicom for name in self.dicom_structures(c)
        }
        for index, constraint in enumerate(self.constraints.custom):
            if constraint.structure not in declared:
                raise ValueError(
                    f"constraints.custom[{index}]: unknown structure {constraint.structure!r}"
                )
            if constraint.structure not in with_dose:
                raise ValueError(
                    f"constraints.custom[{index}]: structure {constraint.structure!r} has no "
                    "dose in any course; add its doses or remove the constraint"
                )
        for mixed in self.analysis.mixed_statistics:
            missing = sorted(set(mixed.per_course) ^ set(ids))
            if missing:
                raise ValueError(
                    f"analysis.mixed_statistics {mixed.name!r}: give one statistic for every "
                    f"course (courses {ids}; mismatch {missing})"
                )
        method = self.analysis.method
        if isinstance(method, dict):
            missing = sorted(set(method) - set(ids))
            if missing:
                raise ValueError(f"analysis.method names unknown course(s) {missing}")
        if self.exploration is not None:
            explore = self.exploration
            if explore.target not in declared:
                raise ValueError(f"exploration.target: unknown structure {explore.target!r}")
            if explore.new_course is not None and explore.new_course not in ids:
                raise ValueError(f"exploration.new_course: unknown course {explore.new_course!r}")
            if explore.new_course is not None and explore.new_course == ids[0]:
                raise ValueError(
                    "exploration.new_course: the first course has no history to explore"
                )
            if explore.start is not None and explore.start <= self.courses[-1].end:
                raise ValueError("exploration.start must be after the last course ends")
            unknown = sorted(set(explore.relative_doses) - declared)
            if unknown:
                raise ValueError(f"exploration.relative_doses: undeclared structure(s) {unknown}")
        if self.analysis.reference_course and self.analysis.reference_course not in ids:
            raise ValueError(
                f"analysis.reference_course {self.analysis.reference_course!r} unknown"
            )
        return self

    def dicom_structures(self, course: Course) -> list[str]:
        """Case structures whose dose comes from the course's DICOM files."""
        if course.dicom is None:
            return []
        return [s.name for s in self.structures if s.name not in course.doses]

    def structure(self, name: str) -> StructureSpec:
        for spec in self.structures:
            if spec.name == name:
                return spec
        raise InputError(f"unknown structure {name!r}", field="structures")

    def tissue(self, spec: StructureSpec) -> tuple[float, RecoveryModel]:
        """alpha/beta (Gy) and recovery model of a structure, falling back on its role's defaults."""
        defaults = self.tissue_defaults.get(spec.role, TissueDefaults())
        alpha_beta = spec.alpha_beta or defaults.alpha_beta
        if alpha_beta is None:
            raise ValueError(
                f"structure {spec.name!r} has no alpha_beta and tissue_defaults.{spec.role} "
                "gives none; set one of them"
            )
        recovery = spec.recovery if spec.recovery is not None else defaults.recovery
        if recovery is None:
            raise ValueError(
                f"structure {spec.name!r} has no recovery model and tissue_defaults.{spec.role} "
                "gives none; set one of them (use 'none' for no recovery)"
            )
        try:
            model = recovery_model_from_spec(recovery)
        except InputError as error:
            raise ValueError(f"structure {spec.name!r}: {error.problem}") from None
        return alpha_beta, model

    def course(self, course_id: str) -> Course:
        for course in self.courses:
            if course.id == course_id:
                return course
        raise InputError(f"unknown course {course_id!r}; courses: {[c.id for c in self.courses]}")

    def method_for(self, course_id: str) -> str:
        method = self.analysis.method
        if isinstance(method, str):
            return method
        return method.get(course_id, "structure")
