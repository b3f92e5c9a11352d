"""``reirrad dvh``: DVHs and metrics of the structures of an RTSTRUCT in an RTDOSE."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app, check_figure_path, check_number
from reirrad.core.dvh import DVH, compute_dvh
from reirrad.core.metrics import parse_metric
from reirrad.errors import InputError
from reirrad.io.dicom import check_frame_of_reference, read_rtdose, read_rtstruct
from reirrad.io.dicom_case import structure_outside_grid

FORMATS = ("table", "csv", "json")
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


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _plot(dvhs: list[DVH], path: Path, colours=None) -> None:
    """The DVH curves, each in its structure's colour (``reirrad.present.colours``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reirrad.present.colours import line_effects

    fig, ax = plt.subplots(figsize=(8, 5))
    for dvh in dvhs:
        style = {}
        if colours is not None and dvh.structure in colours:
            colour = colours[dvh.structure]
            style = {"color": colour.rgb, "path_effects": line_effects(colour, 1.5), "lw": 1.5}
        ax.plot(dvh.edges, dvh.cumulative_percent, label=dvh.structure, **style)
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (%)")
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Cumulative DVH")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    cap: str | float = end_cap
    if end_cap not in ("half_slice", "none"):
        try:
            cap = check_number(float(end_cap), "--end-cap", ge=0)
        except ValueError as error:
            if isinstance(error, InputError):
                raise
            raise InputError(
                f"{end_cap!r}: use half_slice, none or a distance in mm", source="--end-cap"
            ) from None
    dose_obj = read_rtdose(dose, relative_scale_gy=relative_scale)
    structure_set = read_rtstruct(structures)
    check_frame_of_reference(dose_obj, structure_set)
    # warnings are printed once the DVHs are computed: a refusal stays one line
    notes = list(structure_set.warnings)
    available = [n for n, s in structure_set.structures.items() if not s.is_empty]
    if roi:
        missing = [r for r in roi if r not in structure_set.structures]
        if missing:
            raise InputError(
                f"no ROI named {', '.join(repr(m) for m in missing)}; available: "
                + ", ".join(structure_set.structures),
                source=str(structures),
            )
        selected = list(roi)
    else:
        selected = available
    results = []
    for name in selected:
        structure = structure_set.structures[name]
        if structure_outside_grid(structure, dose_obj.grid):
            # a structure of the plan wholly outside its dose grid means the two do not
            # belong together (or the grid is misplaced): refused, never skipped silently
            raise InputError(
                f"ROI {name!r} lies entirely outside the dose grid; check that the dose "
                "belongs to these structures, extend the dose grid, or select ROIs with --roi",
                source=str(dose),
            )
        try:
            result = compute_dvh(dose_obj, structure, end_cap=cap)
        except InputError as error:
            raise error.located(source=str(structures), field=f"ROI {name!r}") from None
        values = result.metrics(names, reference_dose=reference_dose)
        notes.extend(result.provenance.get("warnings", []))
        results.append((result, values))
    for warning in notes:
        typer.echo(f"reirrad: warning: {warning}", err=True)

    if output_format == "json":
        payload = [
            {
                "roi": r.structure,
                "volume_cc": _number(r.volume_cc),
                "covered_fraction": _number(r.covered_fraction),
                "metrics": {k: _number(v) for k, v in values.items()},
            }
            for r, values in results
        ]
        typer.echo(json.dumps(payload, indent=2))
    elif output_format == "csv":
        typer.echo(",".join(["roi", "volume_cc", "covered_fraction", *names]))
        for r, values in results:
            cells = [r.structure, f"{r.volume_cc:.4f}", f"{r.covered_fraction:.4f}"]
            cells += [f"{values[n]:.4f}" for n in names]
            quoted = [f'"{c}"' if "," in c else c for c in cells]
            typer.echo(",".join(quoted))
    else:
        header = ["ROI", "cc", "covered", *names]
        rows = [
            [r.structure, f"{r.volume_cc:.2f}", f"{100 * r.covered_fraction:.1f}%"]
            + [f"{values[n]:.3f}" for n in names]
            for r, values in results
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        typer.echo("Doses in Gy; V<x> metrics in % of the covered volume (or cc as asked).")
    if plot is not None:
        from reirrad.present.colours import assign_colours

        colours = assign_colours(
            (r.structure, structure_set.structures[r.structure].color) for r, _ in results
        )
        _plot([r for r, _ in results], plot, colours)
