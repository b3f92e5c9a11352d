"""Fixed-seed fuzz subset of the CLI: every mutation class, one subprocess per case.

Every case must end as a one-line refusal (exit 2) or, for harmless mutations, be accepted;
never a crash, hang, memory blow-up, multi-line refusal, or a wrong input accepted.  The
cases run two at a time in one module fixture (only those selected), under a 2 GiB memory
limit and a 25 s timeout.  Known failures are listed in ``known_failures.py``.
"""

from __future__ import annotations

import os

import pytest

from . import catalog, runner
from .known_failures import reason
from .model import FAILING

CASES = catalog.subset()
JOBS = int(os.environ.get("REIRRAD_FUZZ_JOBS", "2"))
TIMEOUT_S = float(os.environ.get("REIRRAD_FUZZ_TIMEOUT", "25"))
MEMORY_BYTES = 2 * runner.GIB


def _param(case: catalog.FuzzCase):
    why = reason(case.case_id)
    marks = [pytest.mark.xfail(strict=False, reason=why)] if why else []
    return pytest.param(case, id=case.case_id, marks=marks)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """Run the selected cases of this module, ``JOBS`` at a time; outcomes by case id."""
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    root = tmp_path_factory.mktemp("fuzz")
    results = runner.run_many(
        selected, jobs=JOBS, timeout=TIMEOUT_S, memory_bytes=MEMORY_BYTES, root=root
    )
    return {outcome.case_id: outcome for outcome in results}


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fuzz_case(case, outcomes):
    outcome = outcomes[case.case_id]
    assert outcome.outcome != "build-error", outcome.description
    assert outcome.outcome not in FAILING, (
        f"{outcome.outcome} ({outcome.expect} expected): {outcome.description}\n"
        f"  {outcome.detail}\n"
        f"  reproduce: python scripts/fuzz.py --subset-case '{case.case_id}' --keep"
    )


def test_subset_covers_every_class():
    """The subset keeps at least one case of every mutation class."""
    classes = {m.mutation_class for _, m in catalog._all_mutations().values()}
    assert classes <= {c.mutation_class for c in catalog.subset()}
