"""Tables of the fractionation explorer's typed results (records for JSON, pandas for CSV).

The explorer (:mod:`reirrad.core.explore`) returns dataclasses; flat columns named
``eqd2:<label>`` and ``margin_eqd2:<label>`` exist only here, for output.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reirrad.core.explore import SCHEME_ROW_COLUMNS, ExplorerResult, SchemeEvaluation, SchemeRow

__all__ = ["explorer_frame", "explorer_records", "scheme_frame"]


def _record(row: SchemeRow, labels: tuple[str, ...]) -> dict[str, Any]:
    record: dict[str, Any] = {name: getattr(row, name) for name in SCHEME_ROW_COLUMNS}
    for label in labels:
        record[f"eqd2:{label}"] = row.cumulative_eqd2_gy[label]
        record[f"margin_eqd2:{label}"] = row.margin_eqd2_gy[label]
    return record


def explorer_records(result: ExplorerResult) -> list[dict[str, Any]]:
    """One flat dictionary per explored fraction number (Python scalars, NaN/inf kept).

    Keys: the scalar :class:`~reirrad.core.explore.SchemeRow` fields, then per constraint
    ``eqd2:<label>`` (cumulative statistic, Gy) and ``margin_eqd2:<label>`` (limit minus
    statistic, Gy).
    """
    return [_record(row, result.labels) for row in result.rows]


def explorer_frame(result: ExplorerResult) -> pd.DataFrame:
    """The explorer's rows as a table, columns as in :func:`explorer_records`."""
    columns: dict[str, Any] = {
        name: [row.binding for row in result.rows] if name == "binding" else result.column(name)
        for name in SCHEME_ROW_COLUMNS
    }
    for label in result.labels:
        columns[f"eqd2:{label}"] = result.cumulative_eqd2(label)
        columns[f"margin_eqd2:{label}"] = result.margin_eqd2(label)
    return pd.DataFrame(columns)


def scheme_frame(evaluation: SchemeEvaluation) -> pd.DataFrame:
    """One row per evaluated scheme: feasibility, binding constraint, headroom and values.

    Per constraint ``headroom_gy_per_fx:<label>`` (its highest dose per fraction minus the
    scheme's), ``eqd2:<label>`` (cumulative statistic) and ``margin_eqd2:<label>``.
    """
    ev = evaluation
    columns: dict[str, Any] = {
        "fractions": ev.fractions,
        "dose_per_fraction_gy": ev.dose_per_fraction_gy,
        "feasible": ev.feasible,
        "binding": [ev.labels[i] for i in ev.binding],
    }
    head = ev.limit_dose_per_fraction_gy - ev.dose_per_fraction_gy[:, None]
    for j, label in enumerate(ev.labels):
        columns[f"headroom_gy_per_fx:{label}"] = head[:, j]
        columns[f"eqd2:{label}"] = ev.statistic_eqd2_gy[:, j]
        columns[f"margin_eqd2:{label}"] = ev.limits_eqd2_gy[j] - ev.statistic_eqd2_gy[:, j]
    return pd.DataFrame(columns)
