"""``reirrad cohort run`` / ``reirrad cohort report``: many patients on Dask distributed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app, check_number
from reirrad.errors import InputError

cohort_app = typer.Typer(
    help="Run a cohort of cases on Dask (resumable, Parquet outputs) and summarise it.",
    no_args_is_help=True,
)
app.add_typer(cohort_app, name="cohort")


class _Display:
    """Progress on stderr: a rich bar on a terminal, a plain line per change otherwise."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None
        self.dashboard_shown = False
        self.last: tuple | None = None

    def __call__(self, status) -> None:
        if status.dashboard and not self.dashboard_shown:
            import importlib.util

            served = importlib.util.find_spec("bokeh") is not None
            note = "" if served else " (served once bokeh>=3.1 is installed)"
            typer.echo(f"Dask dashboard: {status.dashboard}{note}", err=True)
            self.dashboard_shown = True
        text = (
            f"done {status.done}/{status.total}  failed {status.failed}  running {status.running}"
        )
        if status.skipped:
            text += f"  (skipped, already current: {status.skipped})"
        if not sys.stderr.isatty():
            if (status.done, status.failed) != self.last:
                typer.echo(text, err=True)
                self.last = (status.done, status.failed)
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("patients"), BarColumn(), TextColumn("{task.description}"),
                TimeElapsedColumn(), console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(text, total=status.total)
        self.bar.update(self.task, completed=status.done + status.failed, description=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@cohort_app.command("run")
def run(
    out: Annotated[Path, typer.Option("--out", help="output folder (Parquet tables)")],
    manifest: Annotated[
        Path | None,
        typer.Argument(
            help="CSV (patient,case) or YAML manifest (patients, or a registry: query), "
            "or a folder of case folders"
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="select the patients from the registry: KEY=VALUE,... with keys department, "
            "site, start_from, start_to (YYYY-MM-DD), follow_up (yes/no)",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="the registry's data folder (default: REIRRAD_DATA)"),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="address of a running Dask scheduler (tcp://HOST:8786)"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="worker processes of the local cluster (default: CPUs)"),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help="structure-level conversion method for every case"),
    ] = None,
    constraint_set: Annotated[
        list[str] | None,
        typer.Option("--constraint-set", help="extra packaged constraint set (repeatable)"),
    ] = None,
) -> None:
    """Run every patient of MANIFEST (one Dask task each); skip those already current in OUT."""
    from reirrad.pipelines.cohort import CohortParameters, run_cohort

    check_number(workers, "--workers", ge=1, whole=True)
    if scheduler is not None and workers is not None:
        raise InputError("give --scheduler or --workers, not both", source="--workers")
    if out.exists() and not out.is_dir():
        raise InputError("not a folder; give a new or existing output folder", source=str(out))
    entries = _entries(manifest, registry, data, out)
    parameters = CohortParameters(methods=method, constraint_sets=tuple(constraint_set or ()))
    display = _Display()
    try:
        result = run_cohort(
            entries, out, parameters=parameters, scheduler=scheduler,
            workers=int(workers) if workers else None, progress=display,
        )  # fmt: skip
    finally:
        display.close()
    counts = result.counts
    typer.echo(
        f"{len(entries)} patients: ok {counts.get('ok', 0)}, failed {counts.get('failed', 0)}, "
        f"error {counts.get('error', 0)}, skipped (current) {counts['skipped']} "
        f"in {result.seconds:.1f} s"
    )
    for summary in result.summaries:
        if summary.status != "ok":
            typer.echo(f"  {summary.patient}: {summary.status}: {summary.message}")
    typer.echo(f"tables: {out}/<table>.parquet ({', '.join(sorted(result.tables))})")


def _entries(manifest: Path | None, registry: str | None, data: Path | None, out: Path):
    """The cohort: from a manifest, or exported from the registry into ``OUT/cases``."""
    from reirrad.io.cohort_manifest import (
        manifest_registry_query,
        parse_registry_query,
        read_manifest,
    )

    if (manifest is None) == (registry is None):
        raise InputError("give a MANIFEST or --registry QUERY (one of them)", source="cohort run")
    query = parse_registry_query(registry) if registry is not None else None
    if manifest is not None:
        query = manifest_registry_query(manifest)
        if query is None:
            if data is not None:
                raise InputError("--data is for registry queries only", source="--data")
            return read_manifest(manifest)
    return read_manifest(_export_from_registry(manifest, registry, data, out / "cases"))


def _export_from_registry(
    manifest: Path | None, registry: str | None, data: Path | None, folder: Path
) -> Path:
    """Export the selected patients in a child process; the path of its manifest.csv.

    The CLI does not import the web layer (Django): the registry's own management command
    ``export_cohort`` does the selection and export, with the registry's data folder.
    """
    import os
    import subprocess

    env = dict(os.environ)
    if data is not None:
        if not data.is_dir():
            raise InputError(
                "no such folder; give the registry's data folder (as for `reirrad serve`)",
                source=str(data), field="--data",
            )  # fmt: skip
        env["REIRRAD_DATA"] = str(data.resolve())
    env.pop("DJANGO_SETTINGS_MODULE", None)
    select = ["--query", registry] if registry is not None else ["--manifest", str(manifest)]
    command = [sys.executable, "-m", "reirrad.web", "export_cohort", str(folder), *select]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("CommandError: ") if lines else "no message"
        raise InputError(f"registry export failed: {reason}", source=str(manifest or "--registry"))
    return folder / "manifest.csv"


@cohort_app.command("report")
def report(
    directory: Annotated[Path, typer.Argument(help="output folder of `reirrad cohort run`")],
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for the HTML and CSV (default: DIRECTORY)")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", help="statistic to plot per organ (repeatable; default D2%, Dmean)"
        ),
    ] = None,
) -> None:
    """Per organ the distribution of cumulative EQD2, limits exceeded, patients nearest."""
    from reirrad.core.metrics import parse_metric
    from reirrad.present.cohort import DEFAULT_METRICS, write_cohort_report

    if not directory.is_dir():
        raise InputError(
            "not a folder; give the --out folder of `reirrad cohort run`", source=str(directory)
        )
    metrics = [parse_metric(text).name for text in metric or DEFAULT_METRICS]
    paths = write_cohort_report(directory, out, metrics)
    for path in paths.values():
        typer.echo(f"wrote {path}")
