"""Identity providers for residents: OIDC (production) and the demo provider.

``OIDCProvider`` speaks the OpenID Connect authorization-code flow with a configured issuer
(e.g. a broker for BankID or Freja eID): discovery, the authorization redirect with ``state``
and ``nonce``, the code exchange at the token endpoint (client secret), and the userinfo call
that yields the personnummer claim. It is tested against a mock IdP only; no real IdP is
reachable from the test environment. ID-token signature checking is left to the userinfo
call over TLS (the access token is bound to this client), which OIDC allows for confidential
clients using the code flow.

The demo provider lets you pick a synthetic person; it exists only when ``WebConfig.demo`` is
on, and its page says so.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from brygga.errors import InputError, PermissionDenied


@dataclass
class OIDCProvider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    personnummer_claim: str = "personal_identity_number"
    scope: str = "openid profile"
    transport: httpx.BaseTransport | None = None  # tests pass a mock transport
    _metadata: dict[str, Any] | None = None

    def _client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport, timeout=10)

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            with self._client() as client:
                response = client.get(url)
            if response.status_code != 200:
                raise InputError("the identity provider's discovery document is unavailable")
            data = response.json()
            if data.get("issuer", "").rstrip("/") != self.issuer.rstrip("/"):
                raise PermissionDenied("the identity provider's issuer does not match")
            self._metadata = data
        return self._metadata

    def start(self) -> tuple[str, str, str]:
        """(authorization URL, state, nonce): keep state and nonce in a short-lived cookie."""
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "nonce": nonce,
            }
        )
        return f"{self.metadata()['authorization_endpoint']}?{query}", state, nonce

    def finish(self, code: str, state: str, expected_state: str) -> str:
        """Exchange the code; returns the personnummer the IdP vouches for."""
        if not expected_state or not secrets.compare_digest(state, expected_state):
            raise PermissionDenied("the log-in was not started here (state mismatch)")
        meta = self.metadata()
        with self._client() as client:
            token = client.post(
                meta["token_endpoint"],
                data={"grant_type": "authorization_code", "code": code,
                      "redirect_uri": self.redirect_uri},
                auth=(self.client_id, self.client_secret),
            )  # fmt: skip
            if token.status_code != 200 or "access_token" not in token.json():
                raise PermissionDenied("the identity provider refused the log-in")
            info = client.get(
                meta["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
        if info.status_code != 200:
            raise PermissionDenied("the identity provider refused the log-in")
        pnr = info.json().get(self.personnummer_claim)
        if not isinstance(pnr, str):
            raise PermissionDenied("the identity provider did not give a personnummer")
        return pnr
