"""``reirrad dvh``: DVHs and metrics of the structures of an RTSTRUCT in an RTDOSE.

Parses and checks the options, calls :func:`reirrad.pipelines.dvh.dvhs_from_files` and prints
with :mod:`reirrad.present.dvh`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app, check_figure_path, check_number
from reirrad.core.metrics import parse_metric
from reirrad.errors import InputError
from reirrad.pipelines.dvh import dvhs_from_files
from reirrad.present.dvh import FORMATS, dvh_metrics_text, write_dvh_plot

DEFAULT_METRICS = "Dmean,Dmin,Dmax,D98%,D95%,D50%,D2%,D0.035cc"


def _metric_names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError("no metric given", source="--metrics")
    for name in names:
        try:
            parse_metric(name)
        except InputError as error:
            raise error.located(source="--metrics") from None
    return names


def _end_cap(text: str) -> str | float:
    if text in ("half_slice", "none"):
        return text
    try:
        return check_number(float(text), "--end-cap", ge=0)
    except ValueError as error:
        if isinstance(error, InputError):
            raise
        raise InputError(
            f"{text!r}: use half_slice, none or a distance in mm", source="--end-cap"
        ) from None


@app.command()
def dvh(
    dose: Annotated[Path, typer.Option("--dose", help="RTDOSE file (Gy).")],
    structures: Annotated[Path, typer.Option("--structures", help="RTSTRUCT file.")],
    roi: Annotated[
        list[str] | None,
        typer.Option("--roi", help="ROI name (repeatable); default: every non-empty ROI."),
    ] = None,
    metrics: Annotated[
        str, typer.Option("--metrics", help="Comma-separated metrics, e.g. Dmean,D95%,V20Gy.")
    ] = DEFAULT_METRICS,
    output_format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the cumulative DVHs to this PNG.")
    ] = None,
    reference_dose: Annotated[
        float | None,
        typer.Option("--reference-dose", help="Gy, for V<x>% metrics (x % of this dose)."),
    ] = None,
    end_cap: Annotated[
        str, typer.Option("--end-cap", help="half_slice (default), none, or a distance in mm.")
    ] = "half_slice",
    relative_scale: Annotated[
        float | None,
        typer.Option(
            "--relative-scale",
            help="Gy that a RELATIVE dose of 1.0 stands for (only for DoseUnits RELATIVE).",
        ),
    ] = None,
) -> None:
    """Compute DVHs with partial volumes and intra-voxel dose; print metrics per ROI."""
    if output_format not in FORMATS:
        raise InputError(
            f"unknown format {output_format!r}; use one of {', '.join(FORMATS)}",
            source="--format",
        )
    names = _metric_names(metrics)
    check_figure_path(plot)
    check_number(reference_dose, "--reference-dose", gt=0)
    check_number(relative_scale, "--relative-scale", gt=0)
    if reference_dose is None and any(
        parse_metric(n).kind == "volume_at_dose" and parse_metric(n).unit == "%" for n in names
    ):
        raise InputError(
            "V<x>% metrics are in % of a reference dose: give it with --reference-dose GY",
            source="--metrics",
        )
    found = dvhs_from_files(
        dose, structures, rois=roi, end_cap=_end_cap(end_cap), relative_scale_gy=relative_scale
    )
    # warnings are printed once the DVHs are computed: a refusal stays one line
    for warning in found.warnings:
        typer.echo(f"reirrad: warning: {warning}", err=True)
    typer.echo(
        dvh_metrics_text(
            found.dvhs, names, reference_dose=reference_dose, output_format=output_format
        )
    )
    if plot is not None:
        from reirrad.present.colours import assign_colours

        write_dvh_plot(found.dvhs, plot, assign_colours(found.display_colors.items()))
