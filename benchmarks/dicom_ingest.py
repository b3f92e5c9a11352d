"""Ingest speed of the DICOM node against dcmtk's storescp, on loopback, in one run.

Writes a three-course phantom with enough CT slices for about 600 objects, then sends the
same files with dcmtk's ``storescu`` (one association, as a planning-system export does) to

1. dcmtk's ``storescp`` writing into a folder (the reference receiver), and
2. reirrad's Storage SCP (:class:`reirrad.io.dicom_node.StorageSCP`, in this process:
   hardened header read, atomic spool write with fsync, duplicate check),

``--repeat`` times each, alternating, and keeps each receiver's best run (the machine is
shared).  After reirrad's run it groups the spool into proposed courses with an idle time of
0 s: ``proposed_s`` is the time from the last object received to the proposals; a real
listener adds its idle time (default 30 s) to that.

Registration into the registry's content-addressed store and SQLite database (a fresh data
folder) is included: reirrad's time runs until the last object is registered.

Last line: ``objects=N objects_per_s=R storescp_ratio=Q proposed_s=T``.

Usage: ``python benchmarks/dicom_ingest.py [--slices 196] [--repeat 2]``
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Debian's dcmtk leaves Nagle's algorithm on unless TCP_NODELAY=1 is set in the environment;
#: with it on, every C-STORE waits for a delayed acknowledgement (about 90 ms per object
#: measured here), so both dcmtk tools get it, as reirrad's SCP sets TCP_NODELAY itself.
NODELAY_ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit(f"nothing listens on port {port}")


def storescu(port: int, called: str, folders: list[Path]) -> float:
    """Send with dcmtk's storescu; return the wall time (s)."""
    cmd = ["storescu", "-aet", "BENCH", "-aec", called, "+sd", "+r", "127.0.0.1", str(port)]
    start = time.perf_counter()
    done = subprocess.run(
        cmd + [str(f) for f in folders], capture_output=True, text=True, env=NODELAY_ENV
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"storescu failed: {done.stderr.strip()}")
    return elapsed


def run_storescp(folders: list[Path], work: Path) -> tuple[float, int]:
    out = work / "storescp"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    port = free_port()
    server = subprocess.Popen(
        ["storescp", "-aet", "STORESCP", "--output-directory", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=NODELAY_ENV,
    )
    try:
        wait_listening(port)
        elapsed = storescu(port, "STORESCP", folders)
    finally:
        server.terminate()
        server.wait()
    return elapsed, len(list(out.iterdir()))


def setup_registry(work: Path):
    """A fresh registry (data folder, migrated SQLite database, one department)."""
    os.environ["REIRRAD_DATA"] = str(work / "registry")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reirrad.web.settings")
    os.environ.pop("DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--no-input", verbosity=0)
    from reirrad.web.registry.models import Department

    return Department.objects.get_or_create(name="Benchmark")[0]


def run_reirrad(folders: list[Path], work: Path, department) -> tuple[float, int, float, int]:
    """Receive, spool and register (as ``dicom_listen`` does: receiving threads queue the
    spooled paths, this thread registers them in batches meanwhile); the time runs until the
    last object is registered."""
    import queue
    import threading

    from reirrad.io.dicom_node import AllowedPeer, NodeConfig, StorageSCP
    from reirrad.pipelines.dicom_intake import IntakeMonitor
    from reirrad.web.registry import dicom_intake
    from reirrad.web.registry.models import ReceivedObject, StoredObject

    ReceivedObject.objects.all().delete()
    StoredObject.objects.filter(kind="dicom").delete()
    spool = work / "spool"
    shutil.rmtree(spool, ignore_errors=True)
    arrived: queue.SimpleQueue = queue.SimpleQueue()
    scp = StorageSCP(
        NodeConfig(spool=spool, port=0, allowed=(AllowedPeer("BENCH"),)),
        on_stored=lambda path, summary: arrived.put(path),
    )
    port = scp.start()
    registered = 0
    try:
        start = time.perf_counter()
        sender = threading.Thread(target=storescu, args=(port, "REIRRAD", folders))
        sender.start()
        sent_s = None
        while sender.is_alive() or not arrived.empty():
            if sent_s is None and not sender.is_alive():
                sent_s = time.perf_counter() - start
            batch = []
            while not arrived.empty() and len(batch) < 500:
                batch.append(arrived.get())
            if batch:
                registered += dicom_intake.register_batch(batch, department)
            else:
                time.sleep(0.05)
        elapsed = time.perf_counter() - start
        print(f"  reirrad: sender done after {sent_s or elapsed:.2f} s, last object registered "
              f"after {elapsed:.2f} s", flush=True)
        start = time.perf_counter()
        courses = IntakeMonitor(scp, idle_seconds=0.0).poll(now=float("inf"))
        for course in courses:
            dicom_intake.propose(course, department)
        proposed = time.perf_counter() - start
    finally:
        scp.stop()
    if registered != scp.counts["stored"]:
        raise SystemExit(f"registered {registered} of {scp.counts['stored']} objects")
    return elapsed, registered, proposed, len(courses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=196, help="CT slices per course")
    parser.add_argument("--repeat", type=int, default=2, help="runs per receiver (best kept)")
    args = parser.parse_args()
    if not (shutil.which("storescu") and shutil.which("storescp")):
        raise SystemExit("dcmtk is missing: run scripts/system-deps.sh")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pynetdicom").setLevel(logging.ERROR)

    from reirrad.io.phantom import write_example_case

    with tempfile.TemporaryDirectory(prefix="reirrad-ingest-") as tmp:
        work = Path(tmp)
        case = write_example_case(work / "phantom", n_courses=3, ct_slices=args.slices)
        folders = sorted(p for p in case.parent.iterdir() if p.is_dir())
        n = sum(1 for f in folders for _ in f.rglob("*.dcm"))
        print(f"phantom: 3 courses, {args.slices} CT slices each, {n} objects", flush=True)
        department = setup_registry(work)
        best_ref = best_ours = float("inf")
        proposed_s, n_courses = float("nan"), 0
        for run in range(1, args.repeat + 1):
            ref, got = run_storescp(folders, work)
            if got != n:
                raise SystemExit(f"storescp stored {got} of {n} objects")
            ours, stored, proposed, n_courses = run_reirrad(folders, work, department)
            if stored != n:
                raise SystemExit(f"reirrad stored {stored} of {n} objects")
            print(
                f"run {run}: storescp {ref:.2f} s ({n / ref:.0f} objects/s), reirrad {ours:.2f} s "
                f"({n / ours:.0f} objects/s), {n_courses} courses proposed in {proposed:.2f} s",
                flush=True,
            )
            best_ref, best_ours = min(best_ref, ref), min(best_ours, ours)
            proposed_s = proposed if ours == best_ours else proposed_s
        if n_courses != 3:
            raise SystemExit(f"expected 3 proposed courses, got {n_courses}")
        print(f"load average: {os.getloadavg()[0]:.1f}")
        rate, ref_rate = n / best_ours, n / best_ref
        print(
            f"objects={n} objects_per_s={rate:.1f} storescp_ratio={rate / ref_rate:.2f} "
            f"proposed_s={proposed_s:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
