"""``reirrad serve``: the clinic web application (the logic is in :mod:`reirrad.web.serve`),
and ``reirrad check-store``: its file store against the database (the only CLI module that
imports the web layer)."""

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


@app.command("check-store")
def check_store(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="data folder of `reirrad serve` (default $REIRRAD_DATA or "
            "~/.local/share/reirrad); DATABASE_URL selects PostgreSQL",
        ),
    ] = None,
    no_hash: Annotated[
        bool, typer.Option("--no-hash", help="skip re-hashing every stored file (faster)")
    ] = False,
) -> None:
    """Report files in the store without a database row, rows without their file, files
    whose content differs from their SHA-256, and leftover temporary files; exit 1 if any."""
    import os

    from reirrad.errors import InputError
    from reirrad.web import default_data_dir, setup

    folder = (data or Path(os.environ.get("REIRRAD_DATA") or default_data_dir())).expanduser()
    if not folder.is_dir():
        raise InputError("no such data folder; give --data DIR", source=str(folder))
    setup(folder.resolve())
    from reirrad.web.registry.store import check_store as check

    report = check(rehash=not no_hash)
    for kind, items in report.items():
        for item in items:
            typer.echo(f"{kind}: {item}")
    if any(report.values()):
        typer.echo(
            "store inconsistent: " + ", ".join(f"{len(v)} {k}" for k, v in report.items() if v)
        )
        raise typer.Exit(1)
    typer.echo("store consistent")
