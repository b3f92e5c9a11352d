"""``reirrad explore``: the fractionation explorer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app, check_figure_path
from reirrad.core.case import MAX_FRACTIONS
from reirrad.errors import InputError
from reirrad.pipelines.explore import explore_case


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


@app.command()
def explore(
    case: Annotated[Path, typer.Argument(help="case file with an 'exploration' section")],
    fractions: Annotated[
        str | None,
        typer.Option("--fractions", help="fraction numbers, e.g. 1-10,25-35 (default)"),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write the feasible-region figure (PNG/PDF/SVG)")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude", help="leave out a constraint id (repeatable); stated in the output"
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Highest safe dose per fraction for each number of fractions, and the tumour dose."""
    if output_format not in ("table", "json", "csv"):
        raise InputError("--format must be table, json or csv", source="--format")
    numbers = _parse_fractions(fractions) if fractions is not None else None
    check_figure_path(plot)
    outcome = explore_case(case, fractions=numbers, exclude=exclude or ())
    result = outcome.result
    if plot is not None:
        from reirrad.present.plots import plot_feasible_region

        try:
            plot_feasible_region(outcome.result).savefig(plot, dpi=150)
        except (OSError, ValueError) as error:
            raise InputError(f"cannot write the figure ({error})", source=str(plot)) from None
    if output_format == "csv":
        from reirrad.present.explore import explorer_frame

        typer.echo(explorer_frame(result).to_csv(index=False, float_format="%.4f"), nl=False)
        return
    if output_format == "json":
        from reirrad.present.explore import explorer_records

        doc = {
            "history": list(outcome.history),
            "level": outcome.level,
            "new_course": outcome.new_course,
            "start": str(outcome.start),
            "schemes": [{k: _clean(v) for k, v in row.items()} for row in explorer_records(result)],
            "constraints": list(outcome.result.labels),
            "not_explored": list(outcome.not_explored),
            "sources": list(outcome.result.sources),
            "assumptions": list(outcome.assumptions) + list(outcome.result.assumptions),
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    level = "voxel-wise" if outcome.level == "voxel" else "structure-level"
    typer.echo(
        f"History: {', '.join(outcome.history)}; new course from {outcome.start}; {level} residuals"
    )
    for text in outcome.exceeded:
        typer.echo(f"Already exceeded by the history: {text}")
    typer.echo(
        "  fx   d/fx (Gy)  total (Gy)  tumour EQD2 new / cumulative   window  curative  binding"
    )
    for row in result.rows:
        d = row.dose_per_fraction_gy
        dose = (
            f"{d:9.2f}  {row.total_dose_gy:10.2f}"
            if row.feasible and math.isfinite(d)
            else "   no safe dose       "
        )
        typer.echo(
            f"  {int(row.fractions):2d}  {dose}  {row.eqd2_new_gy:12.2f} / {row.eqd2_cumulative_gy:8.2f}"
            f"   {'yes' if row.in_window else ' - ':>6}  {'yes' if row.curative else ' - ':>8}  "
            f"{row.binding or '-'}"
        )
    for text in outcome.not_explored:
        typer.echo(f"Not explored: {text}")
    for text in (*outcome.assumptions, *outcome.result.assumptions):
        typer.echo(f"Assumption: {text}")
    for text in outcome.result.sources:
        typer.echo(f"Source: {text}")


def _parse_fractions(text: str) -> list[int]:
    """``1-10,25-35`` -> the numbers; each in 1..MAX_FRACTIONS, each once, ranges ascending."""
    numbers: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
            elif part.strip():
                low = high = int(part)
            else:
                continue
            # check before building the range: 1-10000000000 must not allocate 1e10 numbers
            if not 1 <= low <= high <= MAX_FRACTIONS:
                raise InputError(
                    f"{part.strip()!r}: fraction numbers run from 1 to {MAX_FRACTIONS} "
                    "(docs/case-format.md, Limits), ranges low-high",
                    source="--fractions",
                )
            numbers.extend(range(low, high + 1))
    except ValueError as error:
        if isinstance(error, InputError):
            raise
        raise InputError(
            f"{text!r} is not a list of fraction numbers like 1-10,25-35", source="--fractions"
        ) from None
    if not numbers:
        raise InputError(f"{text!r} gives no fraction number", source="--fractions")
    if len(set(numbers)) != len(numbers):
        raise InputError(f"{text!r} names a number of fractions twice", source="--fractions")
    return numbers
