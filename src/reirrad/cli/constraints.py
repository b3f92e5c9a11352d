"""``reirrad constraints list``: show the packaged (or a user's) constraint sets."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from reirrad.cli.app import app
from reirrad.core.constraints import Constraint, ConstraintSet
from reirrad.errors import InputError
from reirrad.io.constraint_sets import available_constraint_sets, load_constraint_set

constraints_app = typer.Typer(
    name="constraints",
    help="Dose-constraint sets: list the packaged sets or a user's YAML file.",
    no_args_is_help=True,
)
app.add_typer(constraints_app, name="constraints")

FORMATS = ("table", "json")


def check_format(value: str) -> str:
    """Validate a ``--format`` value (one-line error instead of a usage block)."""
    if value not in FORMATS:
        raise InputError(
            f"unknown format {value!r}; use one of {', '.join(FORMATS)}", source="--format"
        )
    return value


def constraint_to_dict(constraint: Constraint) -> dict[str, Any]:
    """All fields of a constraint, JSON-ready."""
    return {
        "id": constraint.id,
        "organ": constraint.organ,
        "metric": constraint.metric,
        "quantity": constraint.quantity,
        "scope": constraint.scope,
        "comparator": constraint.comparator,
        "limit": constraint.limit,
        "alpha_beta_gy": constraint.alpha_beta_gy,
        "recovery_credit": constraint.recovery_credit,
        "min_interval_days": constraint.min_interval_days,
        "tier": constraint.tier,
        "endpoint": constraint.endpoint,
        "source": constraint.source,
        "evidence": constraint.evidence,
        "note": constraint.note,
    }


def _set_to_dict(constraint_set: ConstraintSet) -> dict[str, Any]:
    return {
        "id": constraint_set.id,
        "title": constraint_set.title,
        "description": constraint_set.description,
        "source": constraint_set.source,
        "origin": constraint_set.origin,
        "constraints": [constraint_to_dict(c) for c in constraint_set.constraints],
    }


def _table(constraint_set: ConstraintSet) -> str:
    header = ("id", "organ", "metric", "quantity", "scope", "limit", "tier", "interval")
    rows = [header]
    for c in constraint_set.constraints:
        if c.quantity == "physical":
            quantity = "physical"
        else:
            ab = f"{c.alpha_beta_gy:g}" if c.alpha_beta_gy is not None else "tissue"
            quantity = f"{c.quantity.upper()} a/b={ab}"
        scope = c.scope + (" +recovery" if c.recovery_credit else " nominal")
        unit = c.parsed_metric.result_unit
        interval = f">= {c.min_interval_days:g} d" if c.min_interval_days is not None else "-"
        rows.append(
            (
                c.id,
                c.organ,
                c.metric,
                quantity,
                scope,
                f"{c.comparator} {c.limit:g} {unit}",
                c.tier or "-",
                interval,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"{constraint_set.id}: {constraint_set.title}"]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)


@constraints_app.command("list")
def list_constraints(
    set_name: Annotated[
        str | None,
        typer.Option("--set", help="packaged set name or path of a YAML file (default: all)"),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """List constraint sets with every limit, its quantity, scope and validity condition."""
    check_format(output_format)
    names = [set_name] if set_name else available_constraint_sets()
    sets = [load_constraint_set(name) for name in names]
    if output_format == "json":
        typer.echo(json.dumps([_set_to_dict(s) for s in sets], indent=2))
        return
    typer.echo("\n\n".join(_table(s) for s in sets))
