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
    cohort: Annotated[
        int | None,
        typer.Option(
            "--cohort",
            help="write N varied phantom patients, manifest.csv and their exact answers instead",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the cohort's variations")] = 0,
) -> None:
    """Write a phantom DICOM case (CT, RTSTRUCT, RTPLAN, RTDOSE, REG) and its case file."""
    from reirrad.io.phantom import write_example_case

    if cohort is not None and not 1 <= cohort <= 10000:
        raise InputError(f"must be 1 to 10000 patients, not {cohort}", source="--cohort")
    if courses not in (2, 3):
        raise InputError("--courses must be 2 or 3", source="--courses")
    if directory.exists() and not directory.is_dir():
        raise InputError("not a folder; give a new or empty folder", source=str(directory))
    if directory.exists() and any(directory.iterdir()):
        raise InputError(
            "the folder is not empty; give a new or empty folder", source=str(directory)
        )
    if cohort is not None:
        from reirrad.io.phantom_cohort import write_phantom_cohort

        manifest = write_phantom_cohort(cohort, directory, seed=seed)
        typer.echo(f"wrote {cohort} patients, {manifest} and {directory / 'answers.json'}")
        typer.echo(f"try: reirrad cohort run {manifest} --out {directory / 'out'}")
        return
    case = write_example_case(directory, n_courses=courses, small=not large)
    typer.echo(f"wrote {case}")
    typer.echo(f"try: reirrad accumulate {case}   or   reirrad report {case} --out report.html")
