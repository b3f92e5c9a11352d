"""Cohort summary: per organ the distribution of cumulative EQD2, limits exceeded, nearest.

Reads the compacted tables of a cohort run (:mod:`reirrad.io.cohort_store`) and writes

* ``cohort_summary.html``: the run's status counts and failures, a box plot with every
  patient as a point per organ and statistic, the constraint table (patients evaluated,
  limit exceeded) and, per constraint, the patients nearest the limit (smallest margin);
* ``cohort_organs.csv``: per organ and statistic the count, min, quartiles and max of the
  voxel-wise cumulative EQD2 (with recovery);
* ``cohort_constraints.csv``: per constraint the patients evaluated and exceeding it.

The numbers are the stored results, summarised; nothing is recomputed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reirrad.io.cohort_store import read_table
from reirrad.present.figures import figure_svg

__all__ = ["cohort_summary_tables", "write_cohort_report"]

#: Statistics shown by default (a near-maximum and the mean); any metric of the
#: voxel_metrics table can be asked for.
DEFAULT_METRICS = ("D2%", "Dmean")
NEAREST = 3


def cohort_summary_tables(
    out: str | Path, metrics: Sequence[str] = DEFAULT_METRICS
) -> dict[str, pd.DataFrame]:
    """The summary tables: ``organs``, ``constraints``, ``nearest``, ``run``, ``values``."""
    voxel = read_table(out, "voxel_metrics")
    constraints = read_table(out, "constraints")
    run = read_table(out, "run")
    oars = voxel[(voxel["role"] == "organ_at_risk") & voxel["metric"].isin(list(metrics))]
    values = oars.assign(organ=oars["organ"].fillna(oars["structure"]))
    organs = (
        values.groupby(["organ", "metric"])["eqd2_gy"]
        .describe()[["count", "min", "25%", "50%", "75%", "max"]]
        .reset_index()
        .rename(columns={"25%": "q1", "50%": "median", "75%": "q3"})
    )
    keys = ["constraint_id", "organ", "metric", "quantity", "scope", "comparator", "limit"]
    counted = (
        constraints.assign(exceeded=constraints["status"] == "fail")
        .groupby(keys, dropna=False)
        .agg(patients=("patient", "nunique"), exceeded=("exceeded", "sum"))
        .reset_index()
    )
    nearest = (
        constraints.sort_values("margin")
        .groupby("constraint_id", sort=True)
        .head(NEAREST)[
            [
                "constraint_id",
                "patient",
                "structure",
                "course",
                "value",
                "limit",
                "margin",
                "status",
            ]
        ]  # fmt: skip
        .sort_values(["constraint_id", "margin"])
    )
    return {
        "organs": organs,
        "constraints": counted,
        "nearest": nearest,
        "run": run,
        "values": values,
    }


def _plot(values: pd.DataFrame, metric: str) -> Figure:
    """Box plot per organ with every patient as a jittered point (fixed seed)."""
    data = values[values["metric"] == metric]
    organs = sorted(data["organ"].unique())
    fig = Figure(figsize=(max(4.0, 1.4 * len(organs) + 1.5), 3.6))
    ax = fig.add_subplot()
    series = [data.loc[data["organ"] == o, "eqd2_gy"].to_numpy() for o in organs]
    ax.boxplot(series, showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)
    for position, points in enumerate(series, start=1):
        jitter = rng.uniform(-0.15, 0.15, len(points))
        ax.plot(position + jitter, points, "o", ms=3, alpha=0.6, color="tab:blue")
    ax.set_xticks(range(1, len(organs) + 1), organs, rotation=20, ha="right")
    ax.set_ylabel(f"cumulative EQD2 {metric} (Gy)")
    ax.set_title(f"{metric}: voxel-wise cumulative EQD2 with recovery, per patient")
    fig.tight_layout()
    return fig


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.2f}", na_rep="–", border=0)


def write_cohort_report(
    out: str | Path, dest: str | Path | None = None, metrics: Sequence[str] = DEFAULT_METRICS
) -> dict[str, Path]:
    """Write the HTML summary and CSV tables of the cohort in ``out`` (into ``dest``)."""
    out = Path(out)
    dest = Path(dest) if dest is not None else out
    dest.mkdir(parents=True, exist_ok=True)
    tables = cohort_summary_tables(out, metrics)
    run = tables["run"]
    counts = run["status"].value_counts().to_dict()
    problems = run.loc[run["status"] != "ok", ["patient", "status", "message"]]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>reirrad cohort summary</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style>",
        "</head><body><h1>Cohort summary</h1>",
        f"<p>{len(run)} patients: "
        + ", ".join(f"{html.escape(str(k))} {v}" for k, v in sorted(counts.items()))
        + "</p>",
    ]
    if len(problems):
        parts += ["<h2>Patients not assessed</h2>", _table(problems)]
    for metric in metrics:
        if (tables["values"]["metric"] == metric).any():
            svg = figure_svg(_plot(tables["values"], metric))
            parts.append(
                f"<h2>{html.escape(metric)}</h2><img src='data:image/svg+xml;base64,{svg}'>"
            )
    parts += [
        "<h2>Cumulative EQD2 per organ (Gy)</h2>", _table(tables["organs"]),
        "<h2>Constraints: patients evaluated and limit exceeded</h2>",
        _table(tables["constraints"]),
        f"<h2>Patients nearest each limit (smallest {NEAREST} margins)</h2>",
        _table(tables["nearest"]), "</body></html>",
    ]  # fmt: skip
    paths = {
        "html": dest / "cohort_summary.html",
        "organs_csv": dest / "cohort_organs.csv",
        "constraints_csv": dest / "cohort_constraints.csv",
    }
    paths["html"].write_text("\n".join(parts), encoding="utf-8")
    tables["organs"].to_csv(paths["organs_csv"], index=False)
    tables["constraints"].to_csv(paths["constraints_csv"], index=False)
    return paths
