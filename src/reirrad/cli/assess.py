"""``reirrad assess`` and the ``reirrad lq`` calculator."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from reirrad.cli.app import app, check_number
from reirrad.core import radiobiology as rb
from reirrad.core.case import (
    MAX_DOSE_GY,
    MAX_DOSE_PER_FRACTION_GY,
    MAX_FRACTIONS,
    MAX_FRACTIONS_PER_DAY,
    METHODS,
)
from reirrad.errors import InputError
from reirrad.pipelines.assess import assess_case
from reirrad.present import render


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def parse_method_options(values: list[str] | None) -> str | dict[str, str] | None:
    """``["none"]`` -> ``"none"``; ``["C1=none", "C2=prescription"]`` -> a mapping."""
    if not values:
        return None
    whole = [v.strip() for v in values if "=" not in v]
    per_course: dict[str, str] = {}
    for value in values:
        if "=" not in value:
            continue
        course, method = (part.strip() for part in value.split("=", 1))
        if not course:
            raise InputError(f"{value!r}: give COURSE=METHOD with a course id", source="--method")
        if course in per_course and per_course[course] != method:
            raise InputError(
                f"course {course!r} given twice ({per_course[course]} and {method}); give "
                "one method per course",
                source="--method",
            )
        per_course[course] = method
    if len(set(whole)) > 1 or (whole and per_course):
        raise InputError(
            "give --method once for all courses (e.g. --method none) or per course "
            "(--method C1=none --method C2=prescription), not both",
            source="--method",
        )
    for method in [*whole, *per_course.values()]:
        if method not in METHODS:
            raise InputError(
                f"unknown method {method!r}; use one of {', '.join(METHODS)}", source="--method"
            )
    return whole[0] if whole else per_course


@app.command()
def assess(
    case: Annotated[Path, typer.Argument(help="YAML case file (see docs/case-format.md)")],
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="structure | prescription | none, for all courses, or COURSE=METHOD (repeatable)",
        ),
    ] = None,
    constraints: Annotated[
        list[str] | None,
        typer.Option("--constraints", help="extra constraint set (name or YAML path), repeatable"),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="output format")] = Format.table,
    lql_transition: Annotated[
        float | None,
        typer.Option("--lql-dt", help="use the LQ-L model above this dose per fraction (Gy)"),
    ] = None,
    repopulation: Annotated[
        bool,
        typer.Option(
            "--repopulation", help="correct targets for repopulation (Pedicini 2015 H&N values)"
        ),
    ] = False,
) -> None:
    """Cumulative EQD2/BED per structure and course, with recovery, limits and prognosis."""
    check_lql(lql_transition)
    result = assess_case(
        case,
        methods=parse_method_options(method),
        constraint_sets=constraints,
        lql=rb.LQL(lql_transition) if lql_transition is not None else None,
        repopulation=rb.PEDICINI_2015_HEAD_NECK if repopulation else None,
    )
    if output_format is Format.json:
        typer.echo(json.dumps(render.assessment_to_dict(result), indent=2))
    elif output_format is Format.csv:
        typer.echo(render.to_csv(result), nl=False)
    elif output_format is Format.markdown:
        typer.echo(render.to_markdown(result), nl=False)
    else:
        typer.echo(render.to_text(result), nl=False)


_LIMITS = " (reirrad's plausibility limit, docs/case-format.md)"
#: Longest overall time (days) the lq calculator takes: far above any course (the longest
#: split courses last weeks), so only unit errors (hours, a date typo) are refused.
MAX_OVERALL_TIME_DAYS = 365.0


def check_lql(transition: float | None) -> None:
    """``--lql-dt`` given means LQ-L on: the transition dose must be a plausible dose."""
    check_number(transition, "--lql-dt", gt=0, le=MAX_DOSE_PER_FRACTION_GY, why=_LIMITS)


def _check_lq_options(
    alpha_beta: float,
    fractions: float,
    values: dict[str, float | None],
    overall_time: float | None,
) -> None:
    check_number(alpha_beta, "--alpha-beta", gt=0)
    check_number(fractions, "--fractions", ge=1, le=MAX_FRACTIONS, whole=True, why=_LIMITS)
    check_number(values["--dose"], "--dose", ge=0, le=MAX_DOSE_GY, why=_LIMITS)
    check_number(values["--eqd2"], "--eqd2", ge=0)
    check_number(values["--bed"], "--bed", ge=0)
    check_number(overall_time, "--overall-time", ge=0, le=MAX_OVERALL_TIME_DAYS)
    if overall_time is not None and fractions > MAX_FRACTIONS_PER_DAY * (overall_time + 1):
        raise InputError(
            f"{fractions:g} fractions in {overall_time:g} days is more than "
            f"{MAX_FRACTIONS_PER_DAY} a day; check --overall-time (days from first to last "
            "fraction)",
            source="--overall-time",
        )


def _lq_values(
    alpha_beta: float,
    fractions: float,
    dose: float | None,
    eqd2: float | None,
    bed: float | None,
    lql_transition: float | None,
    overall_time: float | None,
    budget_option: str,
) -> tuple[float, float]:
    """BED and total dose of the schedule (the dose from the budget when none is given)."""
    options: dict = {"lql": rb.LQL(lql_transition) if lql_transition is not None else None}
    if overall_time is not None:
        options.update(repopulation=rb.PEDICINI_2015_HEAD_NECK, overall_time_days=overall_time)
    if dose is None:
        if eqd2 is not None:
            dose = float(rb.dose_for_eqd2(eqd2, fractions, alpha_beta, **options))
        else:
            dose = float(rb.dose_for_bed(bed, fractions, alpha_beta, **options))
        if not dose <= MAX_DOSE_GY:
            raise InputError(
                f"the budget needs {dose:g} Gy in {fractions:g} fractions, above {MAX_DOSE_GY:g} "
                f"Gy{_LIMITS}; check the budget",
                source=budget_option,
            )
    bed_value = float(rb.bed(dose, fractions, alpha_beta, **options))
    if not math.isfinite(bed_value):
        raise InputError("the BED is not finite; check the values", source="reirrad lq")
    if bed_value < 0:
        raise InputError(
            f"the repopulation loss exceeds the schedule's BED (BED {bed_value:.1f} Gy): "
            f"{overall_time:g} days is outside the range of the repopulation model",
            source="--overall-time",
        )
    return bed_value, dose


@app.command()
def lq(
    alpha_beta: Annotated[float, typer.Option("--alpha-beta", help="alpha/beta (Gy)")],
    fractions: Annotated[float, typer.Option("--fractions", help="number of fractions")],
    dose: Annotated[float | None, typer.Option("--dose", help="total physical dose (Gy)")] = None,
    eqd2: Annotated[
        float | None, typer.Option("--eqd2", help="inverse: EQD2 budget to spend (Gy)")
    ] = None,
    bed: Annotated[
        float | None, typer.Option("--bed", help="inverse: BED budget to spend (Gy)")
    ] = None,
    lql_transition: Annotated[
        float | None, typer.Option("--lql-dt", help="LQ-L transition dose per fraction (Gy)")
    ] = None,
    overall_time: Annotated[
        float | None,
        typer.Option(
            "--overall-time",
            help="overall treatment time (days): subtract repopulation (Pedicini 2015 H&N values)",
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """BED and EQD2 of a schedule, or (with --eqd2/--bed) the dose that spends a budget."""
    given = [
        name
        for name, value in (("--dose", dose), ("--eqd2", eqd2), ("--bed", bed))
        if value is not None
    ]
    if len(given) != 1:
        raise InputError("give exactly one of --dose, --eqd2 or --bed", source="reirrad lq")
    if output_format not in ("table", "json"):
        raise InputError("--format must be table or json", source="--format")
    _check_lq_options(
        alpha_beta, fractions, {"--dose": dose, "--eqd2": eqd2, "--bed": bed}, overall_time
    )
    check_lql(lql_transition)
    with np.errstate(all="ignore"):  # overflow is caught below as a non-finite result
        bed_value, dose = _lq_values(
            alpha_beta, fractions, dose, eqd2, bed, lql_transition, overall_time, given[0]
        )
    result = {
        "dose_gy": round(dose, 6),
        "fractions": fractions,
        "dose_per_fraction_gy": round(dose / fractions, 6),
        "alpha_beta_gy": alpha_beta,
        "bed_gy": round(bed_value, 6),
        "eqd2_gy": round(float(rb.bed_to_eqdx(bed_value, alpha_beta)), 6),
        "model": _model_label(lql_transition, overall_time),
        "repopulation": (None if overall_time is None else rb.PEDICINI_2015_HEAD_NECK.citation),
        "overall_time_days": overall_time,
    }
    if output_format == "json":
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"{result['dose_gy']:g} Gy in {fractions:g} fractions of {result['dose_per_fraction_gy']:.4g} Gy"
        f" at alpha/beta {alpha_beta:g} Gy ({result['model']}):"
        f" BED {result['bed_gy']:.2f} Gy, EQD2 {result['eqd2_gy']:.2f} Gy"
    )
    if overall_time is not None:
        typer.echo(f"repopulation model: {rb.PEDICINI_2015_HEAD_NECK.citation}")


def _model_label(lql_transition: float | None, overall_time: float | None) -> str:
    """The dose-response model the lq numbers come from, in words (repopulation included)."""
    model = "LQ" if lql_transition is None else f"LQ-L above {lql_transition:g} Gy, Astrahan 2008"
    if overall_time is None:
        return model
    pop = rb.PEDICINI_2015_HEAD_NECK
    return (
        f"{model} with repopulation: Tk {pop.kickoff_days:g} d, Dprolif "
        f"{pop.dprolif_gy_per_day:g} Gy/d, overall time {overall_time:g} d"
    )
