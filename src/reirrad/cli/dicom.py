"""``reirrad dicom-listen`` and ``reirrad dicom-send``: the DICOM node on the command line."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from reirrad.cli.app import app
from reirrad.errors import InputError


def describe_course(course) -> list[str]:
    """Lines describing a :class:`~reirrad.core.dicom_groups.ProposedCourse` for a terminal."""
    dates = course.start + (f"-{course.end}" if course.end else "")
    lines = [
        f"proposed course: patient {course.patient_id} ({course.patient_name or 'no name'}), "
        f"plan {course.plan_label or '?'} {course.plan_uid}, "
        f"{course.fractions if course.fractions is not None else '?'} fractions, "
        f"dates {dates or '?'} ({course.date_source})",
        f"  objects: {'1 RTPLAN' if course.plan_received else 'no RTPLAN'}, "
        f"{len(course.dose_uids)} RTDOSE, {'1' if course.structure_set_uid else 'no'} RTSTRUCT, "
        f"{len(course.image_uids)} images, {len(course.registration_uids)} REG, "
        f"{len(course.record_uids)} treatment records",
    ]
    lines += [f"  missing: {m}" for m in course.missing]
    lines += [f"  CONFLICT: {c}" for c in course.conflicts]
    lines += [f"  note: {n}" for n in course.notes]
    return lines


@app.command("dicom-listen")
def dicom_listen(
    spool: Annotated[Path, typer.Option("--spool", help="folder the received objects go to")],
    ae_title: Annotated[str, typer.Option("--ae-title", help="this node's AE title")] = "REIRRAD",
    host: Annotated[
        str, typer.Option("--host", help="address to listen on (0.0.0.0: all interfaces)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 11112,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="allowed calling AE, as AE or AE@host (repeat); none: any"),
    ] = None,
    idle: Annotated[
        float, typer.Option("--idle", help="seconds without objects before a study is grouped")
    ] = 30.0,
) -> None:
    """Receive DICOM objects (C-STORE) into a spool and print the courses they make up.

    Runs in the foreground until Ctrl-C (or SIGTERM).
    """
    from reirrad.io.dicom_node import NodeConfig, StorageSCP, parse_peer
    from reirrad.pipelines.dicom_intake import IntakeMonitor

    if spool.exists() and not spool.is_dir():
        raise InputError("not a folder", source=str(spool), field="--spool")
    config = NodeConfig(
        spool=spool,
        ae_title=ae_title,
        host=host,
        port=port,
        allowed=tuple(parse_peer(a) for a in allow or ()),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.ERROR)
    scp = StorageSCP(config)
    monitor = IntakeMonitor(scp, idle_seconds=idle)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    actual = scp.start()
    typer.echo(f"listening as {ae_title} on {host}:{actual}; Ctrl-C stops", err=True)
    try:
        while not stop.wait(min(1.0, max(idle / 4, 0.05))):
            for course in monitor.poll():
                typer.echo("\n".join(describe_course(course)))
    except KeyboardInterrupt:
        pass
    finally:
        scp.stop()
        signal.signal(signal.SIGTERM, previous)
        counts = ", ".join(f"{v} {k}" for k, v in scp.counts.items())
        typer.echo(f"stopped ({counts})", err=True)


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            files.append(p)
    return files


@app.command("dicom-send")
def dicom_send(
    files: Annotated[list[Path], typer.Argument(help="DICOM files or folders to send")],
    to: Annotated[str, typer.Option("--to", help="the receiving AE as AE@host:port")],
    ae_title: Annotated[str, typer.Option("--ae-title", help="our calling AE title")] = "REIRRAD",
) -> None:
    """Send DICOM files to another AE by C-STORE; one line per failed object."""
    from reirrad.io.dicom_scu import parse_destination, send_files

    peer = parse_destination(to)
    paths = _expand(files)
    if not paths:
        raise InputError("no files to send", source="FILES")
    results = send_files(paths, peer, calling_ae=ae_title)
    failed = [r for r in results if not r.ok]
    for r in failed:
        typer.echo(f"failed: {r.path} ({r.sop_instance_uid}): {r.message}", err=True)
    typer.echo(f"sent {len(results) - len(failed)} of {len(results)} objects to {peer}")
    if failed:
        raise typer.Exit(1)
