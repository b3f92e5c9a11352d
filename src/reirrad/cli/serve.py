"""``reirrad serve``: the clinic web application (the logic is in :mod:`reirrad.web.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app


@app.command()
def serve(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="data folder: database, file store, secret key "
            "(default $REIRRAD_DATA or ~/.local/share/reirrad)",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8000,
) -> None:
    """Run the web application: registry, assessments, reports (gunicorn and a job worker).

    A fresh data folder is set up first (database, an admin account whose password is
    printed once, the NPC and phantom cases); PostgreSQL instead of SQLite through
    DATABASE_URL. Ctrl-C stops it."""
    import os

    from reirrad.web import default_data_dir
    from reirrad.web.serve import serve as run

    folder = data or Path(os.environ.get("REIRRAD_DATA") or default_data_dir())
    raise typer.Exit(run(folder, host, port, echo=typer.echo))
