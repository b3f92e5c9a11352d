"""Writing the audit log (the one way views and jobs add entries)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from reirrad.web.registry.models import AuditEvent, Patient


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    username: str = "",
    obj: Any = None,
    patient: Patient | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append an audit entry; the user and address come from ``request`` when given."""
    if user is None and request is not None and request.user.is_authenticated:
        user = request.user
    if patient is None and isinstance(obj, Patient):
        patient = obj
    if patient is None and obj is not None and hasattr(obj, "patient_id"):
        patient_id = obj.patient_id
    else:
        patient_id = patient.pk if patient is not None else None
    return AuditEvent.objects.create(
        user=user if user is not None and user.pk else None,
        username=username or (user.get_username() if user is not None else ""),
        action=action,
        object_type=type(obj).__name__ if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        patient_id=patient_id,
        detail=detail,
        remote_addr=client_address(request),
    )
