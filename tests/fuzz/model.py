"""The records the fuzz suite passes around: a built case, a run and its outcome."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

#: The mutation makes the input wrong: it must be refused (one line, exit 2).
REFUSE = "refuse"
#: A harmless mutation: accepted or refused, but never a crash, hang or memory blow-up.
EITHER = "either"

REFUSAL = "refusal"
ACCEPTED_OK = "accepted-ok"
ACCEPTED_WRONG = "accepted-WRONG"
CRASH = "crash"
HANG = "hang"
MEMORY = "memory"
MULTILINE = "multi-line"

#: Table columns, in order.
OUTCOMES = (REFUSAL, ACCEPTED_OK, ACCEPTED_WRONG, CRASH, HANG, MEMORY, MULTILINE)
#: Outcomes that fail a run.
FAILING = frozenset({ACCEPTED_WRONG, CRASH, HANG, MEMORY, MULTILINE})

#: Text a process prints when an allocation fails (Python, numpy, C++ runtimes).
_MEMORY_SIGNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")


@dataclass(frozen=True)
class Built:
    """A mutated input set, ready to run: CLI arguments (relative to ``cwd``) and the record."""

    mutation_class: str
    description: str
    expect: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class RunResult:
    """What the CLI did: exit code (negative = killed by that signal), output, timeout."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float


@dataclass(frozen=True)
class Outcome:
    """A classified run of one fuzz case."""

    case_id: str
    mutation_class: str
    description: str
    expect: str
    args: tuple[str, ...]
    outcome: str
    detail: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def failed(self) -> bool:
        return self.outcome in FAILING


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def classify(run: RunResult, expect: str) -> tuple[str, str]:
    """Outcome of one run and a one-line detail (the error line, signal or exception).

    ``refusal``: exit 2 and stderr exactly one non-empty line starting with
    ``reirrad: error:`` (no traceback); ``accepted``: exit 0, wrong when ``expect`` is
    ``refuse``; ``hang``: timeout; ``memory``: an allocation failure or a SIGKILL;
    ``multi-line``: exit 2 with anything else on stderr; ``crash``: a traceback or any other
    exit code.
    """
    if run.timed_out:
        return HANG, f"no exit after {run.seconds:.0f} s"
    err = run.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    if run.returncode == -signal.SIGKILL:
        return MEMORY, _last_line(err) or "killed by SIGKILL"
    if run.returncode == 2 and len(lines) == 1 and lines[0].startswith("reirrad: error:"):
        return REFUSAL, lines[0][:300]  # a clean refusal, whatever it says
    if any(sign in err for sign in _MEMORY_SIGNS):
        return MEMORY, _last_line(err)
    if "Traceback" in err:
        return CRASH, _last_line(err)
    if run.returncode == 0:
        if expect == REFUSE:
            return ACCEPTED_WRONG, "exit 0 on an input that must be refused"
        return ACCEPTED_OK, ""
    if run.returncode == 2:
        first = lines[0][:200] if lines else "(empty stderr)"
        return MULTILINE, f"{len(lines)} lines on stderr: {first}"
    if run.returncode is not None and run.returncode < 0:
        return CRASH, f"killed by signal {signal.Signals(-run.returncode).name}"
    return CRASH, f"exit {run.returncode}: {_last_line(err)}"
