"""A stub OpenID Connect provider for the tests: authorization, token, userinfo and JWKS
endpoints on a loopback port, signing ID tokens with an RSA key made for the test run.

The test sets ``provider.claims`` (who "logs in" at the provider) before the redirect; the
authorization endpoint keeps the nonce with a one-time code, the token endpoint checks the
client's credentials, code and redirect URI and returns an RS256 ID token carrying the nonce.
Knobs let a test break one thing: ``sign_with`` (another key), ``nonce_override``, ``audience``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "reirrad-test"
CLIENT_SECRET = "stub-secret"
KID = "stub-key-1"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class StubProvider:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.sign_with: rsa.RSAPrivateKey | None = None
        self.claims: dict[str, Any] = {}
        self.nonce_override: str | None = None
        self.audience = CLIENT_ID
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return self.url

    def settings(self) -> dict[str, Any]:
        """The Django settings that point reirrad at this provider."""
        return {
            "OIDC_ENABLED": True,
            "OIDC_PROVIDER_NAME": "Stub IdP",
            "OIDC_OP_ISSUER": self.issuer,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.url}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.url}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.url}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.url}/jwks",
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_RP_SIGN_ALGO": "RS256",
        }

    # --- the endpoints ---
    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return 400, {}, b"bad authorization request"
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"],
            "claims": dict(self.claims),
        }  # fmt: skip
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        return 302, {"Location": target}, b""

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        grant = self.codes.pop(form.get("code", ""), None)  # a code is good once
        if (
            grant is None
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            return 400, {}, json.dumps({"error": "invalid_grant"}).encode()
        now = int(time.time())
        id_claims = {
            "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + 300,
            "sub": grant["claims"].get("sub", "stub-subject"),
            "nonce": self.nonce_override or grant["nonce"],
        }  # fmt: skip
        id_token = jwt.encode(
            id_claims, self.sign_with or self.key, algorithm="RS256", headers={"kid": KID}
        )
        access = secrets.token_urlsafe(16)
        self.tokens[access] = grant["claims"]
        body = {"access_token": access, "token_type": "Bearer", "id_token": id_token}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def userinfo(self, authorization: str) -> tuple[int, dict[str, str], bytes]:
        claims = self.tokens.get(authorization.removeprefix("Bearer "))
        if claims is None:
            return 401, {}, b""
        return 200, {"Content-Type": "application/json"}, json.dumps(claims).encode()

    def jwks(self) -> tuple[int, dict[str, str], bytes]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
        return 200, {"Content-Type": "application/json"}, json.dumps({"keys": [jwk]}).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, reply: tuple[int, dict[str, str], bytes]) -> None:
                status, headers, body = reply
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                provider.requests.append(parts.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/authorize":
                    self._send(provider.authorize(query))
                elif parts.path == "/userinfo":
                    self._send(provider.userinfo(self.headers.get("Authorization", "")))
                elif parts.path == "/jwks":
                    self._send(provider.jwks())
                else:
                    self._send((404, {}, b""))

            def do_POST(self) -> None:  # noqa: N802
                provider.requests.append(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                self._send(provider.token(form) if self.path == "/token" else (404, {}, b""))

            def log_message(self, *args: Any) -> None:
                pass  # quiet

        return Handler

    def __enter__(self) -> StubProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
