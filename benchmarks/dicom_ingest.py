"""Ingest speed of the DICOM node against dcmtk's storescp, on loopback, in one run.

Writes a three-course phantom with enough CT slices for about 600 objects, then sends the
same files with dcmtk's ``storescu`` (one association, as a planning-system export does) to

1. dcmtk's ``storescp`` writing into a folder (the reference receiver),
2. a bare pynetdicom Storage SCP in this process (the node's AE settings and TCP_NODELAY, a
   C-STORE handler that only answers success): the ceiling of any pynetdicom receiver, and
3. reirrad's Storage SCP (:class:`reirrad.io.dicom_node.StorageSCP`, in this process:
   header summary, atomic spool write with fsync, duplicate check),

``--repeat`` times each, alternating, and keeps each receiver's best run (the machine is
shared).  After reirrad's run it groups the spool into proposed courses with an idle time of
0 s: ``proposed_s`` is the time from the last object received to the proposals; a real
listener adds its idle time (default 30 s) to that.

Registration into the registry's content-addressed store and SQLite database (a fresh data
folder) is included, queued as ``dicom_listen`` queues it (``RegistrationQueue``: once the
node has received nothing for ``--pause`` s; 0 registers at once, beside the receiving):
reirrad's time runs until the last object is registered.  For both
pynetdicom receivers it also prints the process CPU time per object (``time.process_time``
over the receiving, best run; the sender is another process): unlike wall time it hardly
depends on what else the shared machine runs.  reirrad's is split into the receiving threads
and the registration (``time.thread_time`` of the registering thread).

Before the last line: ``pynetdicom no-op: X objects/s (ratio Y of storescp)``, after the rate
of reirrad as the sender sees it (until its last object is acknowledged; registration then
follows, once the node pauses, ``--pause``).
Last line: ``objects=N objects_per_s=R storescp_ratio=Q proposed_s=T``.

Usage: ``python benchmarks/dicom_ingest.py [--slices 196] [--repeat 2] [--pause 0.5]``
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


def run_noop(folders: list[Path]) -> tuple[float, int, float]:
    """A pynetdicom SCP with the node's AE settings whose C-STORE handler only answers
    success; return (wall time, objects, process CPU seconds)."""
    from pynetdicom import evt

    from reirrad.io.dicom_node import no_delay, storage_ae

    received = [0]

    def on_c_store(event) -> int:
        received[0] += 1
        return 0x0000

    ae = storage_ae("NOOP")
    handlers = [(evt.EVT_CONN_OPEN, no_delay), (evt.EVT_C_STORE, on_c_store)]
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
    try:
        cpu = time.process_time()
        elapsed = storescu(server.server_address[1], "NOOP", folders)
        cpu = time.process_time() - cpu
    finally:
        server.shutdown()
    return elapsed, received[0], cpu


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


def run_reirrad(
    folders: list[Path], work: Path, department, pause_s: float
) -> tuple[float, int, float, int, float, float, float]:
    """Receive, spool and register (as ``dicom_listen`` does: receiving threads queue the
    spooled paths, this thread registers them in batches meanwhile); the time runs until the
    last object is registered.  Returns (wall time, objects registered, proposal time,
    courses, process CPU seconds until the last registration, CPU seconds registering, the
    sender's wall time)."""
    import threading

    from reirrad.io.dicom_node import AllowedPeer, NodeConfig, StorageSCP
    from reirrad.pipelines.dicom_intake import IntakeMonitor, RegistrationQueue
    from reirrad.web.registry import dicom_intake
    from reirrad.web.registry.models import ReceivedObject, StoredObject

    ReceivedObject.objects.all().delete()
    StoredObject.objects.filter(kind="dicom").delete()
    spool = work / "spool"
    shutil.rmtree(spool, ignore_errors=True)
    pending = RegistrationQueue(pause_s=pause_s)
    scp = StorageSCP(
        NodeConfig(spool=spool, port=0, allowed=(AllowedPeer("BENCH"),)),
        on_stored=lambda path, summary: pending.put(path),
    )
    port = scp.start()
    registered = 0
    register_cpu = 0.0
    sent: list[float] = []
    try:
        cpu = time.process_time()
        start = time.perf_counter()
        sender = threading.Thread(
            target=lambda: sent.append(storescu(port, "REIRRAD", folders)), daemon=True
        )
        sender.start()
        while sender.is_alive() or len(pending):
            batch = pending.take()  # as the listener: once the node has paused
            if batch:
                batch_cpu = time.thread_time()
                registered += dicom_intake.register_batch(batch, department)
                register_cpu += time.thread_time() - batch_cpu
            else:
                time.sleep(0.05)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        if not sent:
            raise SystemExit("storescu failed")
        print(
            f"  reirrad: sender done after {sent[0]:.2f} s ({scp.counts['stored'] / sent[0]:.0f} "
            f"objects/s), last object registered after {elapsed:.2f} s",
            flush=True,
        )
        start = time.perf_counter()
        courses = IntakeMonitor(scp, idle_seconds=0.0).poll(now=float("inf"))
        for course in courses:
            dicom_intake.propose(course, department)
        proposed = time.perf_counter() - start
    finally:
        scp.stop()
    if registered != scp.counts["stored"]:
        raise SystemExit(f"registered {registered} of {scp.counts['stored']} objects")
    return elapsed, registered, proposed, len(courses), cpu, register_cpu, sent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=196, help="CT slices per course")
    parser.add_argument("--repeat", type=int, default=2, help="runs per receiver (best kept)")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.5,
        help="register once the node has received nothing for this long (s; 0: at once)",
    )
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
        best_ref = best_noop = best_ours = best_sent = float("inf")
        cpu_noop = cpu_ours = cpu_register = float("inf")
        proposed_s, n_courses = float("nan"), 0
        for run in range(1, args.repeat + 1):
            ref, got = run_storescp(folders, work)
            if got != n:
                raise SystemExit(f"storescp stored {got} of {n} objects")
            noop, got, noop_cpu = run_noop(folders)
            if got != n:
                raise SystemExit(f"pynetdicom no-op received {got} of {n} objects")
            ours, stored, proposed, n_courses, ours_cpu, reg_cpu, ours_sent = run_reirrad(
                folders, work, department, args.pause
            )
            if stored != n:
                raise SystemExit(f"reirrad stored {stored} of {n} objects")
            print(
                f"run {run}: storescp {ref:.2f} s ({n / ref:.0f} objects/s), pynetdicom no-op "
                f"{noop:.2f} s ({n / noop:.0f} objects/s, CPU {1e3 * noop_cpu / n:.2f} ms/object), "
                f"reirrad {ours:.2f} s ({n / ours:.0f} objects/s, CPU {1e3 * ours_cpu / n:.2f} "
                f"ms/object of which registration {1e3 * reg_cpu / n:.2f}), {n_courses} courses "
                f"proposed in {proposed:.2f} s",
                flush=True,
            )
            best_ref, best_noop = min(best_ref, ref), min(best_noop, noop)
            best_ours, best_sent = min(best_ours, ours), min(best_sent, ours_sent)
            proposed_s = proposed if ours == best_ours else proposed_s
            cpu_noop = min(cpu_noop, noop_cpu)
            if ours_cpu < cpu_ours:
                cpu_ours, cpu_register = ours_cpu, reg_cpu
        if n_courses != 3:
            raise SystemExit(f"expected 3 proposed courses, got {n_courses}")
        print(f"load average: {os.getloadavg()[0]:.1f}")
        print(
            f"CPU per object (best run): reirrad {1e3 * cpu_ours / n:.2f} ms (receiving "
            f"{1e3 * (cpu_ours - cpu_register) / n:.2f} ms, registration "
            f"{1e3 * cpu_register / n:.2f} ms), pynetdicom no-op {1e3 * cpu_noop / n:.2f} ms"
        )
        rate, ref_rate, noop_rate = n / best_ours, n / best_ref, n / best_noop
        print(
            f"reirrad as the sender sees it (until its last object is acknowledged): "
            f"{n / best_sent:.1f} objects/s (ratio {n / best_sent / ref_rate:.2f} of storescp)"
        )
        print(
            f"pynetdicom no-op: {noop_rate:.1f} objects/s (ratio {noop_rate / ref_rate:.2f} "
            "of storescp)"
        )
        print(
            f"objects={n} objects_per_s={rate:.1f} storescp_ratio={rate / ref_rate:.2f} "
            f"proposed_s={proposed_s:.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
