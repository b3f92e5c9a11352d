"""Subset cases that fail on main today, while the fixes land (one place, for the lead).

Each id maps to the outcome seen on main. Emptied on 2026-11-30 once the readers, the strict
case files and the one coverage rule landed: every subset case passes.  ``test_fuzz_subset`` marks
these ``xfail(strict=False)``: they are reported (XFAIL, or XPASS once fixed) but do not fail
the run.  Remove an id when its fix is merged; every case not listed here must pass.
"""

from __future__ import annotations

KNOWN_FAILURES: dict[str, str] = {}


def reason(case_id: str) -> str | None:
    """Why a subset case is expected to fail today, or None."""
    outcome = KNOWN_FAILURES.get(case_id)
    return None if outcome is None else f"known failure on main ({outcome}); fix pending"
