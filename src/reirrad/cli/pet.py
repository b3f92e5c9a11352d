"""``reirrad pet``: SUV statistics of a region, a threshold volume, its site in an old dose."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app, check_number
from reirrad.errors import InputError
from reirrad.pipelines.pet import measure_pet
from reirrad.present.pet import pet_to_json, pet_to_text


@app.command("pet")
def pet(
    series: Annotated[Path, typer.Argument(help="folder of the PET series' slice files")],
    structures: Annotated[
        Path | None, typer.Option("--structures", help="RTSTRUCT on the PET's frame")
    ] = None,
    roi: Annotated[str | None, typer.Option("--roi", help="ROI of --structures to measure")] = None,
    box: Annotated[
        str | None, typer.Option("--box", help="region x0:x1,y0:y1,z0:z1 in patient mm")
    ] = None,
    threshold: Annotated[
        str | None,
        typer.Option("--threshold", help="segment the region: an SUV (2.5) or % of SUVmax (40%)"),
    ] = None,
    rtstruct: Annotated[
        Path | None, typer.Option("--rtstruct", help="write the segmented volume as an RTSTRUCT")
    ] = None,
    dose: Annotated[
        Path | None,
        typer.Option("--dose", help="earlier course's RTDOSE (same frame) to place the recurrence"),
    ] = None,
    prescription: Annotated[
        float | None, typer.Option("--prescription", help="that course's prescription (Gy)")
    ] = None,
    registration: Annotated[
        Path | None,
        typer.Option("--registration", help="REG file: PET frame -> planning CT frame (rigid)"),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """SUVbw statistics (SUVmax, SUVpeak, SUVmean) of a PET region, with threshold segmentation."""
    if output_format not in ("text", "json"):
        raise InputError(f"{output_format!r} is not one of text, json", source="--format")
    check_number(prescription, "--prescription", gt=0)
    result = measure_pet(
        series,
        structures=structures,
        roi=roi,
        box=box,
        threshold=threshold,
        rtstruct_out=rtstruct,
        dose=dose,
        prescription_gy=prescription,
        registration=registration,
    )
    typer.echo(pet_to_json(result) if output_format == "json" else pet_to_text(result))
