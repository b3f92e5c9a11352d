"""The patient timeline: courses on a time axis with the intervals between them (layout
only, for an inline SVG; no dose is computed here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

#: Drawing width and margins (SVG user units).
WIDTH = 900
MARGIN = 40
#: Days in an average month (365.25 / 12), for intervals shown in months.
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Bar:
    course_id: str
    x: float
    width: float
    label: str
    status: str


@dataclass(frozen=True)
class Gap:
    x: float
    x2: float
    days: int
    months: float


@dataclass(frozen=True)
class Timeline:
    bars: tuple[Bar, ...]
    gaps: tuple[Gap, ...]
    ticks: tuple[tuple[float, str], ...]
    width: int = WIDTH


def timeline(courses: Sequence) -> Timeline | None:
    """Bars of the courses (at least 3 units wide, so a one-day course shows), the gaps
    between consecutive courses (days from one's last fraction to the next's first) and
    yearly ticks."""
    if not courses:
        return None
    ordered = sorted(courses, key=lambda c: c.start)
    first = dt.date(ordered[0].start.year, 1, 1)
    last = dt.date(max(c.end for c in ordered).year + 1, 1, 1)
    span = (last - first).days
    scale = (WIDTH - 2 * MARGIN) / span

    def x(day: dt.date) -> float:
        return MARGIN + (day - first).days * scale

    bars = tuple(
        Bar(
            c.course_id,
            x(c.start),
            max(3.0, ((c.end - c.start).days + 1) * scale),
            f"{c.course_id}: {c.start:%Y-%m-%d} to {c.end:%Y-%m-%d}, {c.fractions} fx",
            c.status,
        )  # fmt: skip
        for c in ordered
    )
    gaps = tuple(
        Gap(
            x(a.end),
            x(b.start),
            (b.start - a.end).days,
            round((b.start - a.end).days / DAYS_PER_MONTH, 1),
        )  # fmt: skip
        for a, b in zip(ordered, ordered[1:], strict=False)
    )
    ticks = tuple((x(dt.date(year, 1, 1)), str(year)) for year in range(first.year, last.year + 1))
    return Timeline(bars, gaps, ticks)
