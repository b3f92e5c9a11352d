"""The patient timeline: courses on a time axis with the intervals between them, the
recovery windows after each course and the follow-up observations (layout only, for an
inline SVG; no dose is computed here: the recovery models and their windows are the
library's, :func:`reirrad.core.recovery.credit_window`, resolved for each structure by the
case's own rules, :meth:`reirrad.core.case.Case.tissue`).

The report's timeline figure (:mod:`reirrad.present.report`) is a matplotlib drawing of the
case; the page draws its own SVG because it links each course and shows windows and toxicity
markers that the report's figure does not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reirrad.core.recovery import credit_window
from reirrad.errors import InputError

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
class Window:
    """Where one recovery model credits recovery after one course."""

    row: int
    x: float
    width: float
    label: str


@dataclass(frozen=True)
class Marker:
    """A follow-up observation: ``shape`` pet (triangle), study (dot) or toxicity (diamond)."""

    x: float
    shape: str
    label: str


@dataclass(frozen=True)
class Timeline:
    bars: tuple[Bar, ...]
    gaps: tuple[Gap, ...]
    ticks: tuple[tuple[float, str], ...]
    windows: tuple[Window, ...] = ()
    models: tuple[str, ...] = ()
    markers: tuple[Marker, ...] = ()
    note: str = ""
    width: int = WIDTH

    @property
    def height(self) -> int:
        return 140 + 14 * len(self.models)


def recovery_models(patient: Any) -> tuple[dict[str, tuple[Any, list[str]]], str]:
    """The recovery models of the patient's structures, by description, with the structures
    that use each; and a note when the registry's case cannot be read (then no windows)."""
    from reirrad.web.registry.casefile import registry_case

    try:
        case = registry_case(patient)
    except InputError as problem:
        return {}, f"no recovery windows: {problem}"
    models: dict[str, tuple[Any, list[str]]] = {}
    for spec in case.structures:
        _, model = case.tissue(spec)
        models.setdefault(model.describe(), (model, []))[1].append(spec.name)
    return models, ""


def _markers(patient: Any) -> list[tuple[dt.date, str, str]]:
    rows = [
        (r.date, "pet" if r.modality.startswith("PET") else "study",
         f"{r.date:%Y-%m-%d} {r.modality} ({r.site})"
         + (f", SUVmax {r.suv_max:g}" if r.suv_max is not None else "")
         + (f": {r.reported}" if r.reported else ""))
        for r in patient.responses.all()
    ]  # fmt: skip
    rows += [
        (t.date, "toxicity",
         f"{t.date:%Y-%m-%d} {t.term}, grade {'not stated' if t.grade is None else t.grade}"
         + (f" ({t.structure.name})" if t.structure_id else ""))
        for t in patient.toxicities.select_related("structure")
    ]  # fmt: skip
    return rows


def timeline(courses: Sequence, patient: Any = None) -> Timeline | None:
    """Bars of the courses (at least 3 units wide, so a one-day course shows), the gaps
    between consecutive courses (days from one's last fraction to the next's first), yearly
    ticks and, given the patient, each recovery model's window after each course (one row
    per model) and the follow-up observations as markers."""
    if not courses:
        return None
    ordered = sorted(courses, key=lambda c: c.start)
    models, note = recovery_models(patient) if patient is not None else ({}, "")
    spans = {d: credit_window(m) for d, (m, _) in models.items()}
    observed = _markers(patient) if patient is not None else []
    ends = [c.end for c in ordered] + [d for d, _, _ in observed]
    ends += [c.end + dt.timedelta(days=w[1]) for c in ordered for w in spans.values() if w]
    first = dt.date(min([ordered[0].start] + [d for d, _, _ in observed]).year, 1, 1)
    last = dt.date(max(ends).year + 1, 1, 1)
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
    windows = tuple(
        Window(
            row,
            x(c.end + dt.timedelta(days=span[0])),
            max(2.0, (span[1] - span[0]) * scale),
            f"after {c.course_id}: recovery credited from {span[0]} days, "
            f"99 % of it by {span[1]} days ({description}; {', '.join(models[description][1])})",
        )  # fmt: skip
        for row, (description, span) in enumerate(spans.items())
        if span is not None
        for c in ordered
    )
    markers = tuple(Marker(x(d), shape, label) for d, shape, label in sorted(observed))
    return Timeline(bars, gaps, ticks, windows, tuple(spans), markers, note)
