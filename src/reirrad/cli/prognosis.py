"""``reirrad li2018`` (prognostic index) and ``reirrad stage`` (AJCC/UICC 9th version NPC)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from reirrad.cli.app import app, check_number
from reirrad.cli.constraints import check_format
from reirrad.core.case import MAX_VOLUME_ML
from reirrad.core.prognosis import (
    AJCC9_NPC_CITATION,
    li2018_index,
    normalize_rt_category,
    stage_group_ajcc9_npc,
)
from reirrad.errors import InputError


@app.command("li2018")
def li2018(
    rgtv: Annotated[
        float, typer.Option("--rgtv", help="gross tumour volume of the recurrence (mL)")
    ],
    age: Annotated[float, typer.Option("--age", help="age at recurrence (years)")],
    rt: Annotated[str, typer.Option("--rt", help="recurrent T category: rT1..rT4, rT1-2, rT3-4")],
    prior_g3_toxicity: Annotated[
        bool,
        typer.Option("--prior-g3-toxicity", help="prior radiotherapy-induced grade >= 3 toxicity"),
    ] = False,
    reirradiation_eqd2: Annotated[
        float | None,
        typer.Option(
            "--reirradiation-eqd2", help="EQD2 of the re-irradiation (Gy); >= 68 Gy counts"
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Li et al. 2018 prognostic index for salvage re-irradiation of recurrent NPC."""
    check_format(output_format)
    try:
        normalize_rt_category(rt)
    except InputError as error:
        raise error.located(source="--rt") from None
    # the case file's plausibility limits (docs/case-format.md, Limits)
    check_number(rgtv, "--rgtv", ge=0, le=MAX_VOLUME_ML)
    check_number(age, "--age", ge=0, le=130)
    check_number(reirradiation_eqd2, "--reirradiation-eqd2", ge=0)
    result = li2018_index(
        rgtv_ml=rgtv,
        age_years=age,
        reirradiation_eqd2_gy=reirradiation_eqd2,
        prior_grade3_toxicity=prior_g3_toxicity,
        rt_category=rt,
    )
    if output_format == "json":
        payload = {
            "index": round(result.index, 2),
            "group": result.group,
            "cutoff": result.cutoff,
            "covariates": dict(result.covariates),
            "terms": {k: round(v, 2) for k, v in result.terms.items()},
            "assumptions": list(result.assumptions),
            "note": result.note,
            "citation": result.citation,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    lines = [
        f"Li 2018 prognostic index: {result.index:.1f} ({result.group} risk; cut-off "
        f"{result.cutoff:g})"
    ]
    for name, value in result.covariates.items():
        lines.append(f"  {name:<28} {value:>8g}  -> {result.terms[name]:7.1f}")
    lines += [f"  assumption: {a}" for a in result.assumptions]
    lines += [f"note: {result.note}", f"source: {result.citation}"]
    typer.echo("\n".join(lines))


@app.command("stage")
def stage(
    t: Annotated[str, typer.Option("--t", help="T category: T1..T4")],
    n: Annotated[str, typer.Option("--n", help="N category: N0..N3")],
    m: Annotated[str, typer.Option("--m", help="M category: M0, M1a, M1b")] = "M0",
    output_format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """AJCC/UICC 9th version stage group of nasopharyngeal carcinoma (Pan et al. 2024)."""
    check_format(output_format)
    group = stage_group_ajcc9_npc(t, n, m)
    if output_format == "json":
        typer.echo(
            json.dumps(
                {"t": t, "n": n, "m": m, "stage": group, "citation": AJCC9_NPC_CITATION}, indent=2
            )
        )
        return
    typer.echo(f"stage {group} (AJCC/UICC 9th version, nasopharynx)\nsource: {AJCC9_NPC_CITATION}")
