"""The follow-up record as short texts: beside each organ's dose, and on the timeline."""

from __future__ import annotations

from reirrad.core.case import Case
from reirrad.core.follow_up import ResponseObservation, ToxicityObservation

__all__ = [
    "follow_up_schedule",
    "response_text",
    "response_to_initial_course",
    "structure_outcomes",
    "toxicity_summary",
    "toxicity_text",
]


def toxicity_text(item: ToxicityObservation) -> str:
    """E.g. ``Dry mouth G2, late, definite (2026-01-15)``; grade 0 reads "none"."""
    if item.grade == 0:
        head = f"{item.term}: none"
    elif item.grade is None:
        head = f"{item.term} (grade not stated)"
    else:
        head = f"{item.term} G{item.grade}"
    details = [d for d in (item.onset, item.attribution) if d]
    if details:
        head += ", " + ", ".join(details)
    return f"{head} ({item.date.isoformat()})"


def response_text(item: ResponseObservation) -> str:
    """E.g. ``PET/CT local: SUVmax 9.79, 28x24 mm, partial response``."""
    parts = []
    if item.suv_max is not None:
        parts.append(f"SUVmax {item.suv_max:g}")
    if item.size_mm:
        parts.append("x".join(f"{v:g}" for v in item.size_mm) + " mm")
    if item.recist:
        parts.append(f"RECIST {item.recist}")
    if item.percist:
        parts.append(f"PERCIST {item.percist}")
    if item.reported:
        parts.append(item.reported)
    return f"{item.modality} {item.site}: " + ", ".join(parts)


def structure_outcomes(case: Case) -> dict[str, str]:
    """Structure name -> its observed toxicities, oldest first, as one line."""
    if case.follow_up is None:
        return {}
    out: dict[str, str] = {}
    for spec in case.structures:
        items = case.follow_up.toxicities_of(spec.name)
        if items:
            out[spec.name] = "; ".join(toxicity_text(t) for t in items)
    return out


def _months_after(days: int) -> str:
    return f"{days / 30.4375:.1f} months"


def response_to_initial_course(case: Case) -> str | None:
    """Local response seen between the end of the first course and the next course."""
    if case.follow_up is None or len(case.courses) < 2:
        return None
    first, second = case.courses[0], case.courses[1]
    seen = [
        r
        for r in sorted(case.follow_up.response, key=lambda r: r.date)
        if first.end < r.date < second.start and r.site in ("local", "overall")
    ]
    if not seen:
        return None
    return "; ".join(
        f"{response_text(r)} ({r.date}, {_months_after((r.date - first.end).days)} after "
        f"{first.id})"
        for r in seen
    )


def follow_up_schedule(case: Case) -> str | None:
    """The studies done after the newest course, with the time since it ended."""
    if case.follow_up is None:
        return None
    last = case.courses[-1]
    dates: dict[tuple, list[str]] = {}
    for r in case.follow_up.response:
        if r.date > last.end:
            dates.setdefault((r.date, r.modality), []).append(r.site)
    if not dates:
        return None
    return "; ".join(
        f"{modality} {date} ({_months_after((date - last.end).days)} after {last.id}; "
        f"{', '.join(sites)})"
        for (date, modality), sites in sorted(dates.items())
    )


def toxicity_summary(case: Case) -> str | None:
    """Highest grade recorded per CTCAE term, e.g. ``Pharyngeal mucositis G3; Dry mouth G2``."""
    if case.follow_up is None or not case.follow_up.toxicity:
        return None
    worst: dict[str, int | None] = {}
    for t in case.follow_up.toxicity:
        if t.term not in worst or (t.grade or 0) > (worst[t.term] or 0):
            worst[t.term] = t.grade
    ordered = sorted(worst.items(), key=lambda kv: -(kv[1] if kv[1] is not None else -1))
    return "; ".join(
        f"{term} "
        + ("grade not stated" if grade is None else "none" if grade == 0 else f"G{grade}")
        for term, grade in ordered
    )
