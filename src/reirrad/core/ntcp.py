"""NTCP and TCP models on (cumulative EQD2) dose distributions.

Inputs are plain arrays so that nothing here depends on a DVH engine's classes:

* a **differential DVH**: dose bin centres (Gy) and the volume in each bin (cc or
  fractions; only ratios matter, the volumes are normalised to their sum), or
* a **voxel array** of doses with optional per-voxel weights (voxel volumes); each voxel
  is then its own bin, which is exact (no binning error).

All dose-based models take the dose *as given*; for re-irradiation that is meant to be the
cumulative EQD2 (Gy) per voxel/bin after any recovery discount.

Models and formulas
-------------------
gEUD (generalised equivalent uniform dose), Niemierko A, "A generalized concept of
equivalent uniform dose (EUD)", Med Phys 1999;26:1100 (abstract), with a = 1/n::

    gEUD = ( sum_i v_i D_i^(1/n) )^n ,     v_i = V_i / sum V

n = 1 gives the mean dose; n -> 0 tends to the maximum dose.

LKB (probit): Lyman JT, "Complication probability as assessed from dose-volume
histograms", Radiat Res Suppl 1985;8:S13-S19; DVH reduction by the effective-volume method
of Kutcher GJ, Burman C, Int J Radiat Oncol Biol Phys 1989;16:1623-1630::

    NTCP = Phi(t),   t = (gEUD - TD50) / (m TD50)

The Kutcher-Burman effective volume V_eff = sum v_i (D_i/D_max)^(1/n) with
TD50(V_eff) = TD50 V_eff^(-n) gives t = (D_max - TD50(V_eff)) / (m TD50(V_eff)); multiplying
numerator and denominator by V_eff^n shows D_max V_eff^n = gEUD, i.e. the two forms are
algebraically identical.  Partial-volume scaling: a uniform dose to a fraction v (rest
unirradiated) gives gEUD = v^n D, i.e. TD50(v) = TD50(1) v^(-n).

Logit (log-logistic), the form of Gay HA, Niemierko A, "A free program for calculating
EUD-based NTCP and TCP in external beam radiotherapy", Phys Med 2007;23(3-4):115-125::

    NTCP = 1 / (1 + (TD50 / gEUD)^(4 gamma50))

gamma50 is the normalised slope at the 50 % point (dNTCP/dD * D at D = TD50).

Relative seriality: Kallman P, Agren A, Brahme A, "Tumour and normal tissue responses to
fractionated non-uniform dose delivery", Int J Radiat Biol 1992;62(2):249-262::

    P(D) = 2^( -exp( e gamma (1 - D/D50) ) )
    NTCP = ( 1 - prod_i (1 - P(D_i)^s)^(v_i) )^(1/s)

Poisson-LQ TCP (single alpha; the fixed-alpha special case of Webb S, Nahum AE, "A model
for calculating tumour control probability in radiotherapy including the effects of
inhomogeneous distributions of dose and clonogenic cell density", Phys Med Biol
1993;38:653-666, which additionally averages over a population spread of alpha).  With LQ
survival after a fractionated dose S = exp(-alpha BED) and BED = EQD2 (1 + 2/(alpha/beta))
(Fowler 1989; see :mod:`reirrad.core.radiobiology`)::

    TCP = prod_i exp( -N0 v_i exp(-alpha BED_i) ) = exp( -N0 sum_i v_i exp(-alpha BED_i) )

N0 is the total number of clonogens in the structure, distributed in proportion to volume
(uniform clonogen density).  No repopulation term (add it to the EQD2 beforehand if wanted).

Assumption (stated on every NTCP result): LKB/logit parameters fitted to physical dose
delivered at about 2 Gy per fraction are applied to EQD2, i.e. the fitted dose axis is
taken to be EQD2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from reirrad.errors import InputError

if TYPE_CHECKING:  # typing only: keeps ``import reirrad.core.ntcp`` free of the voxel types
    from reirrad.core.voxel import VoxelAssessment

__all__ = [
    "EQD2_ASSUMPTION",
    "NTCPParameterSet",
    "NTCPResult",
    "StructureNTCP",
    "TCPResult",
    "cumulative_to_differential",
    "geud",
    "lkb_ntcp",
    "logit_ntcp",
    "ntcp_from_parameter_set",
    "organ_matches",
    "parameters_text",
    "poisson_tcp",
    "relative_seriality_ntcp",
    "structure_ntcp",
]

FloatArray = NDArray[np.float64]

EQD2_ASSUMPTION = (
    "Model parameters fitted to physical dose at about 2 Gy per fraction are applied to "
    "EQD2 (Gy): the fitted dose axis is assumed to be EQD2."
)

LYMAN_1985 = "Lyman JT, Radiat Res Suppl 1985;8:S13-S19"
KUTCHER_BURMAN_1989 = "Kutcher GJ, Burman C, Int J Radiat Oncol Biol Phys 1989;16:1623-1630"
NIEMIERKO_1999 = "Niemierko A, Med Phys 1999;26:1100 (gEUD, abstract)"
GAY_NIEMIERKO_2007 = "Gay HA, Niemierko A, Phys Med 2007;23(3-4):115-125"
KALLMAN_1992 = "Kallman P, Agren A, Brahme A, Int J Radiat Biol 1992;62(2):249-262"
WEBB_NAHUM_1993 = "Webb S, Nahum AE, Phys Med Biol 1993;38:653-666 (fixed-alpha case)"


@dataclass(frozen=True)
class NTCPParameterSet:
    """A published parameter set for one model, organ and end point (data, not code).

    Attributes
    ----------
    key
        Identifier used in the data file, e.g. ``"temporal_lobe_reirradiation_npc_lkb"``.
    model
        ``"lkb"``, ``"logit"`` or ``"relative_seriality"``.
    organ, endpoint
        What the parameters describe.
    parameters
        Model parameters: ``td50_gy, m, n`` (lkb); ``td50_gy, gamma50, n`` (logit);
        ``d50_gy, gamma, s`` (relative_seriality).
    citation
        The source of the numbers.
    evidence
        How the numbers were checked and how strong they are.
    alpha_beta_gy
        alpha/beta the fit used or that the source recommends for EQD2, if stated.
    dose_quantity
        What dose the fit used, as far as known (e.g. "cumulative EQD2").
    """

    key: str
    model: str
    organ: str
    endpoint: str
    parameters: Mapping[str, float]
    citation: str
    evidence: str
    alpha_beta_gy: float | None = None
    dose_quantity: str = ""

    def __post_init__(self) -> None:
        required = _REQUIRED.get(self.model)
        if required is None:
            raise InputError(
                f"unknown NTCP model {self.model!r}; use one of {sorted(_REQUIRED)}",
                field=f"{self.key}.model",
            )
        missing = [name for name in required if name not in self.parameters]
        if missing:
            raise InputError(
                f"model {self.model!r} needs parameters {missing}", field=f"{self.key}.parameters"
            )


_REQUIRED = {
    "lkb": ("td50_gy", "m", "n"),
    "logit": ("td50_gy", "gamma50", "n"),
    "relative_seriality": ("d50_gy", "gamma", "s"),
}


@dataclass(frozen=True)
class NTCPResult:
    """Normal tissue complication probability of one dose distribution.

    Attributes
    ----------
    probability
        NTCP in [0, 1].
    model
        ``"lkb"``, ``"logit"`` or ``"relative_seriality"``.
    parameters
        The parameters used.
    geud_gy
        gEUD (Gy) for the gEUD-based models, else ``None``.
    citation
        Model formula source(s) and, when a parameter set was used, its source.
    evidence
        Evidence text of the parameter set, if any.
    assumptions
        Assumptions behind the number (always includes :data:`EQD2_ASSUMPTION`).
    """

    probability: float
    model: str
    parameters: Mapping[str, float]
    geud_gy: float | None
    citation: str
    evidence: str = ""
    assumptions: tuple[str, ...] = field(default=(EQD2_ASSUMPTION,))


@dataclass(frozen=True)
class TCPResult:
    """Poisson-LQ tumour control probability of one dose distribution."""

    probability: float
    parameters: Mapping[str, float]
    citation: str
    assumptions: tuple[str, ...]


def _dose_volume(doses: ArrayLike, volumes: ArrayLike | None) -> tuple[FloatArray, FloatArray]:
    """Flatten doses and return (doses, volume fractions summing to 1)."""
    d = np.asarray(doses, dtype=float).ravel()
    if d.size == 0:
        raise InputError("the dose distribution is empty", field="doses")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise InputError("doses must be finite and >= 0 Gy", field="doses")
    if volumes is None:
        v = np.full(d.shape, 1.0 / d.size)
        return d, v
    v = np.asarray(volumes, dtype=float).ravel()
    if v.shape != d.shape:
        raise InputError(
            f"{v.size} volumes for {d.size} doses; give one volume per dose bin or voxel",
            field="volumes",
        )
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise InputError("volumes must be finite and >= 0", field="volumes")
    total = v.sum()
    if not total > 0:
        raise InputError("the volumes sum to zero", field="volumes")
    return d, v / total


def cumulative_to_differential(
    dose_gy: ArrayLike, cumulative_volume: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Differential DVH (bin centres, bin volumes) from a cumulative DVH.

    Parameters
    ----------
    dose_gy
        Increasing dose levels D_0 < D_1 < ... (Gy).
    cumulative_volume
        Volume receiving at least D_k (cc or %), non-increasing.

    Returns
    -------
    centres, volumes
        Bin centres (D_k + D_{k+1})/2 and the volume between consecutive levels; the volume
        at or above the last level is put at the last level.
    """
    d = np.asarray(dose_gy, dtype=float).ravel()
    c = np.asarray(cumulative_volume, dtype=float).ravel()
    if d.shape != c.shape or d.size < 2:
        raise InputError("need matching dose and volume arrays of length >= 2", field="dvh")
    if np.any(np.diff(d) <= 0):
        raise InputError("cumulative DVH doses must increase strictly", field="dvh.dose")
    if np.any(np.diff(c) > 1e-9 * max(1.0, float(np.abs(c).max()))):
        raise InputError("cumulative DVH volumes must not increase with dose", field="dvh.volume")
    centres = np.append(0.5 * (d[:-1] + d[1:]), d[-1])
    volumes = np.append(c[:-1] - c[1:], c[-1])
    return centres, np.clip(volumes, 0.0, None)


def geud(doses: ArrayLike, volumes: ArrayLike | None = None, *, n: float) -> float:
    """Generalised EUD (Gy): ``(sum_i v_i D_i^(1/n))^n`` (Niemierko 1999, a = 1/n).

    Parameters
    ----------
    doses
        Bin-centre doses or voxel doses (Gy).
    volumes
        Bin volumes or voxel weights (any unit); ``None`` means equal weights.
    n
        Volume-effect parameter (> 0); 1 gives the mean dose, small n approaches the maximum.
    """
    if not (np.isfinite(n) and n > 0):
        raise InputError("gEUD volume parameter n must be > 0", field="n")
    d, v = _dose_volume(doses, volumes)
    top = d[v > 0].max() if np.any(v > 0) else 0.0
    if top == 0:
        return 0.0
    # Scale by the maximum so that D^(1/n) cannot overflow for small n (n = 0.04 -> power 25).
    scaled = np.sum(v * (d / top) ** (1.0 / n))
    return float(top * scaled**n)


def _lkb_params(td50_gy: float, m: float, n: float) -> None:
    if not (td50_gy > 0 and m > 0 and n > 0):
        raise InputError("LKB needs TD50 > 0 Gy, m > 0 and n > 0", field="parameters")


def lkb_ntcp(
    doses: ArrayLike,
    volumes: ArrayLike | None = None,
    *,
    td50_gy: float,
    m: float,
    n: float,
    citation: str = "",
    evidence: str = "",
) -> NTCPResult:
    """LKB probit NTCP: ``Phi((gEUD - TD50) / (m TD50))`` (Lyman 1985; Kutcher & Burman 1989).

    Parameters
    ----------
    doses, volumes
        Differential DVH (bin centres in Gy, bin volumes) or voxel doses with weights.
    td50_gy, m, n
        Whole-organ TD50 (Gy), slope parameter m, volume parameter n.
    citation, evidence
        Source of the parameters (copied to the result).
    """
    _lkb_params(td50_gy, m, n)
    eud = geud(doses, volumes, n=n)
    t = (eud - td50_gy) / (m * td50_gy)
    source = f"{LYMAN_1985}; {KUTCHER_BURMAN_1989}; gEUD form {NIEMIERKO_1999}"
    return NTCPResult(
        probability=float(ndtr(t)),
        model="lkb",
        parameters={"td50_gy": td50_gy, "m": m, "n": n},
        geud_gy=eud,
        citation=f"{source}; parameters: {citation}" if citation else source,
        evidence=evidence,
    )


def logit_ntcp(
    doses: ArrayLike,
    volumes: ArrayLike | None = None,
    *,
    td50_gy: float,
    gamma50: float,
    n: float,
    citation: str = "",
    evidence: str = "",
) -> NTCPResult:
    """Logit NTCP ``1 / (1 + (TD50/gEUD)^(4 gamma50))`` (Gay & Niemierko 2007).

    Parameters as :func:`lkb_ntcp`, with the normalised slope ``gamma50`` instead of m.
    """
    if not (td50_gy > 0 and gamma50 > 0 and n > 0):
        raise InputError("logit needs TD50 > 0 Gy, gamma50 > 0 and n > 0", field="parameters")
    eud = geud(doses, volumes, n=n)
    # 1/(1+(TD50/EUD)^k) written with exp/log so that EUD = 0 gives exactly 0.
    if eud == 0:
        p = 0.0
    else:
        p = float(1.0 / (1.0 + np.exp(4.0 * gamma50 * np.log(td50_gy / eud))))
    source = f"{GAY_NIEMIERKO_2007}; gEUD {NIEMIERKO_1999}"
    return NTCPResult(
        probability=p,
        model="logit",
        parameters={"td50_gy": td50_gy, "gamma50": gamma50, "n": n},
        geud_gy=eud,
        citation=f"{source}; parameters: {citation}" if citation else source,
        evidence=evidence,
    )


def relative_seriality_ntcp(
    doses: ArrayLike,
    volumes: ArrayLike | None = None,
    *,
    d50_gy: float,
    gamma: float,
    s: float,
    citation: str = "",
    evidence: str = "",
) -> NTCPResult:
    """Relative seriality NTCP (Kallman et al. 1992).

    ``P(D) = 2^(-exp(e gamma (1 - D/D50)))`` per bin and
    ``NTCP = (1 - prod_i (1 - P(D_i)^s)^(v_i))^(1/s)``.

    Parameters
    ----------
    d50_gy, gamma, s
        Dose for 50 % response of the whole organ, maximum normalised slope, relative
        seriality (s -> 0 parallel, s = 1 serial).
    """
    if not (d50_gy > 0 and gamma > 0 and s > 0):
        raise InputError("relative seriality needs D50 > 0 Gy, gamma > 0 and s > 0")
    d, v = _dose_volume(doses, volumes)
    p = np.exp2(-np.exp(np.e * gamma * (1.0 - d / d50_gy)))
    # prod (1 - P^s)^v computed as exp(sum v log1p(-P^s)) for accuracy when P^s is tiny.
    with np.errstate(divide="ignore"):
        log_survive = np.sum(v * np.log1p(-(p**s)))
    inner = -np.expm1(log_survive)
    ntcp = float(np.clip(inner, 0.0, 1.0) ** (1.0 / s))
    return NTCPResult(
        probability=ntcp,
        model="relative_seriality",
        parameters={"d50_gy": d50_gy, "gamma": gamma, "s": s},
        geud_gy=None,
        citation=f"{KALLMAN_1992}; parameters: {citation}" if citation else KALLMAN_1992,
        evidence=evidence,
    )


def poisson_tcp(
    eqd2_gy: ArrayLike,
    volumes: ArrayLike | None = None,
    *,
    alpha_per_gy: float,
    alpha_beta_gy: float,
    clonogens: float,
) -> TCPResult:
    """Poisson-LQ TCP ``exp(-N0 sum_i v_i exp(-alpha BED_i))`` on an EQD2 distribution.

    Parameters
    ----------
    eqd2_gy
        EQD2 (Gy) per bin/voxel at the tumour's alpha/beta.
    volumes
        Bin volumes or voxel weights (normalised to fractions of the tumour).
    alpha_per_gy
        LQ alpha (1/Gy).
    alpha_beta_gy
        alpha/beta (Gy) of the tumour, used for BED = EQD2 (1 + 2/(alpha/beta)).
    clonogens
        N0, total number of clonogens in the tumour (uniform density).
    """
    if not (alpha_per_gy > 0 and alpha_beta_gy > 0 and clonogens > 0):
        raise InputError("Poisson TCP needs alpha > 0, alpha/beta > 0 and N0 > 0")
    d, v = _dose_volume(eqd2_gy, volumes)
    bed = d * (1.0 + 2.0 / alpha_beta_gy)
    surviving = clonogens * np.sum(v * np.exp(-alpha_per_gy * bed))
    return TCPResult(
        probability=float(np.exp(-surviving)),
        parameters={"alpha_per_gy": alpha_per_gy, "alpha_beta_gy": alpha_beta_gy, "N0": clonogens},
        citation=f"{WEBB_NAHUM_1993}; LQ survival exp(-alpha BED), Fowler JF, Br J Radiol 1989",
        assumptions=(
            "Uniform clonogen density, a single alpha (no inter-patient spread), complete "
            "repair between fractions, no repopulation.",
        ),
    )


def ntcp_from_parameter_set(
    parameter_set: NTCPParameterSet, doses: ArrayLike, volumes: ArrayLike | None = None
) -> NTCPResult:
    """NTCP of a dose distribution with a published :class:`NTCPParameterSet`."""
    p = parameter_set.parameters
    common = {"citation": parameter_set.citation, "evidence": parameter_set.evidence}
    if parameter_set.model == "lkb":
        result = lkb_ntcp(doses, volumes, td50_gy=p["td50_gy"], m=p["m"], n=p["n"], **common)
    elif parameter_set.model == "logit":
        result = logit_ntcp(
            doses, volumes, td50_gy=p["td50_gy"], gamma50=p["gamma50"], n=p["n"], **common
        )
    else:
        result = relative_seriality_ntcp(
            doses, volumes, d50_gy=p["d50_gy"], gamma=p["gamma"], s=p["s"], **common
        )
    extra = []
    if parameter_set.dose_quantity:
        extra.append(f"Parameter fit dose quantity (per source): {parameter_set.dose_quantity}.")
    return NTCPResult(
        probability=result.probability,
        model=result.model,
        parameters=result.parameters,
        geud_gy=result.geud_gy,
        citation=result.citation,
        evidence=result.evidence,
        assumptions=result.assumptions + tuple(extra),
    )


# --------------------------------------------------------------------------------------
# NTCP of a voxel-wise assessment's cumulative DVHs
# --------------------------------------------------------------------------------------

#: The two cumulative EQD2 DVHs of a structure NTCP is given for: (variant, attribute).
_VARIANTS = (("with recovery", "dvh"), ("without recovery", "dvh_no_recovery"))

_PARAMETER_NAMES = {
    "lkb": (("td50_gy", "TD50", " Gy"), ("m", "m", ""), ("n", "n", "")),
    "logit": (("td50_gy", "TD50", " Gy"), ("gamma50", "gamma50", ""), ("n", "n", "")),
    "relative_seriality": (("d50_gy", "D50", " Gy"), ("gamma", "gamma", ""), ("s", "s", "")),
}


@dataclass(frozen=True)
class StructureNTCP:
    """NTCP of one structure's cumulative EQD2 DVH with one published parameter set.

    Attributes
    ----------
    structure
        Case structure name.
    parameter_set
        Key of the parameter set (e.g. ``"spinal_cord_burman1991_lkb"``).
    model
        ``"lkb"``, ``"logit"`` or ``"relative_seriality"``.
    endpoint
        The end point the parameters describe.
    parameters_text
        The parameters in words, e.g. ``"TD50 66.5 Gy, m 0.175, n 0.05"``.
    variant
        ``"with recovery"`` or ``"without recovery"`` (which cumulative DVH).
    geud_gy
        gEUD (Gy) of the DVH (``None`` for relative seriality).
    probability
        NTCP in [0, 1] (``None`` when the DVH holds no volume, see ``notes``).
    notes
        What the reader must know about this number (e.g. an alpha/beta mismatch).
    citation, evidence
        Source of the parameters and how strong they are (the parameter set's own text).
    assumptions
        The model's assumptions (:data:`EQD2_ASSUMPTION` and the fit's dose quantity).
    """

    structure: str
    parameter_set: str
    model: str
    endpoint: str
    parameters_text: str
    variant: str
    geud_gy: float | None
    probability: float | None
    notes: tuple[str, ...]
    citation: str
    evidence: str
    assumptions: tuple[str, ...] = (EQD2_ASSUMPTION,)


def organ_matches(parameter_organ: str, organ: str | None, name: str) -> bool:
    """Whether a parameter set's organ describes a structure (by its organ, else its name).

    Case-insensitive, underscores read as spaces; the parameter set's organ must equal the
    structure's organ or name, or start with it followed by a space (``"parotid gland"``
    matches organ ``parotid``).
    """
    target = parameter_organ.lower().strip()
    for text in (organ, name):
        if not text:
            continue
        key = text.lower().replace("_", " ").strip()
        if target == key or target.startswith(key + " "):
            return True
    return False


def parameters_text(parameter_set: NTCPParameterSet) -> str:
    """A parameter set's model parameters in words, e.g. ``"TD50 66.5 Gy, m 0.175, n 0.05"``."""
    p = parameter_set.parameters
    return ", ".join(
        f"{label} {p[key]:g}{unit}" for key, label, unit in _PARAMETER_NAMES[parameter_set.model]
    )


def _no_ntcp(
    name: str, pset: NTCPParameterSet, variant: str, notes: tuple[str, ...]
) -> StructureNTCP:
    return StructureNTCP(
        structure=name,
        parameter_set=pset.key,
        model=pset.model,
        endpoint=pset.endpoint,
        parameters_text=parameters_text(pset),
        variant=variant,
        geud_gy=None,
        probability=None,
        notes=(*notes, f"{name}: the DVH holds no volume inside the dose grid; no NTCP"),
        citation=pset.citation,
        evidence=pset.evidence,
    )


def structure_ntcp(
    voxel: VoxelAssessment, parameter_sets: Iterable[NTCPParameterSet]
) -> tuple[StructureNTCP, ...]:
    """NTCP of every structure of a voxel-wise assessment that a parameter set describes.

    For each structure (in the assessment's order) and each matching parameter set
    (:func:`organ_matches`; in the given order), NTCP of the cumulative EQD2 DVH with and
    without recovery (:attr:`VoxelStructure.dvh`, :attr:`VoxelStructure.dvh_no_recovery`,
    each at the structure's own alpha/beta), from the DVH's differential form (empty bins
    dropped) by :func:`ntcp_from_parameter_set`.

    Parameters
    ----------
    voxel
        A voxel-wise assessment (only ``structures`` is read).
    parameter_sets
        Published parameter sets (e.g. :func:`reirrad.io.ntcp_data.load_ntcp_parameter_sets`).

    Returns
    -------
    tuple of StructureNTCP
        Empty when no parameter set matches any structure.
    """
    sets = list(parameter_sets)
    out: list[StructureNTCP] = []
    for s in voxel.structures:
        for pset in sets:
            if not organ_matches(pset.organ, s.organ, s.name):
                continue
            notes: tuple[str, ...] = ()
            if pset.alpha_beta_gy is not None and abs(pset.alpha_beta_gy - s.alpha_beta) > 1e-9:
                notes = (
                    f"{s.name}: the EQD2 uses alpha/beta {s.alpha_beta:g} Gy; the parameter "
                    f"source states {pset.alpha_beta_gy:g} Gy",
                )
            for variant, attribute in _VARIANTS:
                centres, volumes = getattr(s, attribute).differential
                keep = volumes > 0
                if not keep.any():  # no dose-grid coverage: say so rather than raise
                    out.append(_no_ntcp(s.name, pset, variant, notes))
                    continue
                result = ntcp_from_parameter_set(pset, centres[keep], volumes[keep])
                out.append(
                    StructureNTCP(
                        structure=s.name,
                        parameter_set=pset.key,
                        model=pset.model,
                        endpoint=pset.endpoint,
                        parameters_text=parameters_text(pset),
                        variant=variant,
                        geud_gy=result.geud_gy,
                        probability=result.probability,
                        notes=notes,
                        citation=pset.citation,
                        evidence=pset.evidence,
                        assumptions=result.assumptions,
                    )
                )
    return tuple(out)
