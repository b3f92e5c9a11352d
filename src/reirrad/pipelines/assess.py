"""The public, file-aware entry points: what the CLI does, callable from a notebook.

These functions join the adapters (case files, constraint data, DICOM) to the pure core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from reirrad.core import radiobiology as rb
from reirrad.core.assessment import Assessment, assess
from reirrad.core.case import Case
from reirrad.errors import InputError
from reirrad.io.casefile import load_case
from reirrad.io.constraint_sets import load_constraints

__all__ = ["assess_case", "case_prognosis", "load_case", "load_constraints"]

#: alpha/beta for the re-irradiation EQD2 of the Li et al. 2018 index.  The abstract does not
#: state it; 10 Gy (the usual tumour value) is an assumption, reported with the result.  Only
#: whether the EQD2 reaches 68 Gy enters the index.
LI2018_ALPHA_BETA_GY = 10.0


def case_prognosis(case: Case) -> dict[str, object]:
    """Li 2018 index and AJCC 9 stage where the case holds their inputs.

    Missing inputs are reported under ``missing`` rather than guessed.
    """
    from reirrad.core import prognosis

    out: dict[str, object] = {}
    stage = case.diagnosis.stage if case.diagnosis else None
    if stage is not None and case.diagnosis.site.lower() == "nasopharynx":
        if stage.edition in ("AJCC9", "UICC9"):
            out["stage"] = {
                "edition": stage.edition,
                "tnm": f"{stage.t} {stage.n} {stage.m}",
                "group": prognosis.stage_group_ajcc9_npc(stage.t, stage.n, stage.m),
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
        needed = {
            "recurrence.volume_ml": recurrence.volume_ml,
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
            reirradiation_eqd2 = float(rb.eqd2(rx.dose_gy, rx.fractions, LI2018_ALPHA_BETA_GY))
            result = prognosis.li2018_index(
                rgtv_ml=recurrence.volume_ml,
                age_years=recurrence.age_years,
                reirradiation_eqd2_gy=reirradiation_eqd2,
                prior_grade3_toxicity=recurrence.prior_grade3_toxicity,
                rt_category=recurrence.rt_category,
            )
            out["li2018"] = result
            out["li2018_reirradiation_eqd2"] = {
                "eqd2_gy": reirradiation_eqd2,
                "alpha_beta_gy": LI2018_ALPHA_BETA_GY,
                "prescription": f"{rx.dose_gy:g} Gy in {rx.fractions} fractions ({newest.id})",
                "note": "alpha/beta 10 Gy assumed (not stated in the Li 2018 abstract); "
                "only EQD2 >= 68 Gy or not enters the index",
            }
    return out


def assess_case(
    case: Case | str | Path,
    *,
    methods: Mapping[str, str] | str | None = None,
    constraint_sets: Sequence[str] | None = None,
    lql: rb.LQL | None = None,
    repopulation: rb.Repopulation | None = None,
) -> Assessment:
    """Assess a case file (or a :class:`Case`) exactly as ``reirrad assess`` does.

    Parameters
    ----------
    case
        A path to a YAML case file, or a validated case.
    methods
        ``"structure"``, ``"prescription"`` or ``"none"`` for every course, or a mapping
        course id -> method; default: the case's ``analysis.method``.
    constraint_sets
        Extra constraint sets (packaged names or YAML paths) on top of the case's own.
    lql, repopulation
        Optional LQ-L model and tumour repopulation correction.
    """
    base = None
    if not isinstance(case, Case):
        base = Path(case).resolve().parent
        case = load_case(case)
    names = list(case.constraints.sets) + list(constraint_sets or [])
    sets = load_constraints(names, base=base)
    doses, notes = None, []
    if any(course.dicom is not None for course in case.courses):
        from reirrad.io.dicom_case import dicom_statistics

        doses, notes = dicom_statistics(case, base=base)
    result = assess(
        case,
        methods=methods,
        constraint_sets=sets,
        doses=doses,
        lql=lql,
        repopulation=repopulation,
        prognosis=case_prognosis(case),
        extra_assumptions=notes,
    )
    if all(course.dicom is not None for course in case.courses):
        # every course has its dose grid: the voxel-wise path (reirrad.pipelines.accumulate) is the
        # exact answer; the structure-level rows stay as the comparison
        import dataclasses

        from reirrad.pipelines.accumulate import accumulate_case

        voxel = accumulate_case(case, constraint_sets=constraint_sets, base=base)
        extra = ()
        if lql is not None or repopulation is not None:
            extra = (
                "the voxel-wise accumulation uses the linear-quadratic model without LQ-L or "
                "repopulation corrections; those options apply to the structure-level rows only",
            )
        result = dataclasses.replace(result, voxel=voxel, warnings=result.warnings + extra)
    return result
