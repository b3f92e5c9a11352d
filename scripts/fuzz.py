#!/usr/bin/env python
"""Long fuzz run of reirrad's CLI: mutated inputs, one subprocess each, an outcome table.

    python scripts/fuzz.py --runs 1000 --seed 1 [--jobs 2] [--out table.md]
    python scripts/fuzz.py --seed 1 --case 17 --keep        # reproduce case 17 of seed 1
    python scripts/fuzz.py --subset                          # the CI subset (tests/fuzz)
    python scripts/fuzz.py --subset-case 'ID' --keep         # one CI subset case

Prints a table (rows: mutation class; columns: runs, refusal, accepted-ok, accepted-WRONG,
crash, hang, memory, multi-line), the failing cases with the command that reproduces each,
and, last line, ``runs=N refusal=N accepted_ok=N accepted_wrong=N crash=N hang=N memory=N
multiline=N``.  Exit code 0 (the table is the result, failures included).
See tests/fuzz/README.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "src"))

from fuzz import catalog, runner  # noqa: E402
from fuzz.model import FAILING, OUTCOMES, Outcome  # noqa: E402

_KEYS = {
    "refusal": "refusal",
    "accepted-ok": "accepted_ok",
    "accepted-WRONG": "accepted_wrong",
    "crash": "crash",
    "hang": "hang",
    "memory": "memory",
    "multi-line": "multiline",
}


def table(results: list[Outcome]) -> str:
    """Markdown table of outcomes per mutation class, with a total row."""
    by_class: dict[str, Counter] = {}
    for r in results:
        by_class.setdefault(r.mutation_class, Counter())[r.outcome] += 1
    header = ["mutation class", "runs", *OUTCOMES]
    rows = []
    total: Counter = Counter()
    for name in sorted(by_class):
        counts = by_class[name]
        total += counts
        rows.append([name, str(sum(counts.values())), *[str(counts[o]) for o in OUTCOMES]])
    rows.append(["**total**", str(sum(total.values())), *[str(total[o]) for o in OUTCOMES]])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join(lines)


def summary(results: list[Outcome]) -> str:
    counts = Counter(r.outcome for r in results if r.outcome in _KEYS)
    return f"runs={len(results)} " + " ".join(f"{key}={counts[o]}" for o, key in _KEYS.items())


def reproduce(args: argparse.Namespace, case: catalog.FuzzCase, index: int | None) -> str:
    script = "python scripts/fuzz.py"
    if index is None:
        return f"{script} --subset-case {shlex.quote(case.case_id)} --keep"
    return f"{script} --seed {args.seed} --case {index} --keep"


def failures(args, cases, results, indices) -> str:
    lines = []
    for case, result, index in zip(cases, results, indices, strict=True):
        if result.outcome in FAILING or result.outcome == "build-error":
            lines.append(
                f"- [{result.outcome}] `{case.case_id}` ({result.expect or '-'} expected): "
                f"{result.description}\n  - {result.detail or '(no detail)'}\n"
                f"  - reproduce: `{reproduce(args, case, index)}` "
                f"(runs `{result.extra.get('command', '')}` in the kept folder)"
            )
    return "\n".join(lines) if lines else "(none)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="RLIMIT_AS per run")
    parser.add_argument("--out", type=Path, help="also write the table and failures here")
    parser.add_argument("--case", type=int, help="run only this index of the seed's run")
    parser.add_argument("--subset", action="store_true", help="run the CI subset instead")
    parser.add_argument("--subset-case", help="run one CI subset case by id")
    parser.add_argument("--keep", action="store_true", help="keep the mutated inputs")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    if args.subset_case:
        cases, indices = [catalog.find_subset_case(args.subset_case)], [None]
    elif args.subset:
        cases = catalog.subset()
        indices = [None] * len(cases)
    elif args.case is not None:
        cases, indices = [catalog.case_at(args.seed, args.case)], [args.case]
    else:
        cases, indices = catalog.generate(args.seed, args.runs), list(range(args.runs))

    root = Path(__import__("tempfile").mkdtemp(prefix="reirrad-fuzz-")) if args.keep else None
    start = time.monotonic()

    def progress(number: int, result: Outcome) -> None:
        if not args.quiet:
            print(
                f"[{number}/{len(cases)}] {result.outcome:<14} {result.seconds:5.1f} s "
                f"{result.case_id}",
                file=sys.stderr,
                flush=True,
            )

    results = runner.run_many(
        cases,
        jobs=args.jobs,
        timeout=args.timeout,
        memory_bytes=int(args.memory_gib * runner.GIB),
        root=root,
        keep=args.keep,
        progress=progress,
    )
    elapsed = time.monotonic() - start
    if args.keep:
        for result in results:
            print(
                f"kept {result.case_id}: cd {result.extra.get('work', '?')} && "
                f"{result.extra.get('command', '')}"
            )
            print(f"  {result.outcome}: {result.description}\n  {result.detail}")
    seed_text = "CI subset" if args.subset or args.subset_case else f"seed {args.seed}"
    report = "\n\n".join(
        [
            f"reirrad fuzz: {len(results)} runs, {seed_text}, timeout {args.timeout:g} s, "
            f"memory limit {args.memory_gib:g} GiB, {args.jobs} jobs, {elapsed:.0f} s",
            table(results),
            "Failing cases:\n\n" + failures(args, cases, results, indices),
            summary(results),
        ]
    )
    print(report)
    if args.out is not None:
        args.out.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
