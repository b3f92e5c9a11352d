"""``reirrad phantom``: write a synthetic DICOM case to try the voxel-wise commands on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app
from reirrad.errors import InputError


@app.command()
def phantom(
    directory: Annotated[
        Path, typer.Argument(help="folder to write the DICOM files and case.yaml")
    ],
    courses: Annotated[int, typer.Option("--courses", help="2 or 3 courses")] = 3,
    large: Annotated[bool, typer.Option("--large", help="finer grids (slower)")] = False,
) -> None:
    """Write a phantom DICOM case (CT, RTSTRUCT, RTPLAN, RTDOSE, REG) and its case file."""
    from reirrad.io.phantom import write_example_case

    if courses not in (2, 3):
        raise InputError("--courses must be 2 or 3", source="--courses")
    if directory.exists() and not directory.is_dir():
        raise InputError("not a folder; give a new or empty folder", source=str(directory))
    if directory.exists() and any(directory.iterdir()):
        raise InputError(
            "the folder is not empty; give a new or empty folder", source=str(directory)
        )
    case = write_example_case(directory, n_courses=courses, small=not large)
    typer.echo(f"wrote {case}")
    typer.echo(f"try: reirrad accumulate {case}   or   reirrad report {case} --out report.html")
