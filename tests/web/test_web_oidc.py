"""OpenID Connect single sign-on against a stub provider (tests/web/oidc_stub.py): the whole
redirect flow with Django's test client (state and nonce in the session, code exchange, RS256
ID token checked with the provider's JWKS, userinfo), account matching, refusals and audit."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from oidc_stub import StubProvider, new_key

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def key():
    return new_key()


@pytest.fixture
def provider(key, settings):
    with StubProvider(key) as stub:
        for name, value in stub.settings().items():
            setattr(settings, name, value)
        yield stub


def _sign_on(client: Client, provider: StubProvider, claims: dict, next_url: str = "/"):
    """Start at reirrad, pass the provider, come back: the callback's response."""
    provider.claims = claims
    start = client.get("/oidc/authenticate/", {"next": next_url})
    assert start.status_code == 302 and start.url.startswith(provider.url + "/authorize?")
    asked = parse_qs(urlsplit(start.url).query)
    assert asked["redirect_uri"] == ["http://testserver/oidc/callback/"]
    assert asked["state"][0] and asked["nonce"][0]  # both kept in reirrad's session
    back = requests.get(start.url, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    target = urlsplit(back.headers["Location"])
    return client.get(target.path, parse_qs(target.query))


def _last_event(action: str):
    from reirrad.web.registry.models import AuditEvent

    return AuditEvent.objects.filter(action=action).order_by("-pk").first()


def test_off_by_default():
    page = Client().get("/login/").content.decode()
    assert "Sign in with" not in page
    assert Client().get("/oidc/authenticate/").status_code == 404
    assert Client().get("/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404


def test_login_page_shows_the_provider(provider):
    page = Client().get("/login/", {"next": "/patients/new/"}).content.decode()
    assert "Sign in with Stub IdP" in page
    assert 'href="/oidc/authenticate/?next=/patients/new/"' in page


def test_existing_user_signs_in_by_email(provider, department, make_user, npc_patient):
    user = make_user("dr.a", "physician", department)
    user.email = "Dr.A@Example.org"
    user.save()
    client = Client()
    response = _sign_on(client, provider, {"sub": "1", "email": "dr.a@example.org"}, "/")
    assert response.status_code == 302 and response.url == "/"
    assert provider.requests.count("/token") == 1 and "/jwks" in provider.requests
    page = client.get("/").content.decode()
    assert "MARINOVA-2026-NPC" in page and "dr.a" in page
    assert _last_event("login").user == user


def test_username_claim_matching(provider, settings, department, make_user):
    settings.OIDC_MATCH = "username"
    user = make_user("planner7", "planner", department)
    client = Client()
    response = _sign_on(client, provider, {"email": "x@y.org", "preferred_username": "planner7"})
    assert response.status_code == 302 and response.url == "/"
    assert client.get("/patients/new/").status_code == 200
    assert _last_event("login").user == user


def test_unknown_user_is_refused_and_audited(provider, department, make_user):
    from django.contrib.auth import get_user_model

    make_user("someone", "planner", department)
    client = Client()
    response = _sign_on(client, provider, {"email": "stranger@example.org"})
    assert response.status_code == 302 and response.url == "/login/"
    page = client.get("/login/").content.decode()
    assert "Single sign-on did not log you in" in page and "stranger@example.org" in page
    assert client.get("/").status_code == 302  # still logged out
    assert get_user_model().objects.count() == 1  # nobody created
    event = _last_event("failed_login")
    assert event.username == "stranger@example.org"
    assert event.detail == {
        "method": "oidc",
        "reason": "no account for email 'stranger@example.org'",
    }


def test_creation_when_allowed_gives_no_department(provider, settings, npc_patient):
    from django.contrib.auth import get_user_model

    settings.OIDC_CREATE_USER = True
    client = Client()
    response = _sign_on(
        client, provider, {"email": "new@example.org", "preferred_username": "newcomer"}
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newcomer")
    assert user.email == "new@example.org" and not user.membership_set.exists()
    assert "MARINOVA-2026-NPC" not in client.get("/").content.decode()  # sees no patient
    assert client.get(f"/patients/{npc_patient.pk}/").status_code == 404
    assert client.get("/patients/new/").status_code == 403
    assert _last_event("create").detail == {"source": "oidc"}


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("key", "JWS token verification failed"),
        ("nonce", "JWT Nonce verification failed"),
        ("audience", "the ID token is not for this client (aud)"),
        ("issuer", "the ID token is from another issuer (iss)"),
        ("secret", "provider exchange failed: Get Token Error"),
    ],
)
def test_bad_tokens_are_refused(provider, settings, department, make_user, key, breakage, reason):
    user = make_user("dr.b", "physician", department)
    user.email = "b@example.org"
    user.save()
    if breakage == "key":
        provider.sign_with = new_key()
    elif breakage == "nonce":
        provider.nonce_override = "replayed-nonce"
    elif breakage == "audience":
        provider.audience = "another-client"
    elif breakage == "issuer":
        settings.OIDC_OP_ISSUER = "https://idp.example.org"
    else:
        settings.OIDC_RP_CLIENT_SECRET = "wrong"
    client = Client()
    response = _sign_on(client, provider, {"email": "b@example.org"})
    assert response.status_code == 302 and response.url == "/login/"
    assert client.get("/").status_code == 302
    event = _last_event("failed_login")
    assert event.detail["method"] == "oidc" and reason in event.detail["reason"]
    assert _last_event("login") is None


def test_provider_error_and_foreign_state_are_audited(provider):
    client = Client()
    response = client.get("/oidc/callback/", {"error": "access_denied", "state": "s"})
    assert response.status_code == 302 and response.url == "/login/"
    assert _last_event("failed_login").detail["reason"] == "provider error: access_denied"
    client.get("/oidc/authenticate/")  # a sign-on started, but the state below is not its own
    response = client.get("/oidc/callback/", {"code": "c", "state": "forged"})
    assert response.status_code == 400
    assert "unknown state" in _last_event("failed_login").detail["reason"]


def test_password_login_still_works_with_sign_on(provider, department, make_user):
    make_user("pw", "viewer", department)
    response = Client().post("/login/", {"username": "pw", "password": "a long test password"})
    assert response.status_code == 302
