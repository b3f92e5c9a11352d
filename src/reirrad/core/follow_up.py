"""The follow-up record: dated tumour-response and toxicity observations.

A re-irradiation decision is judged afterwards by what happened to the tumour and to each
organ; the record keeps those observations beside the doses so the report can show them
next to each organ's cumulative dose and a cohort can relate dose to toxicity.

Vocabularies
------------
* Toxicity terms and grades: National Cancer Institute. Common Terminology Criteria for
  Adverse Events (CTCAE) Version 5.0. U.S. Department of Health and Human Services,
  27 November 2017.  Grades 1-5 as CTCAE defines them; grade 0 here records that the
  event was looked for and absent (not a CTCAE grade).  Terms are stored as entered: write
  the CTCAE v5.0 term (e.g. "Dry mouth", "Trismus", "Pharyngeal mucositis").
* Attribution: the five categories used with CTCAE in NCI-sponsored trials (unrelated,
  unlikely, possible, probable, definite).
* Response: RECIST 1.1 (Eisenhauer EA et al. Eur J Cancer 2009;45(2):228-247: CR, PR,
  SD, PD) and PERCIST 1.0 (Wahl RL et al. J Nucl Med 2009;50 Suppl 1:122S-150S: CMR,
  PMR, SMD, PMD), only where the source states the category; otherwise the response is
  kept in the source's words (``reported``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

__all__ = ["FollowUp", "ResponseObservation", "ToxicityObservation"]

CTCAE_CITATION = (
    "National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE) "
    "v5.0. US Department of Health and Human Services; 27 Nov 2017"
)

_Positive = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ResponseObservation(_Model):
    """Tumour status on one date (imaging or examination).

    Attributes
    ----------
    date
        Date of the study.
    modality
        How it was seen.
    site
        local (the re-irradiated recurrence), regional (nodes), distant, or overall.
    size_mm
        Up to three diameters, as reported.
    suv_max
        Highest SUVbw reported for the site.
    recist, percist
        Category, only when the source states it.
    reported
        The source's own words for the finding.
    """

    date: dt.date
    modality: Literal["PET/CT", "PET/MR", "CT", "MR", "endoscopy", "clinical"]
    site: Literal["local", "regional", "distant", "overall"] = "local"
    size_mm: Annotated[list[_Positive], Field(min_length=1, max_length=3)] | None = None
    suv_max: _Positive | None = None
    recist: Literal["CR", "PR", "SD", "PD"] | None = None
    percist: Literal["CMR", "PMR", "SMD", "PMD"] | None = None
    reported: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _says_something(self) -> ResponseObservation:
        if all(
            v is None
            for v in (self.size_mm, self.suv_max, self.recist, self.percist, self.reported)
        ):
            raise ValueError(
                f"response on {self.date}: give at least one of size_mm, suv_max, recist, "
                "percist or reported (the finding in the source's words)"
            )
        return self


class ToxicityObservation(_Model):
    """An adverse event (or its documented absence) attributed to an organ.

    Attributes
    ----------
    date
        When it was observed (or first observed).
    term
        CTCAE v5.0 term.
    grade
        CTCAE grade 1-5; 0 when looked for and absent; None when the source gives no grade.
    structure
        The declared structure (organ) it is attributed to, so the report can show it
        beside that organ's cumulative dose.
    attribution
        Relation to radiotherapy.
    onset
        acute or late, as the source states it.
    """

    date: dt.date
    term: str = Field(min_length=2)
    grade: Annotated[StrictInt, Field(ge=0, le=5)] | None = None
    structure: str | None = None
    attribution: Literal["unrelated", "unlikely", "possible", "probable", "definite"] | None = None
    onset: Literal["acute", "late"] | None = None
    note: str | None = None


class FollowUp(_Model):
    """Everything observed after (and between) the courses."""

    response: list[ResponseObservation] = Field(default_factory=list)
    toxicity: list[ToxicityObservation] = Field(default_factory=list)

    def toxicities_of(self, structure: str) -> list[ToxicityObservation]:
        """Observations attributed to ``structure``, oldest first."""
        return sorted((t for t in self.toxicity if t.structure == structure), key=lambda t: t.date)

    def dates(self) -> list[dt.date]:
        return [o.date for o in self.response] + [t.date for t in self.toxicity]
