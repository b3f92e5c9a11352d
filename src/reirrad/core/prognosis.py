"""Prognosis and staging for recurrent nasopharyngeal carcinoma (pure).

Li et al. 2018 prognostic index
-------------------------------
Li YQ, Tian YM, Tan SH, et al. Prognostic Model for Stratification of Radioresistant
Nasopharynx Carcinoma to Curative Salvage Radiotherapy. J Clin Oncol. 2018;36(9):891-899
(PMID 29412781).  The abstract gives the hazard ratios for overall survival of the five
covariates of the primary prognostic index (PI) and a fixed PI cut-off of 252 from the
training data separating low- and high-risk patients:

==============================================  ===============
covariate                                       hazard ratio
==============================================  ===============
gross tumour volume at recurrence (rGTV)        1.01 per mL
age at recurrence                               1.02 per year
repeat IMRT EQD2 >= 68 Gy                       1.42
prior radiotherapy-induced grade >= 3 toxicity  1.90
recurrent T category rT3-4                      1.96
==============================================  ===============

reirrad reconstructs the index as ``PI = 100 * sum(ln(HR_i) * x_i)`` (a Cox linear
predictor scaled by 100).  With the hazard ratios rounded as published this reproduces the
224.8 the case report (Marinova et al. 2026) gives for its patient (age 66, rGTV 27 mL,
rT3-4, no prior grade >= 3 toxicity, re-irradiation EQD2 < 68 Gy): 224.86.  All covariates
are adverse, so a higher index means worse survival; the abstract does not say on which
side of the cut-off a PI of exactly 252 falls, and reirrad classes ``PI >= 252`` as high
risk (the conservative choice).  The alpha/beta used for the re-irradiation EQD2 in the
paper could not be verified (the abstract does not state it); give the EQD2 as the paper's
users do for the tumour (commonly alpha/beta 10 Gy) and say so in the report.

AJCC/UICC 9th version stage groups for nasopharyngeal carcinoma
---------------------------------------------------------------
Pan JJ, Mai HQ, Ng WT, et al. Ninth Version of the AJCC and UICC Nasopharyngeal Cancer
TNM Staging Classification. JAMA Oncol. 2024;10(12):1627-1635.
doi:10.1001/jamaoncol.2024.4354.  Stage groups (M0 unless stated):

=============  ===========================
stage          T / N / M
=============  ===========================
IA             T1-2 N0
IB             T1-2 N1
II             T1-2 N2; T3 N0-2
III            T4 any N; any T N3
IVA            any T, any N, M1a
IVB            any T, any N, M1b
=============  ===========================

M1a is <= 3 metastatic lesions, M1b > 3 lesions (a 9th-version subdivision).  Evidence:
the grouping table of the paper itself (its Table 2 / Figure 1) could not be read through
the search tool; the table above was taken from an open-source staging application that
cites the paper (github.com/ohmstead/tnm, ``data/sites/nasopharynx.js``) and is consistent
with the case report (cT4 cN1 M0 -> stage III by the 9th version).  T0, Tis, TX, NX and MX
are not in that verified table and are rejected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from reirrad.core.case import Case
from reirrad.core.radiobiology import eqd2
from reirrad.errors import InputError

__all__ = [
    "LI2018_ALPHA_BETA_GY",
    "case_prognosis",
    "AJCC9_NPC_CITATION",
    "LI2018_CITATION",
    "LI2018_CUTOFF",
    "LI2018_HAZARD_RATIOS",
    "Li2018Result",
    "li2018_index",
    "normalize_rt_category",
    "stage_group_ajcc9_npc",
]

LI2018_CITATION = (
    "Li YQ, Tian YM, Tan SH, et al. Prognostic Model for Stratification of Radioresistant "
    "Nasopharynx Carcinoma to Curative Salvage Radiotherapy. J Clin Oncol. 2018;36(9):891-899."
)
AJCC9_NPC_CITATION = (
    "Pan JJ, Mai HQ, Ng WT, et al. Ninth Version of the AJCC and UICC Nasopharyngeal Cancer "
    "TNM Staging Classification. JAMA Oncol. 2024;10(12):1627-1635."
)

#: Hazard ratios for overall survival from the abstract of Li et al. 2018.
LI2018_HAZARD_RATIOS: Mapping[str, float] = MappingProxyType(
    {
        "rgtv_ml": 1.01,  # per mL
        "age_years": 1.02,  # per year, age at recurrence
        "reirradiation_eqd2_ge_68gy": 1.42,
        "prior_grade3_toxicity": 1.90,
        "rt3_4": 1.96,
    }
)
#: Fixed PI cut-off of Li et al. 2018 (index >= cut-off: high risk in reirrad).
LI2018_CUTOFF = 252.0
#: Re-irradiation EQD2 threshold of the binary covariate (Gy).
LI2018_EQD2_THRESHOLD_GY = 68.0

_NOTE = (
    "Reconstructed from the hazard ratios published in the abstract of Li et al. 2018 "
    "(index = 100 x sum of ln(HR) x covariate); the paper's own nomogram coefficients may "
    "differ slightly, so scores near the cut-off of 252 should be read with caution. "
    "Index >= 252 is classed high risk (the abstract does not state the side of the "
    "cut-off value itself)."
)

_RT_PATTERN = re.compile(r"^r?t([1-4])(?:-([1-4]))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Li2018Result:
    """Li et al. 2018 prognostic index for salvage re-irradiation of recurrent NPC.

    Attributes
    ----------
    index
        The prognostic index (higher = worse overall survival).
    group
        ``"low"`` or ``"high"`` risk (``index >= cutoff`` is high).
    covariates
        The covariate values used (``x_i``), by name as in :data:`LI2018_HAZARD_RATIOS`.
    note
        How the index was computed and its caveats.
    terms
        Each covariate's contribution ``100 * ln(HR_i) * x_i``.
    cutoff
        The cut-off used (252).
    assumptions
        Assumptions made for missing inputs (e.g. re-irradiation EQD2 not given).
    citation
        The source.
    """

    index: float
    group: Literal["low", "high"]
    covariates: Mapping[str, float]
    note: str
    terms: Mapping[str, float] = field(default_factory=dict)
    cutoff: float = LI2018_CUTOFF
    assumptions: tuple[str, ...] = ()
    citation: str = LI2018_CITATION


def normalize_rt_category(rt_category: str) -> str:
    """Normalise a recurrent T category to ``"rT1-2"`` or ``"rT3-4"``.

    Accepts ``rT1``..``rT4`` (``r`` optional, any case) and the groups ``rT1-2`` and
    ``rT3-4``; anything else (including groups straddling the two, like ``rT2-3``) is an
    :class:`InputError`.
    """
    text = str(rt_category).strip().replace(" ", "")
    match = _RT_PATTERN.match(text)
    if match:
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if (low, high) in ((1, 1), (2, 2), (1, 2)):
            return "rT1-2"
        if (low, high) in ((3, 3), (4, 4), (3, 4)):
            return "rT3-4"
    raise InputError(
        f"rT category {rt_category!r} not understood; use rT1, rT2, rT3, rT4, rT1-2 or rT3-4"
    )


def _non_negative(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InputError(f"{name} must be a finite number >= 0, not {value!r}")
    return number


def _index(covariates: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    terms = {
        name: 100.0 * math.log(LI2018_HAZARD_RATIOS[name]) * value
        for name, value in covariates.items()
    }
    return sum(terms.values()), terms


def li2018_index(
    rgtv_ml: float,
    age_years: float,
    reirradiation_eqd2_gy: float | None,
    prior_grade3_toxicity: bool,
    rt_category: str,
) -> Li2018Result:
    """Li et al. 2018 prognostic index for curative salvage re-irradiation of NPC.

    Parameters
    ----------
    rgtv_ml
        Gross tumour volume of the recurrence (mL).
    age_years
        Age at recurrence (years).
    reirradiation_eqd2_gy
        EQD2 of the (planned) re-irradiation (Gy); only whether it is >= 68 Gy matters.
        ``None`` if not known: the index is then computed for < 68 Gy and the result
        records that assumption and the index for >= 68 Gy.
    prior_grade3_toxicity
        Prior radiotherapy-induced grade >= 3 toxicity.
    rt_category
        Recurrent T category, ``rT1``..``rT4`` or ``rT1-2`` / ``rT3-4``.

    Returns
    -------
    Li2018Result

    Examples
    --------
    The case report's patient (Marinova et al. 2026) scores 224.86, low risk:

    >>> round(li2018_index(27, 66, 29.6, False, "rT3-4").index, 2)
    224.86
    """
    rgtv = _non_negative("rGTV (mL)", rgtv_ml)
    age = _non_negative("age (years)", age_years)
    rt_group = normalize_rt_category(rt_category)
    assumptions: list[str] = []
    if reirradiation_eqd2_gy is None:
        eqd2_high = 0.0
    else:
        eqd2 = _non_negative("re-irradiation EQD2 (Gy)", reirradiation_eqd2_gy)
        eqd2_high = 1.0 if eqd2 >= LI2018_EQD2_THRESHOLD_GY else 0.0
    covariates = {
        "rgtv_ml": rgtv,
        "age_years": age,
        "reirradiation_eqd2_ge_68gy": eqd2_high,
        "prior_grade3_toxicity": 1.0 if prior_grade3_toxicity else 0.0,
        "rt3_4": 1.0 if rt_group == "rT3-4" else 0.0,
    }
    index, terms = _index(covariates)
    if reirradiation_eqd2_gy is None:
        alternative = index + 100.0 * math.log(LI2018_HAZARD_RATIOS["reirradiation_eqd2_ge_68gy"])
        alt_group = "high" if alternative >= LI2018_CUTOFF else "low"
        assumptions.append(
            "re-irradiation EQD2 not given: assumed < 68 Gy; with >= 68 Gy the index would be "
            f"{alternative:.1f} ({alt_group} risk)"
        )
    group: Literal["low", "high"] = "high" if index >= LI2018_CUTOFF else "low"
    return Li2018Result(
        index=index,
        group=group,
        covariates=MappingProxyType(covariates),
        note=_NOTE,
        terms=MappingProxyType(terms),
        assumptions=tuple(assumptions),
    )


# --- AJCC/UICC 9th version, nasopharynx -------------------------------------------------

_T_VALUES = ("T1", "T2", "T3", "T4")
_N_VALUES = ("N0", "N1", "N2", "N3")
_M_VALUES = ("M0", "M1a", "M1b")


def _category(value: str, prefix: str, allowed: tuple[str, ...], option: str) -> str:
    text = str(value).strip().replace(" ", "")
    # Accept the clinical/pathological/recurrence prefixes c, p, r (e.g. cT4, cN1).
    if len(text) > 1 and text[0].lower() in "cpr" and text[1].upper() == prefix:
        text = text[1:]
    normalized = text[:1].upper() + text[1:].lower() if text else text
    if normalized in allowed:
        return normalized
    if prefix == "M" and normalized == "M1":
        raise InputError(
            "M1 must be subclassified in the 9th version: M1a (<= 3 metastatic lesions) or "
            "M1b (> 3 lesions)",
            source=option,
        )
    raise InputError(
        f"{value!r} is not a {prefix} category of the verified 9th-version NPC grouping "
        f"table; use one of {', '.join(allowed)}",
        source=option,
    )


def stage_group_ajcc9_npc(t: str, n: str, m: str) -> str:
    """AJCC/UICC 9th version stage group of nasopharyngeal carcinoma (Pan et al. 2024).

    Parameters
    ----------
    t, n, m
        ``T1``-``T4``, ``N0``-``N3``, ``M0``/``M1a``/``M1b`` (case-insensitive; a leading
        ``c``, ``p`` or ``r`` is accepted, e.g. ``cT4``).

    Returns
    -------
    str
        ``"IA"``, ``"IB"``, ``"II"``, ``"III"``, ``"IVA"`` or ``"IVB"``.

    Examples
    --------
    >>> stage_group_ajcc9_npc("T4", "N1", "M0")
    'III'
    """
    t_cat = _category(t, "T", _T_VALUES, "--t")
    n_cat = _category(n, "N", _N_VALUES, "--n")
    m_cat = _category(m, "M", _M_VALUES, "--m")
    if m_cat == "M1a":
        return "IVA"
    if m_cat == "M1b":
        return "IVB"
    if t_cat == "T4" or n_cat == "N3":
        return "III"
    if t_cat == "T3" or n_cat == "N2":
        return "II"
    if n_cat == "N1":
        return "IB"
    return "IA"


#: alpha/beta for the re-irradiation EQD2 of the Li et al. 2018 index.  The abstract does not
#: state it; 10 Gy (the usual tumour value) is an assumption, reported with the result.  Only
#: whether the EQD2 reaches 68 Gy enters the index.
LI2018_ALPHA_BETA_GY = 10.0


def case_prognosis(
    case: Case, *, recurrence_volume: tuple[float, str] | None = None
) -> dict[str, object]:
    """Li 2018 index and AJCC 9 stage where the case holds their inputs.

    Missing inputs are reported under ``missing`` rather than guessed.
    ``recurrence_volume`` is ``(ml, how it was measured)`` when the volume comes from
    elsewhere than ``recurrence.volume_ml`` (a PET threshold volume).
    """
    out: dict[str, object] = {}
    stage = case.diagnosis.stage if case.diagnosis else None
    if stage is not None and case.diagnosis.site.lower() == "nasopharynx":
        if stage.edition in ("AJCC9", "UICC9"):
            out["stage"] = {
                "edition": stage.edition,
                "tnm": f"{stage.t} {stage.n} {stage.m}",
                "group": stage_group_ajcc9_npc(stage.t, stage.n, stage.m),
                "source": "Pan JJ et al., JAMA Oncol 2024;10(12):1627-1635",
            }
        else:
            out["stage"] = {
                "edition": stage.edition,
                "tnm": f"{stage.t} {stage.n} {stage.m}",
                "group": None,
                "note": "stage grouping is implemented for AJCC/UICC 9th edition only",
            }
    recurrence = case.recurrence
    if recurrence is not None:
        volume = recurrence_volume[0] if recurrence_volume else recurrence.volume_ml
        needed = {
            "recurrence.volume_ml": volume,
            "recurrence.age_years": recurrence.age_years,
            "recurrence.rt_category": recurrence.rt_category,
            "recurrence.prior_grade3_toxicity": recurrence.prior_grade3_toxicity,
        }
        missing = [key for key, value in needed.items() if value is None]
        newest = case.courses[-1]
        if missing:
            out["li2018"] = {"missing": missing}
        else:
            try:
                rx = newest.primary_prescription()
            except InputError:
                out["li2018"] = {"missing": [f"courses[{newest.id}].prescriptions"]}
                return out
            reirradiation_eqd2 = float(eqd2(rx.dose_gy, rx.fractions, LI2018_ALPHA_BETA_GY))
            result = li2018_index(
                rgtv_ml=volume,
                age_years=recurrence.age_years,
                reirradiation_eqd2_gy=reirradiation_eqd2,
                prior_grade3_toxicity=recurrence.prior_grade3_toxicity,
                rt_category=recurrence.rt_category,
            )
            out["li2018"] = result
            if recurrence_volume is not None:
                out["li2018_volume"] = {"volume_ml": volume, "source": recurrence_volume[1]}
            out["li2018_reirradiation_eqd2"] = {
                "eqd2_gy": reirradiation_eqd2,
                "alpha_beta_gy": LI2018_ALPHA_BETA_GY,
                "prescription": f"{rx.dose_gy:g} Gy in {rx.fractions} fractions ({newest.id})",
                "note": "alpha/beta 10 Gy assumed (not stated in the Li 2018 abstract); "
                "only EQD2 >= 68 Gy or not enters the index",
            }
    return out
