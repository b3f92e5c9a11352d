"""Figures built from the public API's results (matplotlib; no file I/O: callers save).

Kept outside :mod:`reirrad.core` so that the computation core does not import matplotlib.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from reirrad.core.explore import ExplorerResult
from reirrad.present.colours import StructureColours, assign_colours

__all__ = [
    "NO_FEASIBLE_SCHEME",
    "infeasibility_reasons",
    "no_feasible_scheme",
    "plot_feasible_region",
]

#: The headline of the explorer figure when no scheme keeps every limit.
NO_FEASIBLE_SCHEME = "No feasible scheme"
#: Gap (in bar widths) left where the explored fraction numbers jump (e.g. 10 -> 25).
_BREAK_GAP = 0.9


def _organ(binding: str | None) -> str:
    if binding is None:
        return "unconstrained"
    return "cap" if binding == "cap" else str(binding).split(":", 1)[0]


def no_feasible_scheme(result: ExplorerResult) -> bool:
    """True when every explored fraction number is limited to 0 Gy (the history alone breaks
    a limit); an unlimited row (no constraint limits it) is not infeasible."""
    d = result.column("dose_per_fraction_gy")
    finite = np.isfinite(d)
    return bool(finite.any() and not result.column("feasible").any() and np.all(d[finite] == 0))


def infeasibility_reasons(result: ExplorerResult) -> list[str]:
    """Why no scheme is feasible: the limits the dose history alone already exceeds.

    A fraction number is infeasible (highest dose per fraction 0) when the residual of the
    earlier courses already breaks a limit; the explorer evaluates the statistics at zero
    new dose there, so a negative margin names the limit and the amount.
    """
    rows = [r for r in result.rows if not r.feasible and r.dose_per_fraction_gy == 0]
    if not rows:
        return []
    row = rows[0]
    reasons = []
    for label in result.labels:
        margin = row.margin_eqd2_gy[label]
        value = row.cumulative_eqd2_gy[label]
        if math.isfinite(margin) and margin <= 0:
            organ, _, rest = label.partition(":")
            source, _, metric = rest.strip().rpartition(":")
            where = f" ({source})" if source else ""
            reasons.append(
                # no-break spaces keep "limit 26 Gy" on one line when the text is wrapped
                f"{organ} {metric or rest}: {value:.1f}\u00a0Gy EQD2 from the earlier courses, "
                f"limit\u00a0{value + margin:.4g}\u00a0Gy{where}"
            )
    if not reasons and row.binding is not None:
        reasons.append(f"{row.binding}: binding at zero new dose")
    return reasons


def _positions(n: np.ndarray) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Bar positions, evenly spaced with a gap where the fraction numbers jump; the breaks as
    ``(position, fractions before, fractions after)``."""
    if n.size < 2:
        return np.arange(n.size, dtype=float), []
    steps = np.diff(n)
    usual = float(np.median(steps))
    jump = steps > 1.5 * usual
    x = np.arange(n.size, dtype=float) + _BREAK_GAP * np.concatenate([[0], np.cumsum(jump)])
    breaks = [((x[i] + x[i + 1]) / 2.0, float(n[i]), float(n[i + 1])) for i in np.flatnonzero(jump)]
    return x, breaks


def _axis_break(ax, where: float) -> None:
    """A break mark on the x axis: the spine interrupted by two slanted strokes."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.add_patch(
        Rectangle((where - 0.22, -0.02), 0.44, 0.04, transform=trans, facecolor="white",
                  edgecolor="none", clip_on=False, zorder=5, gid="axis-break")
    )  # fmt: skip
    for dx in (-0.16, 0.16):
        ax.plot([where + dx - 0.1, where + dx + 0.1], [-0.025, 0.025], transform=trans,
                color="k", lw=1.0, clip_on=False, zorder=6, gid="axis-break")  # fmt: skip


def plot_feasible_region(
    result: ExplorerResult,
    *,
    title: str | None = None,
    colours: StructureColours | None = None,
) -> Figure:
    """Highest feasible dose per fraction against the number of fractions.

    Each fraction number is a bar from 0 to its highest feasible prescription dose per
    fraction (the feasible region is below the bar tops), coloured by the binding
    constraint's organ; the published hypofractionated re-irradiation window is drawn as a
    dashed rectangle, and schemes reaching the curative criterion are marked. Where the
    explored fraction numbers jump (10 to 25 by default) the axis is broken (a gap and a
    break mark). When no scheme is feasible the figure says so and names the limits the dose
    history already exceeds, and draws no bars, window or legend.

    Parameters
    ----------
    result
        Output of :func:`reirrad.core.explore.explore`.
    title
        Figure title (default: a description of the criterion).
    colours
        The structures' colours of the other figures (:mod:`reirrad.present.colours`);
        default: palette colours by organ name.

    Returns
    -------
    matplotlib.figure.Figure
        A new figure (not attached to pyplot); save it with ``fig.savefig(path)``.
    """
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    n = result.column("fractions")
    d = result.column("dose_per_fraction_gy")
    x, breaks = _positions(n)
    ax.set_xticks(x, [f"{v:g}" for v in n])
    if x.size:
        ax.set_xlim(x.min() - 0.7, x.max() + 0.7)
    for where, _, _ in breaks:
        _axis_break(ax, where)
    gaps = ", ".join(f"{before:g} and {after:g}" for _, before, after in breaks)
    ax.set_xlabel("number of fractions" + (f" (axis broken between {gaps})" if gaps else ""))
    ax.set_ylabel("highest prescription dose per fraction (Gy)")
    ax.spines[["top", "right"]].set_visible(False)
    if no_feasible_scheme(result):
        _no_feasible(ax, result)
        ax.set_title(title or "Feasible re-irradiation schemes: none")
        return fig
    _bars(ax, result, x, d, colours)
    ax.set_title(title or "Feasible re-irradiation schemes (below the bars)")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper right", fontsize="small")
    return fig


def _no_feasible(ax, result: ExplorerResult) -> None:
    reasons = infeasibility_reasons(result)
    import textwrap

    lines = [textwrap.fill(r, 80, subsequent_indent="    ") for r in reasons]
    why = (
        "The dose history alone already exceeds:\n" + "\n".join(lines)
        if reasons
        else "every fraction number exceeds a limit at any dose"
    )
    ax.set_ylim(0, max(result.window.max_dose_per_fraction_gy, 1.0))
    ax.text(0.5, 0.66, NO_FEASIBLE_SCHEME, transform=ax.transAxes, ha="center", va="center",
            fontsize=16, fontweight="bold", color="#a40000", gid="no-feasible")  # fmt: skip
    ax.text(0.5, 0.47, why, transform=ax.transAxes, ha="center", va="top", fontsize=9.5,
            linespacing=1.5, gid="no-feasible-reason")  # fmt: skip


def _bars(ax, result: ExplorerResult, x, d, colours: StructureColours | None) -> None:
    n = result.column("fractions")
    finite = np.isfinite(d)
    top = float(np.nanmax(d[finite])) if finite.any() else 1.0
    shown = np.where(finite, d, top * 1.1)
    organs = [_organ(b) for b in result.column("binding")]
    names = list(dict.fromkeys(organs))
    if colours is None:
        colours = assign_colours((name, None) for name in names)
    for organ in names:
        mask = np.array([o == organ for o in organs]) & (shown > 0)
        if not mask.any():
            continue
        known = organ in colours
        edge = "0.2" if known and colours[organ].outlined else "none"
        ax.bar(x[mask], shown[mask], color=colours.rgb(organ, (0.5, 0.5, 0.5)), edgecolor=edge,
               label=f"binding: {organ}", width=0.8)  # fmt: skip
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
    if inside.size and result.column("feasible")[inside].any():
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
