"""Run a cohort of cases on Dask distributed: one task per patient, Parquet out, resumable.

Each task runs :func:`reirrad.pipelines.run.run_case` with one thread (the parallelism is
Dask's: one task per worker thread) on a worker that reads its own inputs and writes its
own Parquet parts (:mod:`reirrad.io.cohort_store`); only a small :class:`PatientSummary`
travels back to the client, never a dose grid.

Resume key of a patient: SHA-256 over its input files (the case file and every DICOM file it
names: :func:`reirrad.io.cohort_manifest.case_input_files`), the run parameters and the
reirrad version. A patient whose stored run row has the same key and status ``ok`` (or
``failed``: an :class:`~reirrad.errors.InputError` repeats on the same inputs) and whose
parts are all present is skipped; any other patient is run. The keys of patients with a
stored row are computed on the client before a cluster is started, so a resume of a complete
run starts no cluster; a patient without a stored row hashes its inputs in its own task.

Isolation: a patient whose input is refused records its one-line InputError message (status
``failed``); any other exception records its type and message (status ``error``); the run
goes on. A worker that dies is replaced by its nanny and Dask re-runs its task elsewhere
(``distributed.scheduler.allowed-failures``); the atomic writes leave no half-written file.

Peak memory per patient: the peak resident set size (VmHWM) of the worker process while the
patient ran, reset before each patient through ``/proc/self/clear_refs`` (Linux); where that
reset is not possible, ``resource.getrusage`` ``ru_maxrss`` of the worker process so far (an
upper bound). The ``memory_method`` column says which.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from reirrad.errors import InputError
from reirrad.io import cohort_store as store
from reirrad.io.cohort_manifest import CohortEntry, case_input_files, hash_files
from reirrad.pipelines.cohort_tables import TABLES

__all__ = [
    "RUN_COLUMNS",
    "CohortParameters",
    "CohortResult",
    "CohortStatus",
    "PatientSummary",
    "PatientTask",
    "cohort_client",
    "plan_cohort",
    "run_cohort",
    "run_patient",
]

RUN_TABLE = "run"
RUN_COLUMNS: dict[str, str] = {
    "patient": "string", "case": "string", "input_sha256": "string",
    "n_input_files": "int64", "reirrad_version": "string", "parameters": "string",
    "status": "string", "error_type": "string", "message": "string", "seconds": "float64",
    "peak_memory_mib": "float64", "memory_method": "string", "worker": "string",
    "run_id": "string", "finished_utc": "string",
}  # fmt: skip
#: Stored statuses a resume keeps (an ``error`` may be transient and is run again).
FINAL = ("ok", "failed")


@dataclass(frozen=True)
class CohortParameters:
    """Options of every patient's :func:`run_case` (part of the resume key).

    ``methods``: structure-level conversion method (``None``: the case's); ``constraint_sets``:
    extra packaged constraint sets; ``dvhs``: store every course's DVHs too.
    """

    methods: str | None = None
    constraint_sets: tuple[str, ...] = ()
    dvhs: bool = True

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class PatientTask:
    """What a worker needs for one patient (small: paths and strings only)."""

    patient: str
    case: str
    #: Resume key; ``None``: computed by the task itself (no stored row to compare with).
    key: str | None
    n_input_files: int
    out: str
    parameters: CohortParameters
    run_id: str


@dataclass(frozen=True)
class PatientSummary:
    """What comes back from a worker: the run-table row's essentials."""

    patient: str
    status: str
    message: str | None
    seconds: float
    peak_memory_mib: float | None
    worker: str
    #: CPU seconds of the task's thread and of its whole worker process while it ran
    #: (``time.thread_time`` / ``time.process_time``; the difference is the worker's own
    #: communication and bookkeeping threads); not stored, for measurement only.
    thread_cpu_s: float = 0.0
    process_cpu_s: float = 0.0


@dataclass(frozen=True)
class CohortStatus:
    """Progress of a cohort run (passed to the progress callback)."""

    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    running: int = 0
    dashboard: str | None = None
    #: The Dask client (``None`` when nothing runs); lets a caller query the cluster.
    client: object | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CohortResult:
    """A finished cohort run."""

    run_id: str
    summaries: tuple[PatientSummary, ...]
    skipped: tuple[str, ...]
    tables: dict[str, Path]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {"skipped": len(self.skipped)}
        for s in self.summaries:
            out[s.status] = out.get(s.status, 0) + 1
        return out


def _version() -> str:
    from reirrad import __version__

    return __version__


def patient_key(entry: CohortEntry, parameters: CohortParameters) -> tuple[str, int]:
    """The resume key of a patient and the number of input files it covers."""
    files = case_input_files(entry.case)
    content = hash_files(files, root=entry.case.parent)
    text = f"{content}\n{parameters.as_json()}\nreirrad {_version()}"
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest(), len(files)


def plan_cohort(
    entries: Sequence[CohortEntry],
    out: str | Path,
    parameters: CohortParameters,
    run_id: str,
) -> tuple[list[PatientTask], list[str]]:
    """Split a cohort into tasks to run and patients whose stored results are current."""
    stored = {row["patient"]: row for row in store.read_parts(out, RUN_TABLE, RUN_COLUMNS)}
    # only a patient with a stored row can be current: hash those here (a resume of a
    # complete run then starts no cluster); the others hash their inputs in their own task,
    # in parallel, instead of serially on the client while the workers wait (about 1 s for
    # the 40-patient synthetic cohort). hashlib releases the GIL, so threads overlap the I/O.
    known = [e for e in entries if e.patient in stored]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        keys = dict(zip([e.patient for e in known],
                        pool.map(lambda e: patient_key(e, parameters), known), strict=True))  # fmt: skip
    tasks, skipped = [], []
    for entry in entries:
        row = stored.get(entry.patient)
        key, n_files = keys.get(entry.patient, (None, 0))
        current = row is not None and row["input_sha256"] == key and row["status"] in FINAL
        if current and row["status"] == "ok":
            current = all(store.part_path(out, t, entry.patient).is_file() for t in TABLES)
        if current:
            skipped.append(entry.patient)
        else:
            tasks.append(
                PatientTask(entry.patient, str(entry.case), key, n_files, str(out),
                            parameters, run_id)
            )  # fmt: skip
    return tasks, skipped


# --------------------------------------------------------------------------------------
# On the worker
# --------------------------------------------------------------------------------------


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs`` value 5); ``False`` if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_mib(reset: bool) -> tuple[float | None, str]:
    if reset:
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0, "VmHWM after clear_refs reset"
        except OSError:
            pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "ru_maxrss (process)"
    except (ImportError, OSError):
        return None, "unavailable"


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def run_patient(task: PatientTask) -> PatientSummary:
    """Run one patient and store its parts and run row; never raises for a patient's fault."""
    from reirrad.pipelines.cohort_tables import case_run_rows
    from reirrad.pipelines.run import run_case

    _single_threaded()
    reset = _reset_peak()
    start, cpu = time.perf_counter(), (time.thread_time(), time.process_time())
    if task.key is None:
        key, n_files = patient_key(CohortEntry(task.patient, Path(task.case)), task.parameters)
        task = replace(task, key=key, n_input_files=n_files)
    status, error_type, message = "ok", None, None
    try:
        p = task.parameters
        run = run_case(
            task.case, methods=p.methods, constraint_sets=list(p.constraint_sets) or None,
            explore=False, dvhs=p.dvhs, workers=1,
        )  # fmt: skip
        for table, rows in case_run_rows(task.patient, run).items():
            store.write_part(task.out, table, task.patient, rows, TABLES[table])
    except InputError as error:
        status, error_type, message = "failed", "InputError", " ".join(str(error).split())
    except Exception as error:  # noqa: BLE001 - one patient's fault must not stop the cohort
        status, error_type = "error", type(error).__name__
        message = " ".join(f"{type(error).__name__}: {error}".split())
    if status != "ok":
        store.remove_parts(task.out, TABLES, task.patient)
    seconds = time.perf_counter() - start
    peak, method = _peak_mib(reset)
    worker = _worker_name()
    _write_run_row(task, status, error_type, message, seconds, peak, method, worker)
    thread_cpu, process_cpu = time.thread_time() - cpu[0], time.process_time() - cpu[1]
    return PatientSummary(
        task.patient, status, message, seconds, peak, worker, thread_cpu, process_cpu
    )


def _write_run_row(task, status, error_type, message, seconds, peak, method, worker) -> None:
    row = {
        "patient": task.patient, "case": task.case, "input_sha256": task.key,
        "n_input_files": task.n_input_files, "reirrad_version": _version(),
        "parameters": task.parameters.as_json(), "status": status, "error_type": error_type,
        "message": message, "seconds": seconds, "peak_memory_mib": peak,
        "memory_method": method, "worker": worker, "run_id": task.run_id,
        "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    # written last: a patient's run row is present only once all its parts are
    store.write_part(task.out, RUN_TABLE, task.patient, [row], RUN_COLUMNS)


def _single_threaded() -> None:
    """One thread per task: Dask runs one task per worker thread."""
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    except ImportError:  # pragma: no cover - SimpleITK is a dependency
        pass


# --------------------------------------------------------------------------------------
# On the client
# --------------------------------------------------------------------------------------


@contextmanager
def cohort_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[object]:
    """A Dask client: of the cluster at ``scheduler``, or of a new LocalCluster.

    The LocalCluster has ``workers`` single-threaded worker processes (default: one per
    CPU), each with a nanny that restarts it if it dies.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise InputError(
                f"cannot reach the Dask scheduler: {error}", source="--scheduler"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    n = workers or os.cpu_count() or 1
    settings = {
        "distributed.nanny.pre-spawn-environ": _worker_environ(),
        # Dask's statistical profiler samples every task thread each 10 ms; with one patient
        # a task that cost about a fifth more CPU per patient (0.99 vs 0.82 s, measured on
        # the synthetic cohort), for a profile the cohort runner never shows.
        "distributed.worker.profile.enabled": False,
        # Fixed costs that run for as long as the cluster does, in the client process (where
        # a LocalCluster's scheduler lives) and in each worker: the event-loop blocking check
        # every 20 ms and the psutil system monitor every 500 ms (for the dashboard's plots).
        # Measured on an idle 2-worker cluster: 0.049 CPU-s/s in the client+scheduler and
        # 0.040 in the workers with the defaults, 0.015 and 0.014 with these. The workers'
        # memory monitor (pause/terminate) has its own interval and is not changed.
        "distributed.admin.tick.interval": "200ms",
        "distributed.admin.system-monitor.interval": "5s",
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=40,
        )  # fmt: skip
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def _worker_environ() -> dict:
    """The nannies' worker environment without ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it (65536) so that workers return freed memory to the system; setting it also
    turns off glibc's adaptive mmap threshold, so each of reirrad's large temporary arrays
    is mapped and faulted in afresh. Measured here: 8x the page faults and about a third
    more CPU per patient. The other settings (one OpenMP/BLAS thread) are kept.
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


def _error_summary(task: PatientTask, error: BaseException) -> PatientSummary:
    """Record a task the cluster could not finish (e.g. its workers kept dying)."""
    message = " ".join(f"{type(error).__name__}: {error}".split())
    _write_run_row(task, "error", type(error).__name__, message, 0.0, None, "unavailable", "")
    return PatientSummary(task.patient, "error", message, 0.0, None, "")


def run_cohort(
    entries: Sequence[CohortEntry],
    out: str | Path,
    *,
    parameters: CohortParameters | None = None,
    client: object | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    progress: Callable[[CohortStatus], None] | None = None,
) -> CohortResult:
    """Run every patient not already current in ``out``; compact the tables at the end.

    Parameters
    ----------
    entries
        The cohort (:func:`reirrad.io.cohort_manifest.read_manifest`).
    out
        Output folder (shared by client and workers: a shared file system).
    client
        An existing ``distributed.Client``; else one is made by :func:`cohort_client` with
        ``scheduler`` / ``workers``, and only when some patient needs running.
    retries
        Re-runs of a task whose execution raised (a patient's own errors are caught
        inside the task and recorded, so this covers the task machinery only).
    progress
        Called with a :class:`CohortStatus` when the run starts and as patients finish.
    """
    parameters = parameters or CohortParameters()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store.remove_stale_temporaries(out)
    start = time.perf_counter()
    run_id = uuid.uuid4().hex[:12]
    tasks, skipped = plan_cohort(entries, out, parameters, run_id)
    summaries: list[PatientSummary] = []
    if tasks:
        if client is None:
            with cohort_client(scheduler, workers) as made:
                summaries = _submit(made, tasks, skipped, len(entries), retries, progress)
        else:
            summaries = _submit(client, tasks, skipped, len(entries), retries, progress)
    elif progress is not None:
        progress(CohortStatus(len(entries), len(skipped), done=len(skipped)))
    tables = store.compact(out, {**TABLES, RUN_TABLE: RUN_COLUMNS})
    return CohortResult(
        run_id, tuple(summaries), tuple(skipped), tables, time.perf_counter() - start
    )


def _submit(client, tasks, skipped, total, retries, progress) -> list[PatientSummary]:
    from distributed import as_completed

    futures = {
        client.submit(run_patient, task, key=f"reirrad-{task.patient}-{task.run_id}",
                      pure=False, retries=retries): task
        for task in tasks
    }  # fmt: skip
    dashboard = getattr(client, "dashboard_link", None)
    state = {"done": len(skipped), "failed": 0}

    def report() -> None:
        if progress is None:
            return
        try:
            # tasks assigned to a worker (processing) include queued ones: cap at the threads
            busy = sum(len(keys) for keys in client.processing().values())
            running = min(busy, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - progress display only
            running = 0
        progress(CohortStatus(total, len(skipped), state["done"], state["failed"],
                              running, dashboard, client))  # fmt: skip

    report()
    summaries = []
    try:
        for future in as_completed(futures):
            task = futures[future]
            try:
                summary = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after many deaths
                summary = _error_summary(task, error)
            summaries.append(summary)
            state["done" if summary.status == "ok" else "failed"] += 1
            report()
    except KeyboardInterrupt:
        # parts already written stay (each is complete); the next run does the rest
        client.cancel(list(futures))
        raise
    return summaries
