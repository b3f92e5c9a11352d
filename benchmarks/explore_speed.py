"""Benchmark: 10,000 candidate re-irradiation schemes against 30 synthetic organs at risk.

Each organ has 10^4-10^5 voxels (about 1.6 million in total) with a residual EQD2 and a
relative new dose per voxel; every organ has a Dmax and a Dmean limit and every third one
also a D2% limit.  The scheme grid is 20 fraction numbers (1-10, 25-34) x 500 doses per
fraction.  Timed: :func:`reirrad.core.explore.evaluate_schemes` (feasibility, binding
constraint, dose headroom and the Dmax/Dmean statistic values of every scheme) plus
:func:`reirrad.core.explore.explore` on the same organs.

With ``--phantom CASE.yaml`` the organs are those of a DICOM phantom case instead (e.g. the
head-and-neck phantom of ``benchmarks/accumulate_phantom.py --hn --cache DIR``, whose
``DIR/case.yaml`` has 30 structures on a 256 x 256 x 160 grid): residual EQD2 and relative
dose per voxel come from :func:`reirrad.pipelines.explore.explore_case` (voxel-wise path, newest
course re-planned; preparation timed separately), then the same 10,000 schemes are timed.

Run: ``.venv/bin/python benchmarks/explore_speed.py [--phantom CASE.yaml]``; the last line is
``schemes=<n> seconds=<x>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from reirrad.core.explore import (
    CumulativeConstraint,
    OrganAtRisk,
    Target,
    evaluate_schemes,
    explore,
)


def synthetic_organs(seed: int = 0, count: int = 30) -> list[OrganAtRisk]:
    rng = np.random.default_rng(seed)
    organs = []
    for k in range(count):
        size = int(rng.integers(10_000, 100_001))
        # a smooth-ish gradient: relative dose and residual correlated with position
        t = np.sort(rng.uniform(0.0, 1.0, size))
        r = np.clip(0.9 * t + rng.normal(0, 0.05, size), 0.0, None)
        residual = np.clip(35.0 * (1.0 - t) + rng.normal(0, 2.0, size), 0.0, None)
        constraints = [
            CumulativeConstraint("Dmax", 60.0 + k % 5),
            CumulativeConstraint("Dmean", 30.0 + k % 7),
        ]
        if k % 3 == 0:
            constraints.append(CumulativeConstraint("D2%", 55.0))
        ab = 2.0 if k % 2 else 3.0
        organs.append(
            OrganAtRisk(f"oar{k:02d}", ab, r, residual, tuple(constraints), voxel_volume_cc=0.027)
        )
    return organs


def phantom_organs(case_path: Path) -> tuple[list[OrganAtRisk], Target]:
    """Organs (voxel arrays) and target of a DICOM case, re-planning its newest course."""
    import yaml

    from reirrad.io.casefile import parse_case
    from reirrad.pipelines.explore import explore_case

    data = yaml.safe_load(case_path.read_text())
    targets = [s["name"] for s in data["structures"] if s["role"] == "target"]
    data["exploration"] = {"target": targets[0], "new_course": data["courses"][-1]["id"]}
    for course in data["courses"]:
        course.setdefault(
            "prescriptions",
            [{"target": targets[0], "dose_gy": 30.0, "fractions": course["fractions"]}],
        )
        course["dicom"] = _absolute(course["dicom"], case_path.parent)
    case = parse_case(data, source=str(case_path))
    start = time.perf_counter()
    outcome = explore_case(case)
    print(f"prepare (read, map, residual per voxel): {time.perf_counter() - start:.2f} s")
    return list(outcome.organs), outcome.result.target


def _absolute(dicom: dict, base: Path) -> dict:
    def fix(value):
        if isinstance(value, str) and not Path(value).is_absolute() and (base / value).exists():
            return str(base / value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    return fix(dicom)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phantom", type=Path, help="a DICOM case file (voxel-wise organs)")
    args = parser.parse_args()
    if args.phantom:
        organs, target = phantom_organs(args.phantom)
    else:
        organs, target = synthetic_organs(), Target(alpha_beta_gy=10.0)
    voxels = sum(o.relative_dose.size for o in organs)
    fractions = np.array(list(range(1, 11)) + list(range(25, 35)), dtype=float)
    doses = np.linspace(0.5, 25.0, 500)
    n_grid, d_grid = np.meshgrid(fractions, doses, indexing="ij")
    start = time.perf_counter()
    evaluation = evaluate_schemes(organs, n_grid.ravel(), d_grid.ravel())
    result = explore(organs, target)
    seconds = time.perf_counter() - start
    print(
        f"organs={len(organs)} voxels={voxels} constraints={len(evaluation.labels)} "
        f"feasible={int(evaluation.feasible.sum())} explored_rows={len(result.rows)}"
    )
    print(f"schemes={evaluation.fractions.size} seconds={seconds:.3f}")


if __name__ == "__main__":
    main()
