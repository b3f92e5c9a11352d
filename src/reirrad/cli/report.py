"""``reirrad report``: the clinical report of a case (self-contained HTML, optionally PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app


@app.command()
def report(
    case: Annotated[Path, typer.Argument(help="case file (YAML)")],
    out: Annotated[
        Path, typer.Option("--out", help="HTML file to write (self-contained, images embedded)")
    ],
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="also print the report to this PDF (needs headless Chromium)"),
    ] = None,
) -> None:
    """Write the report a physician can review and sign: timeline, assumptions, cumulative
    doses with verdicts, DVHs and images (DICOM cases), NTCP, prognosis, sensitivity,
    fractionation explorer and the ESTRO-EORTC reporting items."""
    from reirrad.errors import InputError
    from reirrad.pipelines.run import run_case
    from reirrad.present.report import check_outputs, unavailable_sections, write_report

    check_outputs(out, pdf)  # before the (slower) run: fail fast
    if not case.is_file():
        raise InputError("case file not found", source=str(case))
    written = write_report(run_case(case), out, pdf=pdf)
    typer.echo(f"wrote {written.html}")
    if written.pdf is not None:
        typer.echo(f"wrote {written.pdf}")
    if written.provenance is not None:
        typer.echo(f"wrote {written.provenance} (every input file with its SHA-256)")
    missing = [key for key, _ in unavailable_sections(written.data.sections)]
    if missing:
        typer.echo(f"sections without content (the report says why): {', '.join(missing)}")
