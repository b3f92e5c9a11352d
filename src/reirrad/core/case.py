"""The re-irradiation case: patient, diagnosis, courses, structures, analysis options.

This is the validated domain model behind the YAML case format (``docs/case-format.md``).
The models are pydantic (frozen, unknown fields forbidden, so a misspelt key is an error);
reading the YAML and naming the file in errors is :mod:`reirrad.io.casefile`'s job.

Cross-field rules checked here: end date not before start, courses in time order and not
overlapping, every structure resolvable to tissue parameters, every dose statistic a
valid dose metric, every structure named in a course declared, every custom constraint on
a structure that has dose in at least one course, a primary prescription where the
``prescription`` method needs one.

Refuse rather than guess: numbers are strict (``true`` is not 1, ``"30"`` is not 30), finite
and within the plausibility limits below; typed-in dose statistics of a structure must be
ordered (Dmin <= D98% <= ... <= D2% <= Dmax, Dmean between Dmin and Dmax); a primary
prescription has its course's fractions; the birth date precedes the first course; no file
is listed twice; constraint ids are unique; ``structure_map`` keys are declared structures;
the explorer's target has the role ``target``.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from reirrad.core.follow_up import FollowUp
from reirrad.core.metrics import parse_metric
from reirrad.core.recovery import RecoveryModel, recovery_model_from_spec
from reirrad.errors import InputError

__all__ = [
    "MAX_DOSE_GY",
    "MAX_DOSE_PER_FRACTION_GY",
    "MAX_FRACTIONS",
    "MAX_FRACTIONS_PER_DAY",
    "MAX_RELATIVE_DOSE_PERCENT",
    "MAX_VOLUME_ML",
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

# --- Plausibility limits (docs/case-format.md, "Limits"). They are not clinical limits: they
# only refuse numbers no real course has (a dose in cGy typed as Gy, 1e30 fractions), far
# enough above real schemes that none of those is refused. ---
#: Most fractions in one course. Hyperfractionation gives 81.6 Gy in 68 fractions twice daily
#: (Fu KK et al., RTOG 9003, Int J Radiat Oncol Biol Phys 2000;48(1):7-16; phase III trial).
MAX_FRACTIONS = 100
#: Most fractions a day: CHART gives three a day over 12 consecutive days (Dische S et al.,
#: Radiother Oncol 1997;44(2):123-136, volume/pages not verified here; secondary source: MRC
#: CTU page of the CHART head and neck trial CH02). Checked against a course's dates.
MAX_FRACTIONS_PER_DAY = 3
#: Highest physical dose (Gy) of one course, for any statistic or prescription. Trigeminal
#: neuralgia radiosurgery gives a maximum dose of 70-90 Gy in one fraction (Kondziolka D et
#: al., Arch Neurol 1998;55(12):1524-1529; abstract only; 80-85 Gy: Boling W et al., Brain
#: Sci 2019;9(6):134); no external-beam course comes near 200 Gy, while 7000 (cGy) is refused.
MAX_DOSE_GY = 200.0
#: Highest prescribed dose per fraction (Gy): the radiosurgery maxima above fit (single-
#: fraction radiosurgery of 24 Gy, RTOG 90-05, easily does).
MAX_DOSE_PER_FRACTION_GY = 100.0
#: Highest relative dose (% of the prescription) in ``exploration.relative_doses``:
#: radiosurgery prescribed to the 50 % isodose has a maximum of 200 % (a max/prescription
#: dose ratio >= 2 in RTOG 90-05: Shaw E et al., Int J Radiat Oncol Biol Phys
#: 1996;34(3):647-654; initial report); 300 % leaves room and refuses doses typed in cGy.
MAX_RELATIVE_DOSE_PERCENT = 300.0
#: Largest volume (mL) of a recurrence: more than a whole reference adult (73 kg, ICRP
#: Publication 89, Ann ICRP 2002;32(3-4); not verified here), so only unit errors are refused.
MAX_VOLUME_ML = 100_000.0

# Strict numbers: a boolean or a text is not a number; an int is accepted where a float is.
PositiveFloat = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]
#: Upper bound of an alpha/beta ratio (Gy). A plausibility bound, not a published number: at
#: 100 Gy the linear-quadratic correction of a 2 Gy fraction is 2 %, so a larger entry is far
#: more likely a typing or unit error than a tissue; the LQ model then is a linear one.
MAX_ALPHA_BETA_GY = 100.0
AlphaBeta = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_ALPHA_BETA_GY)]
NonNegativeFloat = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Fractions = Annotated[int, Field(strict=True, gt=0, le=MAX_FRACTIONS)]
#: A physical dose statistic (Gy); 0 is allowed (a course that missed the structure).
DoseGy = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_DOSE_GY)]
PrescribedGy = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_DOSE_GY)]
RelativeDose = Annotated[
    float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_RELATIVE_DOSE_PERCENT)
]
Age = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=130)]
StrictBool = Annotated[bool, Field(strict=True)]
Name = Annotated[str, Field(min_length=1)]
#: Tolerance of the ordering checks (Gy or %): equal values are fine (rounded entries).
_ORDER_TOLERANCE = 1e-9


def _check_dose_statistics(
    doses: dict[str, dict[str, float]], prefix: str, unit: str = "Gy"
) -> None:
    """Every key of ``{structure: {statistic: value}}`` must be a dose metric (Dmean, D2%...),
    and the values of a structure must be ordered as statistics of one distribution are."""
    for structure, stats in doses.items():
        parsed = []
        for name, value in stats.items():
            try:
                metric = parse_metric(name)
            except InputError as error:
                raise ValueError(f"{prefix}.{structure}: {error.problem}") from None
            if not metric.is_dose:
                raise ValueError(
                    f"{prefix}.{structure}.{name}: only dose statistics (Dmean, Dmax, D2%, "
                    "D0.035cc...) can be given here"
                )
            parsed.append((metric, name, value))
        _check_order(parsed, f"{prefix}.{structure}", unit)


def _order_key(metric: Any) -> tuple[int, float]:
    """Position in 'dose decreases as the volume grows': Dmax, D<x>cc / D<x>% (growing x), Dmin.

    Percent and cc volumes cannot be compared without the structure's volume, so each unit
    is its own chain between Dmax and Dmin.
    """
    if metric.kind == "max":
        return (0, 0.0)
    if metric.kind == "min":
        return (2, 0.0)
    return (1, float(metric.value))


def _check_order(parsed: list[tuple[Any, str, float]], where: str, unit: str) -> None:
    """Dmin <= every D<x> <= Dmax, D<x> not increasing with x, Dmean within [Dmin, Dmax]."""
    by_kind = {m.kind: (name, v) for m, name, v in parsed if m.kind in ("max", "min", "mean")}
    pairs = []  # (higher, lower) that must satisfy higher >= lower
    if "max" in by_kind and "min" in by_kind:
        pairs.append((by_kind["max"], by_kind["min"]))
    if "mean" in by_kind:
        if "max" in by_kind:
            pairs.append((by_kind["max"], by_kind["mean"]))
        if "min" in by_kind:
            pairs.append((by_kind["mean"], by_kind["min"]))
    for chain_unit in ("%", "cc"):
        chain = sorted(
            (
                (_order_key(m), name, v)
                for m, name, v in parsed
                if m.kind in ("max", "min") or m.unit == chain_unit
            ),
            key=lambda item: item[0],
        )
        pairs += [((a[1], a[2]), (b[1], b[2])) for a, b in zip(chain, chain[1:], strict=False)]
    for (high_name, high), (low_name, low) in pairs:
        if high < low - _ORDER_TOLERANCE:
            raise ValueError(
                f"{where}: {high_name} = {high:g} {unit} is below {low_name} = {low:g} {unit}, "
                "impossible for one dose distribution (Dmin <= D98% <= ... <= D2% <= Dmax, "
                "Dmean between Dmin and Dmax); check the values and their statistics"
            )


def _normalized_path(text: str) -> str:
    """A path as written in the case file, normalised for comparison (no file access)."""
    return posixpath.normpath(text.replace("\\", "/"))


#: Text fields of a user-defined recovery model (reirrad.core.recovery); all others are numbers.
_RECOVERY_TEXT = {"model", "name", "id", "citation", "evidence", "interpolation", "note"}


def _strict_recovery(spec: Any) -> Any:
    """Numbers of a recovery mapping are real, finite numbers: ``fraction: true`` is not 1."""
    if not isinstance(spec, dict):
        return spec

    def check(key: str, value: Any) -> None:
        if value is None and key == "supported_interval_days":
            return  # an open end of the supported range
        if isinstance(value, list | tuple):
            for item in value:
                check(key, item)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"recovery.{key}: {value!r} is not a number")
        elif value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"recovery.{key}: must be finite, not {value!r}")

    for key, value in spec.items():
        if str(key) not in _RECOVERY_TEXT:
            check(str(key), value)
    return spec


RecoverySpec = Annotated[str | dict | None, AfterValidator(_strict_recovery)]


def _date_not_number(value: Any) -> Any:
    # pydantic reads a number as seconds since 1970: start: 0 would be 1970-01-01
    if isinstance(value, bool | int | float):
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD")
    return value


Date = Annotated[dt.date, BeforeValidator(_date_not_number)]


def _reject_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean (true/false) is not a number here")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Patient(_Model):
    """Who the case is about (anonymised id)."""

    id: Name
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    birth_date: Date | None = None
    age_at_diagnosis: Age | None = None


class Stage(_Model):
    """TNM stage at diagnosis."""

    edition: Literal["AJCC9", "AJCC8", "UICC9", "UICC8"] = "AJCC9"
    t: str
    n: str
    m: str


class Diagnosis(_Model):
    site: str
    histology: str | None = None
    date: Date | None = None
    stage: Stage | None = None


class RecurrencePet(_Model):
    """A PET series whose threshold volume is the recurrence volume (rGTV).

    Paths are relative to the case file.  The region is an ROI of an RTSTRUCT on the PET's
    frame, or a box ``x0:x1,y0:y1,z0:z1`` in patient mm; the threshold an SUVbw (``2.5``)
    or a percentage of the region's SUVmax (``40%``); see docs/pet.md for their sources.
    """

    series: str = Field(min_length=1)
    structures: str | None = None
    roi: str | None = None
    box: str | None = None
    threshold: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_region(self) -> RecurrencePet:
        if (self.roi is None) == (self.box is None):
            raise ValueError("give the region as roi (with structures) or as box, not both")
        if self.roi is not None and self.structures is None:
            raise ValueError("roi needs structures (the RTSTRUCT holding it)")
        return self


class Recurrence(_Model):
    """The recurrence being considered for re-irradiation (inputs of the Li 2018 index)."""

    date: Date | None = None
    volume_ml: (
        Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_VOLUME_ML)] | None
    ) = None
    rt_category: str | None = Field(
        default=None, description="rT1..rT4, or a group 'rT1-2' / 'rT3-4' when only that is known"
    )
    age_years: Age | None = None
    prior_grade3_toxicity: StrictBool | None = None
    pet: RecurrencePet | None = Field(
        default=None, description="PET threshold volume used as the recurrence volume"
    )
    note: str | None = None

    @model_validator(mode="after")
    def _one_volume(self) -> Recurrence:
        if self.pet is not None and self.volume_ml is not None:
            raise ValueError(
                "give volume_ml or pet, not both: the recurrence volume would be ambiguous"
            )
        return self


class Prescription(_Model):
    """A dose level of a course (one of several in a simultaneous integrated boost)."""

    target: Name
    dose_gy: PrescribedGy
    fractions: Fractions
    primary: StrictBool = False

    @model_validator(mode="after")
    def _per_fraction(self) -> Prescription:
        if self.dose_gy / self.fractions > MAX_DOSE_PER_FRACTION_GY:
            raise ValueError(
                f"{self.target}: {self.dose_gy:g} Gy in {self.fractions} fraction(s) is "
                f"{self.dose_gy / self.fractions:g} Gy per fraction, above the plausibility "
                f"limit of {MAX_DOSE_PER_FRACTION_GY:g} Gy (docs/case-format.md, Limits); "
                "check the unit (Gy, not cGy) and the fractions"
            )
        return self

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
    fractions: Fractions | None = None
    beams_summed: StrictBool = False
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
    extra_rtstructs: list[str] = Field(
        default_factory=list,
        description="more RTSTRUCT files on the same frame of reference whose ROIs are added "
        "to rtstruct's (e.g. the PET threshold ROI that `reirrad pet --registration` writes on "
        "the planning CT); an ROI name may occur in one file only",
    )
    structure_map: dict[str, str] = Field(
        default_factory=dict, description="case structure name -> ROI name in the RTSTRUCT"
    )
    statistics: list[str] = Field(
        default_factory=lambda: ["Dmean", "Dmax", "D0.035cc", "D2%", "D98%"],
        description="dose statistics computed from the DVHs",
    )
    allow_partial_coverage: StrictBool = Field(
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

    def files(self) -> list[tuple[str, str]]:
        """``(kind, path)`` of every RTDOSE and RTPLAN file, as written (duplicate checks)."""
        phases = self.phase_list()
        files = [("RTDOSE", p) for phase in phases for p in phase.rtdose]
        return files + [("RTPLAN", phase.rtplan) for phase in phases if phase.rtplan]

    def phase_list(self) -> list[Phase]:
        """The phases, the shorthand ``rtdose``/``rtplan`` being one phase."""
        if self.phases:
            return list(self.phases)
        return [Phase(rtdose=list(self.rtdose), rtplan=self.rtplan)]


class Course(_Model):
    """One course of radiotherapy: dates, fractions, prescriptions and the doses it gave."""

    id: Name
    label: str | None = None
    start: Date
    end: Date
    fractions: Fractions
    technique: str | None = None
    systemic_therapy: str | None = None
    prescriptions: list[Prescription] = Field(default_factory=list)
    doses: dict[str, dict[str, DoseGy]] = Field(
        default_factory=dict,
        description="structure name -> {metric: physical dose in Gy (0 allowed)}, "
        "e.g. {Dmean: 29.9}",
    )
    dicom: DicomSource | None = None

    @model_validator(mode="after")
    def _check(self) -> Course:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        days = self.overall_time_days + 1
        if self.fractions > MAX_FRACTIONS_PER_DAY * days:
            raise ValueError(
                f"course {self.id}: {self.fractions} fractions from {self.start} to {self.end} "
                f"({days} day(s)) is more than {MAX_FRACTIONS_PER_DAY} a day; check the dates "
                "and the fractions"
            )
        _check_dose_statistics(self.doses, f"course {self.id}: doses")
        if sum(p.primary for p in self.prescriptions) > 1:
            raise ValueError("only one prescription may be marked primary")
        for index, rx in enumerate(self.prescriptions):
            if rx.fractions > self.fractions:
                raise ValueError(
                    f"course {self.id}: prescriptions[{index}] ({rx.target}) has {rx.fractions} "
                    f"fractions but the course has {self.fractions}"
                )
        primary = [p for p in self.prescriptions if p.primary] or (
            self.prescriptions if len(self.prescriptions) == 1 else []
        )
        if primary and primary[0].fractions != self.fractions:
            raise ValueError(
                f"course {self.id}: the primary prescription ({primary[0].target}) has "
                f"{primary[0].fractions} fractions but the course has {self.fractions}; its "
                "dose per fraction converts the whole course, so give the course's total"
            )
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

    alpha_beta: AlphaBeta | None = None
    recovery: RecoverySpec = None


class StructureSpec(_Model):
    """A structure's tissue parameters."""

    name: Name
    role: Role
    organ: str | None = Field(
        default=None, description="organ key linking to constraint sets, e.g. parotid"
    )
    alpha_beta: AlphaBeta | None = None
    recovery: RecoverySpec = None
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
    """Scenarios of the sensitivity analysis (``reirrad.core.sensitivity``): the voxel-wise
    verdicts and the structure-level ones; a limit met at the nominal values but not in every
    scenario is reported "near the limit"."""

    alpha_beta_shift_gy: NonNegativeFloat = Field(
        default=1.0, description="alpha/beta of organs at risk shifted by -x, 0, +x Gy"
    )
    recovery_scales: list[Annotated[float, Field(strict=True, ge=0, le=1)]] = Field(
        default_factory=lambda: [0.0, 0.5, 1.0],
        description="recovery from none (0) to the model's value (1)",
    )


class Analysis(_Model):
    """How the assessment is made."""

    method: Method | dict[str, Method] = "structure"
    mixed_statistics: list[MixedStatistic] = Field(default_factory=list)
    reference_course: Name | None = None
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
    reirradiation_type_threshold_gy: PrescribedGy | None = Field(
        default=None, description="isodose (physical Gy) defining each course's irradiated volume"
    )
    sensitivity: Sensitivity = Field(default_factory=Sensitivity)


class ConstraintSpec(_Model):
    """A case-specific limit (same fields as in the constraint data files)."""

    id: Name
    structure: Name
    metric: str
    quantity: Literal["eqd2", "bed", "physical"]
    scope: Literal["cumulative", "course"] = "cumulative"
    comparator: Literal["<", "<="] = "<="
    limit: PositiveFloat
    alpha_beta_gy: AlphaBeta | None = None
    recovery_credit: StrictBool = True
    min_interval_days: NonNegativeFloat | None = None
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

    target: Name
    new_course: str | None = None
    start: Date | None = None
    relative_doses: dict[str, dict[str, RelativeDose]] = Field(
        default_factory=dict,
        description="structure -> {statistic: dose in % of the prescription dose}",
    )
    fractions: Annotated[list[Fractions], Field(min_length=1, max_length=MAX_FRACTIONS)] | None = (
        None
    )
    curative_threshold_gy: PrescribedGy = 46.0
    curative_quantity: Literal[
        "reirradiation_eqd2", "reirradiation_physical", "cumulative_eqd2"
    ] = "reirradiation_eqd2"
    max_dose_per_fraction_gy: (
        Annotated[float, Field(strict=True, gt=0, le=MAX_DOSE_PER_FRACTION_GY)] | None
    ) = None

    @model_validator(mode="after")
    def _one_source(self) -> Exploration:
        if (self.new_course is None) == (self.start is None):
            raise ValueError("give either new_course (a course to re-plan) or start (a new date)")
        if self.start is not None and not self.relative_doses:
            raise ValueError("a new course needs relative_doses (% of the prescription)")
        _check_dose_statistics(self.relative_doses, "relative_doses", unit="%")
        if self.fractions is not None and len(set(self.fractions)) != len(self.fractions):
            raise ValueError("fractions: each number of fractions once")
        return self


class Case(_Model):
    """A whole re-irradiation case."""

    reirrad_case: Annotated[Literal[1], BeforeValidator(_reject_bool)] = Field(
        description="case format version"
    )
    patient: Patient
    diagnosis: Diagnosis | None = None
    recurrence: Recurrence | None = None
    tissue_defaults: dict[Role, TissueDefaults] = Field(default_factory=dict)
    structures: list[StructureSpec]
    courses: list[Course] = Field(min_length=1)
    analysis: Analysis = Field(default_factory=Analysis)
    constraints: ConstraintsSection = Field(default_factory=ConstraintsSection)
    exploration: Exploration | None = None
    follow_up: FollowUp | None = Field(
        default=None, description="dated response and toxicity observations (CTCAE v5.0)"
    )

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
        self._check_dates()
        self._check_follow_up(declared)
        ids_of_constraints = [c.id for c in self.constraints.custom]
        repeated = sorted({i for i in ids_of_constraints if ids_of_constraints.count(i) > 1})
        if repeated:
            raise ValueError(f"constraints.custom: duplicate constraint id(s) {repeated}")
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
            role = self.structure(explore.target).role
            if role != "target":
                raise ValueError(
                    f"exploration.target: {explore.target!r} has role {role}; the explorer "
                    "needs the tumour (a structure with role: target)"
                )
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
        self._check_dicom_files(declared)
        if self.analysis.reference_course and self.analysis.reference_course not in ids:
            raise ValueError(
                f"analysis.reference_course {self.analysis.reference_course!r} unknown"
            )
        return self

    def _check_dates(self) -> None:
        """The birth date precedes the diagnosis, the recurrence and the first course."""
        born = self.patient.birth_date
        if born is None:
            return
        first = self.courses[0]
        for what, date in (
            ("the diagnosis", self.diagnosis.date if self.diagnosis else None),
            ("the recurrence", self.recurrence.date if self.recurrence else None),
            (f"the first course ({first.id})", first.start),
        ):
            if date is not None and date <= born:
                raise ValueError(
                    f"patient.birth_date {born} is not before {what} ({date}); check the dates"
                )
        age = self.patient.age_at_diagnosis
        if age is not None and self.diagnosis is not None and self.diagnosis.date is not None:
            years = (self.diagnosis.date - born).days / 365.25
            if abs(years - age) > 1:  # a whole-year age may lag the exact one by < 1 year
                raise ValueError(
                    f"patient.age_at_diagnosis {age:g} does not match the birth date {born} and "
                    f"the diagnosis date {self.diagnosis.date} ({years:.1f} years)"
                )

    def _check_follow_up(self, declared: set[str]) -> None:
        """Toxicities name declared structures; nothing is observed before the diagnosis."""
        if self.follow_up is None:
            return
        for index, item in enumerate(self.follow_up.toxicity):
            if item.structure is not None and item.structure not in declared:
                raise ValueError(
                    f"follow_up.toxicity[{index}]: unknown structure {item.structure!r}; use a "
                    f"declared structure name (declared: {sorted(declared)}) or leave it out"
                )
        earliest = self.diagnosis.date if self.diagnosis and self.diagnosis.date else None
        earliest = earliest or self.patient.birth_date
        for kind in ("response", "toxicity"):
            for index, item in enumerate(getattr(self.follow_up, kind)):
                if earliest is not None and item.date < earliest:
                    raise ValueError(
                        f"follow_up.{kind}[{index}]: date {item.date} is before the diagnosis "
                        f"({earliest}); check the date"
                    )

    def _check_dicom_files(self, declared: set[str]) -> None:
        """No RTDOSE/RTPLAN in two courses; structure_map keys are declared structures."""
        owner: dict[str, str] = {}
        for course in self.courses:
            if course.dicom is None:
                continue
            for kind, written in course.dicom.files():
                path = _normalized_path(written)
                if owner.get(path) == course.id:
                    raise ValueError(
                        f"course {course.id}: {kind} {written!r} is listed twice in dicom (its "
                        "dose would be counted twice); list each file once"
                    )
                if path in owner:
                    raise ValueError(
                        f"courses {owner[path]} and {course.id} both list {path!r}; each "
                        "course needs its own dose and plan files"
                    )
                owner[path] = course.id
            unknown = sorted(set(course.dicom.structure_map) - declared)
            if unknown:
                raise ValueError(
                    f"course {course.id}: dicom.structure_map names undeclared structure(s) "
                    f"{unknown}; its keys are case structure names (declared: {sorted(declared)})"
                )

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
