"""A small cohort built from the real plans in ``../shared/data``, run with ``run_cohort``.

Run: ``.venv/bin/python benchmarks/cohort_real_plans.py [--out DIR] [--workers 2]``

No real multi-course patient is available offline (see ``../shared/data/README.md``), so
each "patient" is one of the two real single-course Eclipse plans (the prostate four-field
box and the breast boost) used as two courses in one frame, as in
``tests/pipelines/test_real_plans.py`` (``tests/pipelines/realplan_oracle.write_case``): the
plan's RTDOSE rescaled to course 1's dose, then to a second course of 20, 24 or 30 Gy in 4
fractions after 200, 730 or 1500 days. Six patients in all; organs at risk alpha/beta 3 Gy
with the ``marinova2026-fixed-50`` recovery rule, targets alpha/beta 10 Gy and none.

Writes ``DIR/cohort/manifest.csv``, the case folders, ``DIR/out/*.parquet`` and the cohort
summary (``DIR/out/cohort_summary.html``), and prints per patient the run status and the
organs' cumulative EQD2 D2% from the Parquet tables. The numbers of these plans are
checked against an independent calculation in tests/pipelines/test_real_plans.py.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "pipelines"))

import realplan_oracle as ro  # noqa: E402

SECOND_COURSE = ((20.0, 200), (24.0, 730), (30.0, 1500))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder to write (default: a temporary one)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not ro.DATA.is_dir():
        raise SystemExit(f"{ro.DATA} not found: the shared test data are needed")

    import pandas as pd

    from reirrad.io.cohort_manifest import read_manifest
    from reirrad.pipelines.cohort import run_cohort
    from reirrad.present.cohort import write_cohort_report

    root = args.out or Path(tempfile.mkdtemp(prefix="reirrad-real-cohort-"))
    cohort = root / "cohort"
    rows = []
    for plan in ro.PLANS:
        for dose, gap in SECOND_COURSE:
            patient = f"{plan.name}-{int(dose)}Gy-{gap}d"
            variant = dataclasses.replace(plan, c2_dose_gy=dose)
            case = ro.write_case(variant, cohort / patient, gap_days=gap)
            rows.append((patient, str(case.relative_to(cohort))))
    manifest = cohort / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows([("patient", "case"), *rows])

    t = time.perf_counter()
    result = run_cohort(read_manifest(manifest), root / "out", workers=args.workers)
    print(f"ran {len(rows)} patients in {time.perf_counter() - t:.1f} s: {result.counts}")
    write_cohort_report(root / "out")
    run = pd.read_parquet(root / "out" / "run.parquet")
    print(run[["patient", "status", "seconds", "peak_memory_mib", "message"]].to_string())
    voxel = pd.read_parquet(root / "out" / "voxel_metrics.parquet")
    table = voxel[(voxel["metric"] == "D2%") & (voxel["role"] == "organ_at_risk")].pivot_table(
        index="structure", columns="patient", values="eqd2_gy"
    )
    print("cumulative EQD2 D2% (Gy) of the organs at risk:")
    print(table.round(1).to_string())
    print(f"outputs: {root / 'out'}")


if __name__ == "__main__":
    main()
