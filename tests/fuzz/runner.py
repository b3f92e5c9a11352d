"""Run the CLI on a built fuzz case in a subprocess, under a memory limit and a timeout."""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import inputs
from .catalog import FuzzCase
from .model import Outcome, RunResult, classify

GIB = 1024**3
#: The CLI entry point, run as ``python -c CLI ARGS``.
CLI = "import sys; from reirrad.cli import run; sys.argv[0]='reirrad'; run()"
#: Output kept per stream (a mutation may make the CLI print without end).
MAX_OUTPUT = 1_000_000
#: Largest file a run may write.
MAX_FILE = 2 * GIB


def _limits(memory_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # a run that writes gigabytes (output or files) is a bug too: SIGXFSZ, a crash
        resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE, MAX_FILE))

    return apply


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    src = str(inputs.REPO / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env.update(
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        COLUMNS="100",
    )
    return env


def _read(path: Path) -> str:
    with open(path, "rb") as stream:
        return stream.read(MAX_OUTPUT).decode("utf-8", "replace")


def run_cli(args: Iterable[str], cwd: Path, *, timeout: float, memory_bytes: int) -> RunResult:
    """Run ``reirrad ARGS`` in ``cwd``; kill its whole process group at the timeout."""
    out_path, err_path = cwd / ".fuzz-stdout", cwd / ".fuzz-stderr"
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=_environment(),
            preexec_fn=_limits(memory_bytes),
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
    seconds = time.monotonic() - start
    return RunResult(process.returncode, _read(out_path), _read(err_path), timed_out, seconds)


def command_line(args: Iterable[str]) -> str:
    """The shell command that reproduces a run (from inside its work directory)."""
    return "reirrad " + " ".join(shlex.quote(a) for a in args)


def _safe(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", case_id)[:120]


def run_case(
    case: FuzzCase,
    root: Path,
    *,
    timeout: float = 60.0,
    memory_bytes: int = 4 * GIB,
    keep: bool = False,
) -> Outcome:
    """Build ``case`` under ``root``, run it, classify it; remove the inputs unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=_safe(case.case_id) + "-", dir=root))
    try:
        built = case.build(work)
    except Exception as error:  # a bug of the fuzz suite, not of reirrad: reported apart
        shutil.rmtree(work, ignore_errors=True)
        return Outcome(
            case.case_id, case.mutation_class, f"mutator failed: {error!r}", "", (), "build-error"
        )
    result = run_cli(built.args, work, timeout=timeout, memory_bytes=memory_bytes)
    outcome, detail = classify(result, built.expect)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return Outcome(
        case.case_id,
        built.mutation_class,
        built.description,
        built.expect,
        built.args,
        outcome,
        detail,
        result.seconds,
        extra={"work": str(work), "command": command_line(built.args)},
    )


def run_many(
    cases: list[FuzzCase],
    *,
    jobs: int = 2,
    timeout: float = 60.0,
    memory_bytes: int = 4 * GIB,
    root: Path | None = None,
    keep: bool = False,
    progress: Callable[[int, Outcome], None] | None = None,
) -> list[Outcome]:
    """Run cases ``jobs`` at a time (threads waiting on subprocesses); results in order."""
    own_root = root is None
    root = Path(tempfile.mkdtemp(prefix="reirrad-fuzz-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    if any(c.family != "option" or c.mutation.base == "phantom" for c in cases):
        inputs.phantom_dir()  # write the phantom once, before the threads need it
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [
                pool.submit(
                    run_case, c, root, timeout=timeout, memory_bytes=memory_bytes, keep=keep
                )
                for c in cases
            ]
            results = []
            for number, future in enumerate(futures, start=1):
                results.append(future.result())
                if progress is not None:
                    progress(number, results[-1])
        return results
    finally:
        if own_root and not keep:
            shutil.rmtree(root, ignore_errors=True)
