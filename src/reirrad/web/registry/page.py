"""What the assessment page shows beyond the verdicts, and the exports, stored at run time.

The page holds no presentation of its own: its tables are the report's own sections
(:func:`reirrad.present.report.build_report`, through the :class:`~reirrad.present.report.ReportData`
that :func:`~reirrad.present.report.write_report` returns, so nothing is built twice) and its
figures are the report's SVGs (:func:`reirrad.present.figures.figure_svg`). The EFFECTIVE
RTDOSE is written by :func:`reirrad.io.export.write_cumulative_rtdose`, the writer of
``reirrad accumulate --out``.

Why at run time, not per page view: a figure costs matplotlib seconds on this machine and a
page view must stay fast under load; and the outputs of a signed assessment must be the ones
it was signed with. So the worker stores every figure, CSV and the RTDOSE once in the
content-addressed store (with their SHA-256), and the page and the exports only read them.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reirrad.web.registry.models import StoredObject

#: Report sections the page shows (the report's own table rows, strings already formatted).
PAGE_SECTIONS = (
    "basis",
    "summary",
    "limits",
    "comparison",
    "not_evaluated",
    "sensitivity",
    "explorer",
    "dvh",
    "images",
    "assumptions",
    "voxel_assumptions",
    "notes",
)

#: Figures of the report the page shows, in its order: DVHs, dose planes, explorer.
PAGE_FIGURES = ("dvh", "images", "explorer")

#: Columns of the CSV exports: the keys of the report's table rows, in the page's order.
LIMIT_COLUMNS = ("structure", "id", "limit", "quantity", "value", "margin", "verdict", "depends")
STRUCTURE_COLUMNS = (
    "structure",
    "statistic",
    "role",
    "alpha_beta",
    "eqd2",
    "eqd2_no_recovery",
    "verdict",
)

#: The exports that come from the store, by their name in the URL.
EXPORTS = {
    "limits.csv": "text/csv",
    "structures.csv": "text/csv",
    "cumulative_eqd2_RD.dcm": "application/dicom",
}


def _plain(value: Any) -> Any:
    """JSON-ready copy (tuples to lists); the sections hold only strings, numbers, lists."""
    return json.loads(json.dumps(value, default=str))


def _cell(value: Any) -> Any:
    """A CSV cell: booleans (a verdict that changes across scenarios) as yes/no."""
    return ("yes" if value else "no") if isinstance(value, bool) else value


def table_csv(rows: list[Mapping[str, Any]], columns: tuple[str, ...]) -> bytes:
    """The rows of one of the page's tables as CSV, numbers as the page prints them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _store(data: bytes, media_type: str, name: str) -> str:
    return StoredObject.from_bytes(
        data, kind=StoredObject.Kind.RESULT, media_type=media_type, original_name=name
    ).sha256


def store_page(data: Any, run: Any, folder: Path) -> dict[str, Any]:
    """Store the page's figures and the exports of one run; return what the summary keeps.

    Parameters
    ----------
    data
        The run's :class:`reirrad.present.report.ReportData`.
    run
        The :class:`reirrad.pipelines.run.CaseRun` (its voxel-wise result gives the RTDOSE).
    folder
        Scratch folder for the RTDOSE writer.
    """
    sections = _plain({k: data.sections.get(k) for k in PAGE_SECTIONS})
    figures = []
    for key in PAGE_FIGURES:
        for n, figure in enumerate(data.figures.get(key, ())):
            svg = base64.b64decode(figure.svg_base64)
            sha = _store(svg, "image/svg+xml", f"{key}-{n}.svg")
            figures.append(
                {"key": key, "title": figure.title, "caption": figure.caption, "sha256": sha}
            )
    exports = {
        "limits.csv": _store(
            table_csv(sections["limits"], LIMIT_COLUMNS), "text/csv", "limits.csv"
        ),
        "structures.csv": _store(
            table_csv(sections["summary"], STRUCTURE_COLUMNS), "text/csv", "structures.csv"
        ),
    }
    if run.voxel is not None:
        from reirrad.io.export import write_cumulative_rtdose

        path = write_cumulative_rtdose(run.voxel, folder / "cumulative_eqd2_RD.dcm")
        exports["cumulative_eqd2_RD.dcm"] = _store(
            path.read_bytes(), "application/dicom", "cumulative_eqd2_RD.dcm"
        )
    return {"sections": sections, "figures": figures, "exports": exports}
