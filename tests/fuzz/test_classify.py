"""The outcome classification of the fuzz runner, on hand-made runs (no subprocess)."""

from __future__ import annotations

import signal

import pytest

from .model import (
    ACCEPTED_OK,
    ACCEPTED_WRONG,
    CRASH,
    EITHER,
    HANG,
    MEMORY,
    MULTILINE,
    REFUSAL,
    REFUSE,
    RunResult,
    classify,
)


def run(returncode, stderr="", timed_out=False):
    return RunResult(returncode, "", stderr, timed_out, 1.0)


@pytest.mark.parametrize(
    ("result", "expect", "outcome"),
    [
        (run(2, "reirrad: error: case.yaml: courses[0].fractions: must be > 0\n"), REFUSE, REFUSAL),
        (run(2, "\nreirrad: error: x.dcm: DoseGridScaling: not finite\n\n"), REFUSE, REFUSAL),
        (run(0, "reirrad: warning: partial coverage\n"), EITHER, ACCEPTED_OK),
        (run(0), REFUSE, ACCEPTED_WRONG),
        (run(1, "Traceback (most recent call last):\n  ...\nValueError: x\n"), REFUSE, CRASH),
        (run(2, "Traceback (most recent call last):\nreirrad: error: x\n"), REFUSE, CRASH),
        (run(-signal.SIGSEGV), EITHER, CRASH),
        (run(3, "reirrad: error: x\n"), REFUSE, CRASH),
        (run(None, timed_out=True), REFUSE, HANG),
        (run(1, "Traceback ...\nMemoryError\n"), REFUSE, MEMORY),
        (run(-signal.SIGABRT, "terminate called after throwing 'std::bad_alloc'"), EITHER, MEMORY),
        (run(-signal.SIGKILL), REFUSE, MEMORY),
        (run(2, "reirrad: warning: w\nreirrad: error: e\n"), REFUSE, MULTILINE),
        (
            run(2, "Usage: reirrad lq [OPTIONS]\nTry 'reirrad lq --help'\nError: bad\n"),
            REFUSE,
            MULTILINE,
        ),
        (run(2, "error: e\n"), REFUSE, MULTILINE),
        (run(2, ""), REFUSE, MULTILINE),
    ],
)
def test_classify(result, expect, outcome):
    assert classify(result, expect)[0] == outcome


def test_clean_refusal_mentioning_memory_is_a_refusal():
    result = run(2, "reirrad: error: --fractions: 10^8 schemes would run out of memory\n")
    assert classify(result, REFUSE)[0] == REFUSAL
