"""The login page, throttled."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from reirrad.web.registry import audit
from reirrad.web.registry.models import (
    AuditEvent,
)


class ThrottledLoginView(LoginView):
    """Django's login, refused after too many recent failures for the name or the address."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_provider"] = settings.OIDC_PROVIDER_NAME if settings.OIDC_ENABLED else None
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_S)
        username = str(request.POST.get("username", ""))[:150]
        address = audit.client_address(request)
        recent = AuditEvent.objects.filter(action="failed_login", at__gte=since)
        failures = recent.filter(Q(username=username) | Q(remote_addr=address)).count()
        if failures >= settings.LOGIN_FAILURE_LIMIT:
            audit.record("failed_login", request=request, username=username, throttled=True)
            form = self.get_form()
            form.errors.clear()
            minutes = settings.LOGIN_FAILURE_WINDOW_S // 60
            form.add_error(None, f"Too many failed logins; try again in {minutes} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)
