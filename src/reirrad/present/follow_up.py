"""The follow-up record as short texts: beside each organ's dose, and on the timeline."""

from __future__ import annotations

from reirrad.core.case import Case
from reirrad.core.follow_up import ResponseObservation, ToxicityObservation

__all__ = ["response_text", "structure_outcomes", "toxicity_text"]


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
