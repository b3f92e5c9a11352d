"""Pieces shared by the report's sections: embedded figures and number formatting."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["ReportFigure", "figure_png", "num"]

#: Resolution of the embedded figures (A4 pages at print quality).
DPI = 150


@dataclass(frozen=True)
class ReportFigure:
    """A figure embedded as a base64 PNG."""

    title: str
    png_base64: str
    caption: str = ""


def num(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{float(value):.{digits}f}"
    return f"{text} {unit}".rstrip()


def figure_png(fig: Figure) -> str:
    """PNG (base64) rendered with the Agg canvas: headless, no pyplot, no global backend."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
