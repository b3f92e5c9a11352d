"""Optional OpenID Connect single sign-on (mozilla-django-oidc), configured by settings.

The provider's identity is matched to an existing account (by e-mail or by a user-name claim);
an unknown identity is refused unless ``OIDC_CREATE_USER`` is on, and then the new account
has no department (it sees no patient until an admin gives it one). Every refusal is a
``failed_login`` audit entry with the reason. Off (``OIDC_ENABLED``), the sign-on URLs are 404
and the backend authenticates nobody.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from reirrad.web.registry import audit

#: Request attribute where the backend leaves why a sign-on was refused (for the audit log).
_REASON = "_reirrad_oidc_refusal"


def _refuse(request: HttpRequest | None, reason: str, who: str = "") -> None:
    if request is not None:
        setattr(request, _REASON, (reason, who))


class ReirradOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with the audience and issuer checked and accounts
    matched, not created, by default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if settings.OIDC_ENABLED:  # its checks of the settings only when sign-on is on
            super().__init__(*args, **kwargs)
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        if not settings.OIDC_ENABLED or "password" in kwargs or "nonce" not in kwargs:
            return None  # a password login, or sign-on off
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, ValueError, SuspiciousOperation) as problem:
            _refuse(request, f"provider exchange failed: {problem}")
            return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("the ID token is not for this client (aud)")
        if settings.OIDC_OP_ISSUER and payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation("the ID token is from another issuer (iss)")
        return payload

    def _claim(self, claims: dict[str, Any]) -> str:
        key = "email" if settings.OIDC_MATCH == "email" else settings.OIDC_USERNAME_CLAIM
        return str(claims.get(key) or "").strip()

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not self._claim(claims):
            _refuse(self.request, f"the provider sent no {settings.OIDC_MATCH} claim")
            return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> QuerySet[Any]:
        value = self._claim(claims)
        if settings.OIDC_MATCH == "email":
            users = self.UserModel.objects.filter(email__iexact=value, is_active=True)
        else:
            users = self.UserModel.objects.filter(username=value, is_active=True)
        if not users.exists() and not settings.OIDC_CREATE_USER:
            _refuse(self.request, f"no account for {settings.OIDC_MATCH} {value!r}", value)
        elif users.count() > 1:
            _refuse(self.request, f"several accounts have {settings.OIDC_MATCH} {value!r}", value)
        return users

    def get_username(self, claims: dict[str, Any]) -> str:
        name = str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or "")
        return name[:150] or super().get_username(claims)

    def create_user(self, claims: dict[str, Any]) -> Any:
        user = self.UserModel.objects.create_user(
            self.get_username(claims), email=str(claims.get("email") or "")
        )
        audit.record("create", request=self.request, user=user, obj=user, source="oidc")
        return user


class SignOnStart(OIDCAuthenticationRequestView):
    """Redirect to the provider (with state and nonce kept in the session); 404 when off."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("single sign-on is not configured")
        return super().get(request)


class SignOnCallback(OIDCAuthenticationCallbackView):
    """The provider's redirect back; every refusal is audited and told on the login page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("single sign-on is not configured")
        try:
            return super().get(request)
        except SuspiciousOperation:  # e.g. a state this session did not start
            self._record(request, "unknown state (not started from this browser session)")
            raise

    def login_failure(self) -> HttpResponse:
        reason, who = getattr(self.request, _REASON, (None, ""))
        if reason is None:
            error = self.request.GET.get("error")
            reason = f"provider error: {error}" if error else "sign-on refused"
        self._record(self.request, reason, who)
        messages.error(self.request, f"Single sign-on did not log you in: {reason}.")
        return super().login_failure()

    @staticmethod
    def _record(request: HttpRequest, reason: str, who: str = "") -> None:
        audit.record(
            "failed_login", request=request, username=who[:150], method="oidc", reason=reason
        )
