"""DVH metrics as a table, CSV or JSON, and the DVH curves as a figure (``reirrad dvh``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from reirrad.core.dvh import DVH
from reirrad.present.colours import StructureColours, line_style

__all__ = ["FORMATS", "dvh_metrics_text", "write_dvh_plot"]

FORMATS = ("table", "csv", "json")


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def dvh_metrics_text(
    dvhs: Sequence[DVH],
    names: Sequence[str],
    *,
    reference_dose: float | None = None,
    output_format: str = "table",
) -> str:
    """The metrics ``names`` of each DVH in one of :data:`FORMATS` (doses in Gy)."""
    rows = [(d, d.metrics(list(names), reference_dose=reference_dose)) for d in dvhs]
    if output_format == "json":
        payload = [
            {
                "roi": d.structure,
                "volume_cc": _number(d.volume_cc),
                "covered_fraction": _number(d.covered_fraction),
                "metrics": {k: _number(v) for k, v in values.items()},
            }
            for d, values in rows
        ]
        return json.dumps(payload, indent=2)
    if output_format == "csv":
        lines = [",".join(["roi", "volume_cc", "covered_fraction", *names])]
        for d, values in rows:
            cells = [d.structure, f"{d.volume_cc:.4f}", f"{d.covered_fraction:.4f}"]
            cells += [f"{values[n]:.4f}" for n in names]
            lines.append(",".join(f'"{c}"' if "," in c else c for c in cells))
        return "\n".join(lines)
    header = ["ROI", "cc", "covered", *names]
    table = [
        [d.structure, f"{d.volume_cc:.2f}", f"{100 * d.covered_fraction:.1f}%"]
        + [f"{values[n]:.3f}" for n in names]
        for d, values in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.append("Doses in Gy; V<x> metrics in % of the covered volume (or cc as asked).")
    return "\n".join(lines)


def write_dvh_plot(
    dvhs: Sequence[DVH], path: str | Path, colours: StructureColours | Mapping | None = None
) -> Path:
    """The cumulative DVH curves, each in its structure's colour (``present.colours``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for dvh in dvhs:
        style = {}
        if colours is not None and dvh.structure in colours:
            style = line_style(colours[dvh.structure], 1.5)
        ax.plot(dvh.edges, dvh.cumulative_percent, label=dvh.structure, **style)
    ax.set_xlabel("Dose (Gy)")
    ax.set_ylabel("Volume (%)")
    ax.set_ylim(0, 102)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title("Cumulative DVH")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
