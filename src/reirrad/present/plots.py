"""Figures built from the public API's results (matplotlib; no file I/O: callers save).

Kept outside :mod:`reirrad.core` so that the computation core does not import matplotlib.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from reirrad.core.explore import ExplorerResult

__all__ = ["plot_feasible_region"]


def plot_feasible_region(result: ExplorerResult, *, title: str | None = None) -> Figure:
    """Highest feasible dose per fraction against the number of fractions.

    Each fraction number is a bar from 0 to its highest feasible prescription dose per
    fraction (the feasible region is below the bar tops), coloured by the binding
    constraint's organ; the published hypofractionated re-irradiation window is drawn as a
    dashed rectangle, and schemes reaching the curative criterion are marked.

    Parameters
    ----------
    result
        Output of :func:`reirrad.core.explore.explore`.
    title
        Figure title (default: a description of the criterion).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure (not attached to pyplot); save it with ``fig.savefig(path)``.
    """
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    n = result.column("fractions")
    d = result.column("dose_per_fraction_gy")
    finite = np.isfinite(d)
    top = float(np.nanmax(d[finite])) if finite.any() else 1.0
    shown = np.where(finite, d, top * 1.1)
    organs = [
        "unconstrained" if b is None else ("cap" if b == "cap" else str(b).split(":", 1)[0])
        for b in result.column("binding")
    ]
    palette = {}
    colours = [f"C{i}" for i in range(10)]
    for organ in organs:
        palette.setdefault(organ, colours[len(palette) % len(colours)])
    # positions: evenly spaced so that 1-10 and 25-35 do not leave a wide gap
    x = np.arange(n.size)
    for organ, colour in palette.items():
        mask = np.array([o == organ for o in organs])
        ax.bar(x[mask], shown[mask], color=colour, label=f"binding: {organ}", width=0.8)
    curative = result.column("curative")
    if curative.any():
        ax.scatter(
            x[curative],
            shown[curative],
            marker="*",
            s=80,
            color="k",
            zorder=3,
            label=f"curative ({result.curative.quantity} >= {result.curative.threshold_gy:g} Gy)",
        )
    w = result.window
    inside = np.flatnonzero((n >= w.min_fractions) & (n <= w.max_fractions))
    if inside.size:
        left = x[inside].min() - 0.5
        ax.add_patch(
            Rectangle(
                (left, w.min_dose_per_fraction_gy),
                x[inside].max() + 0.5 - left,
                w.max_dose_per_fraction_gy - w.min_dose_per_fraction_gy,
                fill=False,
                linestyle="--",
                edgecolor="k",
                label=f"published window {w.min_fractions}-{w.max_fractions} fx, "
                f"{w.min_dose_per_fraction_gy:g}-{w.max_dose_per_fraction_gy:g} Gy",
            )
        )
    ax.set_xticks(x, [f"{v:g}" for v in n])
    ax.set_xlabel("number of fractions")
    ax.set_ylabel("highest prescription dose per fraction (Gy)")
    ax.set_title(title or "Feasible re-irradiation schemes (below the bars)")
    ax.legend(loc="upper right", fontsize="small")
    return fig
