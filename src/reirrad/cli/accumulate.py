"""``reirrad accumulate``: voxel-wise cumulative EQD2 of a case whose courses have DICOM."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app
from reirrad.errors import InputError
from reirrad.pipelines.accumulate import accumulate_case
from reirrad.present import render
from reirrad.present.export import write_voxel_outputs


class Format(StrEnum):
    table = "table"
    json = "json"


def _progress_bar():
    """A rich progress callback on a terminal (stderr), else ``None`` and a no-op context."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, int] = {}

    def callback(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=max(total, 1))
        bar.update(tasks[stage], completed=done, total=max(total, 1))

    return callback, bar


@app.command()
def accumulate(
    case: Annotated[Path, typer.Argument(help="YAML case file whose courses give DICOM files")],
    reference: Annotated[
        str | None, typer.Option("--reference", help="reference course id (default: newest)")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write cumulative EQD2 RTDOSE + NRRD and summary.json here"),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="output format")] = Format.table,
) -> None:
    """Voxel-wise cumulative EQD2 over all courses: DVHs, constraints, sensitivity, type."""
    if reference is not None and not reference.strip():
        raise InputError("empty; give a course id or leave the option out", source="--reference")
    callback, bar = _progress_bar()
    if bar is not None:
        with bar:
            result = accumulate_case(case, reference=reference, progress=callback)
    else:
        result = accumulate_case(case, reference=reference)
    if out is not None:
        paths = write_voxel_outputs(result, out)
    if output_format is Format.json:
        document = render.voxel_to_dict(result)
        if out is not None:
            document["files"] = {key: str(path) for key, path in paths.items()}
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(render.voxel_to_text(result), nl=False)
        if out is not None:
            for key, path in paths.items():
                typer.echo(f"wrote {key}: {path}")
