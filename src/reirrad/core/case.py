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
    "Phase",
    "Prescription",
    "Recurrence",
    "Registration",
    "Sensitivity",
    "Stage",
    "StructureSpec",
    "TissueDefaults",
]

#: Conversion methods for a course's structure statistics (see :mod:`reirrad.core.assessment`).
METHODS = ("structure", "prescription", "none")
Method = Literal["structure", "prescription", "none"]
Role = Literal["target", "organ_at_risk", "external"]
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


def _check_dose_statistics(doses: dict[str, dict[str, float]], prefix: str) -> None:
    """Every key of ``{structure: {statistic: value}}`` must be a dose metric (Dmean, D2%...)."""
    for structure, stats in doses.items():
        for name in stats:
            try:
                metric = parse_metric(name)
            except InputError as error:
                raise ValueError(f"{prefix}.{structure}: {error.problem}") from None
            if not metric.is_dose:
                raise ValueError(
                    f"{prefix}.{structure}.{name}: only dose statistics (Dmean, Dmax, D2%, "
                    "D0.035cc...) can be given here"
                )


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


class Phase(_Model):
    """One plan (phase) of a course: its RTDOSE and how many fractions delivered it.

    The number of fractions comes from the RTPLAN (one fraction group) when given, else from
    ``fractions``, else from the course's ``fractions`` when the course has one phase; an
    RTPLAN that disagrees with a stated number is refused. A dose of DoseSummationType
    FRACTION is multiplied by that number; BEAM needs ``beams_summed: true`` (the file holds
    the sum of all beams of one fraction) and is refused otherwise.
    """

    rtdose: list[str] = Field(min_length=1)
    rtplan: str | None = None
    fractions: PositiveInt | None = None
    beams_summed: bool = False
    label: str | None = None

    @field_validator("rtdose", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


class Registration(_Model):
    """How a course maps onto the reference course (see docs/dicom.md).

    ``identity``: same Frame of Reference (checked); ``reg``: a DICOM Spatial Registration
    ``file``; ``rigid``: computed from the two CTs with SimpleITK; ``deformable``: rigid then
    B-spline or demons, labelled UNCERTAIN in every output.
    """

    method: Literal["identity", "reg", "rigid", "deformable"]
    file: str | None = None
    deformable: Literal["bspline", "demons"] = "bspline"

    @model_validator(mode="after")
    def _file(self) -> Registration:
        if self.method == "reg" and not self.file:
            raise ValueError("method 'reg' needs file: the DICOM Spatial Registration (REG) file")
        if self.method != "reg" and self.file:
            raise ValueError(f"file is only used with method 'reg', not {self.method!r}")
        return self


class DicomSource(_Model):
    """DICOM files of a course; paths are relative to the case file.

    Either the shorthand ``rtdose`` (+ optional ``rtplan``: one phase; several RTDOSE files on
    one grid are added) or ``phases`` (one item per plan, each with its own fractions).
    """

    rtdose: list[str] = Field(default_factory=list)
    rtstruct: str
    rtplan: str | None = None
    phases: list[Phase] = Field(default_factory=list)
    ct: str | list[str] | None = Field(
        default=None, description="CT directory or list of slice files (for computed registration)"
    )
    registration: Registration | None = Field(
        default=None, description="mapping onto the reference course; default identity"
    )
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

    @model_validator(mode="after")
    def _one_form(self) -> DicomSource:
        if bool(self.rtdose) == bool(self.phases):
            raise ValueError(
                "give either rtdose (+ rtplan) for a single-phase course or phases (one item "
                "per plan), not both and not neither"
            )
        if self.phases and self.rtplan:
            raise ValueError("with phases, give each phase its own rtplan")
        return self

    def phase_list(self) -> list[Phase]:
        """The phases, the shorthand ``rtdose``/``rtplan`` being one phase."""
        if self.phases:
            return list(self.phases)
        return [Phase(rtdose=list(self.rtdose), rtplan=self.rtplan)]


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
        _check_dose_statistics(self.doses, "doses")
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


class Sensitivity(_Model):
    """Scenarios of the voxel-wise sensitivity analysis (``reirrad.core.sensitivity``)."""

    alpha_beta_shift_gy: Annotated[float, Field(ge=0)] = Field(
        default=1.0, description="alpha/beta of organs at risk shifted by -x, 0, +x Gy"
    )
    recovery_scales: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: [0.0, 0.5, 1.0],
        description="recovery from none (0) to the model's value (1)",
    )


class Analysis(_Model):
    """How the assessment is made."""

    method: Method | dict[str, Method] = "structure"
    mixed_statistics: list[MixedStatistic] = Field(default_factory=list)
    reference_course: str | None = None
    # --- voxel-wise accumulation (courses with DICOM; docs/dicom.md) ---
    overlap_rule: Literal["targets_first", "most_conservative"] | list[str] = Field(
        default="targets_first",
        description="targets_first (targets over organs at risk, organs among themselves most "
        "conservative), most_conservative (lowest alpha/beta, least recovery of every structure "
        "covering a voxel) or a priority list of structure names; in every rule the external "
        "contour only replaces the default tissue (docs/accumulation.md)",
    )
    default_tissue: TissueDefaults | None = Field(
        default=None,
        description="alpha/beta and recovery of voxels in no case structure; default the "
        "organ_at_risk tissue defaults",
    )
    resampling: Literal["trilinear", "max_footprint_oar"] = Field(
        default="trilinear",
        description="trilinear everywhere, or the conservative maximum over the voxel "
        "footprint inside organs at risk",
    )
    reirradiation_type_threshold_gy: PositiveFloat | None = Field(
        default=None, description="isodose (physical Gy) defining each course's irradiated volume"
    )
    sensitivity: Sensitivity = Field(default_factory=Sensitivity)


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
        _check_dose_statistics(self.relative_doses, "relative_doses")
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
        if isinstance(self.analysis.overlap_rule, list):
            unknown = sorted(set(self.analysis.overlap_rule) - declared)
            if unknown:
                raise ValueError(f"analysis.overlap_rule names undeclared structure(s) {unknown}")
        for course in self.courses:
            if course.dicom is None:
                continue
            phases = course.dicom.phase_list()
            if len(phases) > 1:
                stated = [p.fractions for p in phases]
                if all(n is not None for n in stated) and sum(stated) != course.fractions:
                    raise ValueError(
                        f"course {course.id}: its phases have {'+'.join(map(str, stated))} = "
                        f"{sum(stated)} fractions but the course says {course.fractions}"
                    )
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
        if spec.role == "external" and "external" not in self.tissue_defaults:
            # the external contour is normal tissue: the default tissue, else the organs'
            fallback = self.analysis.default_tissue or self.tissue_defaults.get("organ_at_risk")
            defaults = fallback or defaults
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
