"""Pieces shared by the report's sections: embedded figures and number formatting."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["ReportFigure", "figure_svg", "num"]

#: Resolution of the raster parts of the figures (CT and dose washes) at print quality.
DPI = 150


@dataclass(frozen=True)
class ReportFigure:
    """A figure embedded in the report as base64 SVG.

    SVG keeps lines and text as vectors: sharp in print, and the text (orientation letters,
    isodose labels, legends) stays text in the PDF, where it can be searched and checked.
    """

    title: str
    svg_base64: str
    caption: str = ""

    @property
    def data_uri(self) -> str:
        return f"data:image/svg+xml;base64,{self.svg_base64}"


def num(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{float(value):.{digits}f}"
    return f"{text} {unit}".rstrip()


def figure_svg(fig: Figure) -> str:
    """SVG (base64) of a figure: headless, no pyplot, no global backend.

    Text is written as SVG text (``svg.fonttype: none``), not as glyph outlines, so the
    printed PDF holds it as text; rasters (CT underlay, dose wash) are embedded at
    :data:`DPI`.
    """
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "reirrad"}):
        fig.savefig(buffer, format="svg", dpi=DPI, facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
