"""Audit entries for logins and failed logins."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from reirrad.web.registry import audit


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record("login", request=request, user=user)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    if "nonce" in credentials:
        return  # a single sign-on: reirrad.web.oidc records it with the reason
    # the password is never recorded (Django masks it in `credentials` anyway)
    audit.record(
        "failed_login", request=request, username=str(credentials.get("username", ""))[:150]
    )
