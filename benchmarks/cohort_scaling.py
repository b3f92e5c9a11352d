"""Scaling of ``reirrad cohort run`` on a Dask LocalCluster, and the cost of a resume.

Run: ``.venv/bin/python benchmarks/cohort_scaling.py [--patients 40] [--workers 2]``

1. Writes ``--patients`` synthetic phantom patients (``reirrad.io.phantom_cohort``; 2-3
   courses each, about a second of work per patient), in parallel on the cluster; untimed.
2. ``serial_s``: the same patients through :func:`reirrad.pipelines.run.run_case` one after
   the other in this process, with the settings of a cohort task (one thread for reirrad's
   per-structure work and for SimpleITK, one OpenMP/BLAS thread as in a Dask worker, no
   explorer, course DVHs on), results discarded.
   One patient runs first, untimed, so both sides start with the modules imported.
3. ``parallel_s``: :func:`reirrad.pipelines.cohort.run_cohort` on a LocalCluster of
   ``--workers`` single-threaded worker processes, started (and warmed with the same
   imports) before the clock starts: resume keys (SHA-256 of every input file), one task per
   patient, per-patient Parquet parts written by the workers, compaction at the end.
4. ``resume_s``: the same call again on the complete output: every key matches, no cluster
   is started, only the tables are compacted again.

Last line: ``patients=N serial_s=S parallel_s=P workers=W efficiency=E resume_s=R`` with
``efficiency = S / (W P)``. Targets on a 2-core machine: efficiency >= 0.8, resume < 5 % of
S. The machine must be otherwise idle for the figure to mean anything; the CPU times printed
before the last line (serial process; workers + client during the parallel run) do not
depend on other programs, and their ratio bounds the efficiency an idle machine allows.
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

    import SimpleITK as sitk

    from reirrad.io.cohort_manifest import read_manifest
    from reirrad.io.phantom_cohort import cohort_specs, write_cohort_index, write_cohort_patient
    from reirrad.pipelines.cohort import cohort_client, run_cohort
    from reirrad.pipelines.run import run_case

    root = args.keep or Path(tempfile.mkdtemp(prefix="reirrad-cohort-bench-"))
    with cohort_client(workers=args.workers) as client:
        t = time.perf_counter()
        specs = cohort_specs(args.patients)
        written = client.gather(client.map(write_cohort_patient, specs, root=str(root)))
        manifest = write_cohort_index(root, written)
        print(f"wrote {args.patients} patients in {time.perf_counter() - t:.1f} s: {root}")
        entries = read_manifest(manifest)

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # as in a cohort task
        run_case(entries[0].case, explore=False, workers=1)  # warm-up, untimed
        t, cpu = time.perf_counter(), _cpu_seconds()
        for entry in entries:
            run_case(entry.case, explore=False, workers=1)
        serial = time.perf_counter() - t
        serial_cpu = _cpu_seconds() - cpu
        print(f"serial: {serial:.2f} s ({serial / len(entries):.2f} s per patient), "
              f"CPU {serial_cpu:.2f} s")  # fmt: skip

        client.run(_warm)
        out = root / "out"
        before = sum(client.run(_cpu_seconds).values()) + _cpu_seconds()
        t = time.perf_counter()
        result = run_cohort(entries, out, client=client)
        parallel = time.perf_counter() - t
        parallel_cpu = sum(client.run(_cpu_seconds).values()) + _cpu_seconds() - before
        counts = result.counts
        print(f"parallel: {parallel:.2f} s on {args.workers} workers, {counts}")
        # CPU time does not depend on other programs sharing the cores: serial CPU over
        # the CPU of workers + client is the efficiency an idle machine would allow
        print(f"parallel CPU (workers + client): {parallel_cpu:.2f} s; "
              f"serial/parallel CPU = {serial_cpu / parallel_cpu:.2f}")  # fmt: skip
        if counts.get("ok", 0) != len(entries):
            raise SystemExit(f"not every patient ran: {counts}")

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
