"""Scaling of ``reirrad cohort run`` on a Dask LocalCluster, and the cost of a resume.

Run: ``.venv/bin/python benchmarks/cohort_scaling.py [--patients 40] [--workers 2]``

1. Writes ``--patients`` synthetic phantom patients (``reirrad.io.phantom_cohort``; 2-3
   courses each, about a second of work per patient), in parallel on the cluster; untimed.
2. ``serial_s``: the same per-patient work in this one process, in a loop: for each patient
   :func:`reirrad.pipelines.cohort.run_patient`, the very function a cohort task runs
   (hash the inputs for the resume key, :func:`reirrad.pipelines.run.run_case` with one
   thread for reirrad's per-structure work and for SimpleITK, no explorer, course DVHs on,
   write the patient's Parquet parts and run row), into a separate output folder, with one
   OpenMP/BLAS thread as in a Dask worker. One patient runs first, untimed, so both sides
   start with the modules imported.
3. ``parallel_s``: :func:`reirrad.pipelines.cohort.run_cohort` on a LocalCluster of
   ``--workers`` single-threaded worker processes, started (and warmed with the same
   imports) before the clock starts. Counted in P, on top of the per-patient work: planning
   (reading stored run rows; no hashing on a fresh run), submitting one task per patient,
   scheduling and the client's progress loop, and the compaction of every table at the end.
   Not counted on either side: starting processes and importing modules (the cluster start
   is printed separately; the serial side's imports fall in its untimed warm-up).
4. ``resume_s``: the same call again on the complete output: every key matches (the client
   hashes every input), no cluster is started, only the tables are compacted again.

Last line: ``patients=N serial_s=S parallel_s=P workers=W efficiency=E resume_s=R`` with
``efficiency = S / (W P)``. Targets on a 2-core machine: efficiency >= 0.8, resume < 5 % of
S. The machine must be otherwise idle for the figure to mean anything (the load average is
printed). The CPU times printed before the last line do not depend on other programs: the
serial CPU per patient, the task thread's and the worker process's CPU per patient
(``time.thread_time`` / ``time.process_time`` inside each task), the client's CPU (in a
LocalCluster the scheduler runs in the client process, so this includes it) and the
compaction alone; their ratio bounds the efficiency an idle machine allows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

# Like with like: Dask's nannies start every worker with one OpenMP/BLAS thread
# (distributed.nanny.pre-spawn-environ); the serial run in this process gets the same.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def _cpu_seconds() -> float:
    """User + system CPU time of this process (and its finished children)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _warm() -> None:
    import reirrad.pipelines.cohort_tables  # noqa: F401
    import reirrad.pipelines.run  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="write the cohort here and keep it")
    args = parser.parse_args()

    from reirrad.io.cohort_manifest import read_manifest
    from reirrad.io.cohort_store import compact
    from reirrad.io.phantom_cohort import cohort_specs, write_cohort_index, write_cohort_patient
    from reirrad.pipelines.cohort import (
        RUN_COLUMNS,
        RUN_TABLE,
        CohortParameters,
        cohort_client,
        plan_cohort,
        run_cohort,
        run_patient,
    )
    from reirrad.pipelines.cohort_tables import TABLES

    root = args.keep or Path(tempfile.mkdtemp(prefix="reirrad-cohort-bench-"))
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    t = time.perf_counter()
    with cohort_client(workers=args.workers) as client:
        print(f"cluster start: {time.perf_counter() - t:.2f} s (not counted)")
        t = time.perf_counter()
        specs = cohort_specs(args.patients)
        written = client.gather(client.map(write_cohort_patient, specs, root=str(root)))
        manifest = write_cohort_index(root, written)
        print(f"wrote {args.patients} patients in {time.perf_counter() - t:.1f} s: {root}")
        entries = read_manifest(manifest)

        params = CohortParameters()
        tasks, _ = plan_cohort(entries, root / "serial", params, "serial")
        run_patient(tasks[0])  # warm-up, untimed
        t, cpu = time.perf_counter(), _cpu_seconds()
        for task in tasks:
            run_patient(task)
        serial = time.perf_counter() - t
        serial_cpu = _cpu_seconds() - cpu
        n = len(entries)
        print(f"serial: {serial:.2f} s ({serial / n:.3f} s per patient), "
              f"CPU {serial_cpu:.2f} s ({serial_cpu / n:.3f} s per patient)")  # fmt: skip

        client.run(_warm)
        out = root / "out"
        workers_before = sum(client.run(_cpu_seconds).values())
        client_before = _cpu_seconds()
        t = time.perf_counter()
        result = run_cohort(entries, out, client=client, parameters=params)
        parallel = time.perf_counter() - t
        client_cpu = _cpu_seconds() - client_before
        workers_cpu = sum(client.run(_cpu_seconds).values()) - workers_before
        counts = result.counts
        print(f"parallel: {parallel:.2f} s on {args.workers} workers, {counts}")
        if counts.get("ok", 0) != n:
            raise SystemExit(f"not every patient ran: {counts}")
        thread = sum(s.thread_cpu_s for s in result.summaries)
        process = sum(s.process_cpu_s for s in result.summaries)
        print(
            f"task CPU per patient: thread {thread / n:.3f} s, worker process {process / n:.3f} s"
        )
        parallel_cpu = workers_cpu + client_cpu
        print(f"workers CPU {workers_cpu:.2f} s, client+scheduler CPU {client_cpu:.2f} s; "
              f"serial/parallel CPU = {serial_cpu / parallel_cpu:.2f}")  # fmt: skip
        t, cpu = time.perf_counter(), _cpu_seconds()
        compact(out, {**TABLES, RUN_TABLE: RUN_COLUMNS}, force=True)
        print(f"compaction alone: {time.perf_counter() - t:.2f} s, "
              f"CPU {_cpu_seconds() - cpu:.2f} s")  # fmt: skip

    t = time.perf_counter()
    again = run_cohort(entries, out)
    resume = time.perf_counter() - t
    print(f"resume: {resume:.2f} s, {again.counts} ({100 * resume / serial:.1f} % of serial)")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    efficiency = serial / (args.workers * parallel)
    print(
        f"patients={len(entries)} serial_s={serial:.2f} parallel_s={parallel:.2f} "
        f"workers={args.workers} efficiency={efficiency:.2f} resume_s={resume:.2f}"
    )


if __name__ == "__main__":
    main()
