"""reirrad's voxel-wise cumulative EQD2 on two real Eclipse plans against an independent
point-sampling calculation (``tests/realplan_oracle.py``).

Each plan is a two-course case in one frame (identity mapping): course 1 the plan scaled to
a conventional course (prostate 46 Gy / 23 fx as planned, breast 50 Gy / 25 fx), course 2
the same RTDOSE rescaled to 24 Gy in 4 fractions at the prescription; alpha/beta 10 Gy in
targets and 3 Gy elsewhere, 50 % recovery of course 1 outside targets.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/real_plan_check.py [--end-cap none]``

``--end-cap half_slice`` (default): the oracle extends structures by half a contour spacing
beyond their outer contours, the structure model of reirrad's accumulation; ``none``: the
structures stop at their outer contours (as Eclipse's DVHs), so small structures differ by
their definition. ``--subvoxel`` adds reirrad's DVH of the same cumulative map with the
sub-voxel method forced for every structure (diagnosis of the voxel method).

Prints the table (structure, metric, reirrad, oracle, difference in % of the oracle, and for
quantiles the oracle's volume share at reirrad's dose); the last line is
``structures=N metrics=N max_abs_diff_pct=X within_3pct=N/M``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import realplan_oracle as ro  # noqa: E402

from reirrad.pipelines.accumulate import accumulate_case  # noqa: E402


def _subvoxel_metrics(voxel, name: str) -> dict[str, float]:
    """reirrad's DVH of the run's cumulative map with the sub-voxel method forced."""
    from reirrad.core.accumulate import effective_sum
    from reirrad.core.dvh import compute_dvh
    from reirrad.core.geometry import Dose, DoseKind
    from reirrad.core.tissue import structure_tissue

    maps = voxel.maps
    region = maps.regions[name]
    structure, grid = maps.contours[name]
    _, occupancy = maps.occupancy[name]
    ab, recovered = structure_tissue(maps.tissue, region, occupancy)
    values = effective_sum(tuple(c.box(region.box) for c in maps.courses), ab, recovered)
    dose = Dose(grid, values, DoseKind.EFFECTIVE, None, "EQD2", {})
    dvh = compute_dvh(dose, structure, voxel_method_above=10**9, max_samples=3_000_000)
    return {m: float(dvh.metric(m)) for m in ro.METRICS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end-cap", choices=("half_slice", "none"), default="half_slice")
    parser.add_argument("--subvoxel", action="store_true")
    args = parser.parse_args(argv)
    rows: list[ro.Row] = []
    extra = []
    with tempfile.TemporaryDirectory() as tmp:
        for plan in ro.PLANS:
            root = Path(tmp) / plan.name
            case = ro.write_case(plan, root)
            start = time.perf_counter()
            voxel = accumulate_case(case, keep_maps=args.subvoxel)
            t_reirrad = time.perf_counter() - start
            start = time.perf_counter()
            oracle = ro.oracle_all(root, plan, end_cap=args.end_cap, keep_samples=True)
            t_oracle = time.perf_counter() - start
            print(f"{plan.name}: reirrad {t_reirrad:.1f} s, oracle {t_oracle:.1f} s")
            rows.extend(ro.compare(plan.name, voxel, oracle))
            if args.subvoxel:
                for name, result in oracle.items():
                    sub = _subvoxel_metrics(voxel, name)
                    for m in ro.METRICS:
                        diff = 100 * (sub[m] - result.metrics[m]) / result.metrics[m]
                        extra.append(
                            f"{plan.name:22s} {name:16s} {m:6s} {sub[m]:9.3f} {diff:+7.2f}"
                        )
    print(f"\noracle end caps: {args.end_cap}")
    print(ro.table(rows))
    if extra:
        print("\nreirrad sub-voxel DVH of the same map vs the oracle (value, diff %):")
        print("\n".join(extra))
    structures = len({(r.plan, r.structure) for r in rows})
    worst = max(abs(r.diff_pct) for r in rows)
    within = sum(abs(r.diff_pct) <= 3.0 for r in rows)
    print(
        f"structures={structures} metrics={len(ro.METRICS)} max_abs_diff_pct={worst:.2f} "
        f"within_3pct={within}/{len(rows)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
