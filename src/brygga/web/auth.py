"""Identity providers: OpenID Connect (production) and the demo provider.

``OIDCProvider`` speaks the OpenID Connect authorization-code flow with one configured issuer,
typically a broker for BankID or Freja eID (Idura/Criipto, Signicat, ...):

1. ``start`` builds the authorization redirect with a fresh ``state``, ``nonce`` and PKCE
   challenge; the web layer keeps them, with the purpose (resident or staff log-in), in a
   short-lived cookie signed with the app's secret key (``pending_cookie``), so none can be
   forged or swapped.
2. ``finish`` checks ``state``, exchanges the code at the token endpoint (client secret and
   PKCE verifier), and
   verifies the ID token: signature against the issuer's JWKS (``jwks_uri`` from discovery,
   cached, fetched again once when a token names an unknown key: key rotation), algorithm
   RS256 or ES256 only (never ``none`` or HMAC, which would let a public key act as a shared
   secret), ``iss``, ``aud`` (and ``azp``) against the client id, ``exp``/``iat`` with a small
   leeway, and the ``nonce`` against the one kept at step 1.
3. A claim the ID token lacks (brokers often put the personnummer only in userinfo) is read
   from the userinfo endpoint, whose ``sub`` must equal the ID token's.

Every refusal raises ``LoginRefused`` (HTTP 403) with a message that names what failed and
never a claim's value (security property 1).

The demo provider lets you pick a synthetic person; it exists only when ``WebConfig.demo`` is
on, and its page says so (``routes/public.py``).
"""

from __future__ import annotations

__all__ = [
    "ALGORITHMS",
    "CALLBACK_PATH",
    "LEEWAY_SECONDS",
    "PENDING_COOKIE",
    "PENDING_SECONDS",
    "PURPOSES",
    "LoginRefused",
    "OIDCProvider",
    "Pending",
    "pending_cookie",
    "provider_from_settings",
    "read_pending",
]

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt

from brygga import clock, identifiers
from brygga.errors import InputError, PermissionDenied
from brygga.web import security

ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 60  # clock skew allowed on exp / iat
PENDING_SECONDS = 600  # how long a started log-in may take at the IdP
PENDING_COOKIE = "brygga_oidc"
PURPOSES = ("resident", "staff")


class LoginRefused(PermissionDenied):
    """The identity provider's answer did not prove who the user is."""


@dataclass(frozen=True)
class Pending:
    """A started log-in: what the callback must see again."""

    state: str
    nonce: str
    purpose: str  # one of PURPOSES
    verifier: str  # PKCE code verifier (RFC 7636): the code is useless without it
    # Where to land after the log-in (a path on this site, checked by the caller before and
    # after the round trip): a study's "Anmäl intresse" brings the resident back to the study.
    next: str = ""

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def pending_cookie(pending: Pending, secret: str) -> str:
    return security.sign(
        {"state": pending.state, "nonce": pending.nonce, "for": pending.purpose,
         "pkce": pending.verifier, "next": pending.next,
         "exp": int(clock.now().timestamp()) + PENDING_SECONDS},
        secret,
    )  # fmt: skip


def read_pending(token: str | None, secret: str) -> Pending | None:
    """The pending log-in from its cookie; None if absent, expired or not signed by us."""
    payload = security.unsign(token, secret) if token else None
    if payload is None or payload.get("for") not in PURPOSES:
        return None
    values = [payload.get(k) for k in ("state", "nonce", "pkce")]
    if not all(isinstance(v, str) and v for v in values):
        return None
    state, nonce, verifier = values
    after = payload.get("next")
    return Pending(state, nonce, payload["for"], verifier, after if isinstance(after, str) else "")


@dataclass
class OIDCProvider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    personnummer_claim: str = "personal_identity_number"
    staff_claim: str = "email"  # matched against staff_account.email
    scope: str = "openid profile"
    transport: httpx.BaseTransport | None = None  # tests pass a mock transport
    _metadata: dict[str, Any] | None = field(default=None, repr=False)
    _keys: dict[str | None, jwt.PyJWK] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport, timeout=10)

    # --- Discovery and keys -------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            data = self._get_json(url, "discovery document")
            if str(data.get("issuer") or "").rstrip("/") != self.issuer.rstrip("/"):
                raise LoginRefused("the identity provider's discovery names another issuer")
            missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                       if not isinstance(data.get(k), str)]  # fmt: skip
            if missing:
                raise InputError(f"the identity provider's discovery lacks {', '.join(missing)}")
            self._metadata = data
        return self._metadata

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with self._client() as client:
                response = client.get(url)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            data = None
        if not isinstance(data, dict):
            raise InputError(f"the identity provider's {what} is unavailable")
        return data

    def _fetch_keys(self) -> dict[str | None, jwt.PyJWK]:
        jwks = self._get_json(self.metadata()["jwks_uri"], "key set (JWKS)")
        keys: dict[str | None, jwt.PyJWK] = {}
        listed = jwks.get("keys")
        for jwk in listed if isinstance(listed, list) else []:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(jwk)
            except jwt.PyJWKError:
                continue  # a key type or algorithm we do not use (e.g. an encryption key)
            if key.algorithm_name in ALGORITHMS:
                keys[jwk.get("kid")] = key
        return keys

    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The issuer's key ``kid``; the key set is fetched again once if it is unknown."""
        with self._lock:
            if self._keys is None:
                self._keys = self._fetch_keys()
            key = _pick(self._keys, kid)
            if key is None:  # the issuer may have rotated its keys since we fetched them
                self._keys = self._fetch_keys()
                key = _pick(self._keys, kid)
        if key is None:
            raise LoginRefused(
                "the ID token is signed with a key the identity provider does not publish (kid)"
            )
        return key

    # --- The flow ----------------------------------------------------------------------

    def start(self, purpose: str = "resident", next: str = "") -> tuple[str, Pending]:
        """(authorization URL, pending log-in to keep in the signed cookie); ``next``: where
        to land afterwards, a path on this site the caller has checked."""
        assert purpose in PURPOSES
        pending = Pending(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), purpose,
            secrets.token_urlsafe(48), next,
        )  # fmt: skip
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pending.challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.metadata()['authorization_endpoint']}?{query}", pending

    def finish(self, code: str, state: str, pending: Pending | None, wanted: str) -> dict[str, Any]:
        """Verified claims about the user: the ID token's, plus userinfo's if ``wanted`` is
        not among them (userinfo only for the same ``sub``)."""
        if pending is None:
            raise LoginRefused("the log-in was not started here or took too long; start again")
        if not state or not _same(state, pending.state):
            raise LoginRefused("the log-in was not started here (state mismatch)")
        if not code:
            raise LoginRefused("the identity provider sent no authorization code")
        tokens = self._exchange(code, pending.verifier)
        claims = self.verify_id_token(tokens["id_token"], pending.nonce)
        if wanted not in claims:
            info = self._userinfo(tokens.get("access_token"))
            if info.get("sub") != claims["sub"]:
                raise LoginRefused("userinfo is about another subject than the ID token (sub)")
            claims = info | claims  # the signed ID token wins on any overlap
        return claims

    def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        try:
            with self._client() as client:
                response = client.post(
                    self.metadata()["token_endpoint"],
                    data={"grant_type": "authorization_code", "code": code,
                          "redirect_uri": self.redirect_uri, "code_verifier": verifier},
                    auth=(self.client_id, self.client_secret),
                )  # fmt: skip
            tokens = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            tokens = None
        if not isinstance(tokens, dict):
            raise LoginRefused("the identity provider refused the log-in (token endpoint)")
        if not isinstance(tokens.get("id_token"), str):
            raise LoginRefused("the identity provider returned no ID token")
        return tokens

    def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once signature, issuer, audience, times and nonce hold."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise LoginRefused("the ID token is malformed") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            shown = alg if isinstance(alg, str) and len(alg) <= 10 else "unknown"
            raise LoginRefused(f"the ID token's signing algorithm is refused ({shown})")
        kid = header.get("kid")
        key = self.signing_key(kid if isinstance(kid, str) else None)
        if key.algorithm_name != alg:  # e.g. ES256 claimed for an RSA key
            raise LoginRefused("the ID token's algorithm does not fit its key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.metadata()["issuer"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as e:
            raise LoginRefused(f"the ID token {_reason(e)}") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise LoginRefused("the ID token is for another client (azp)")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not _same(sent, nonce):
            raise LoginRefused("the ID token's nonce does not match this log-in (replayed?)")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise LoginRefused("the ID token has no subject (sub)")
        return claims

    def _userinfo(self, access_token: Any) -> dict[str, Any]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(access_token, str) or not isinstance(endpoint, str):
            raise LoginRefused("the ID token lacks the needed claim and there is no userinfo")
        try:
            with self._client() as client:
                response = client.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
            kind = response.headers.get("content-type", "")
            info = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            info, kind = None, ""
        if not isinstance(info, dict) or "json" not in kind:
            raise LoginRefused("the identity provider's userinfo is unavailable (JSON expected)")
        return info

    # --- Who the claims name --------------------------------------------------------------

    def personnummer(self, claims: dict[str, Any]) -> str:
        """The resident's personnummer, normalized (YYYYMMDD-NNNC) and checked."""
        value = claims.get(self.personnummer_claim)
        if not isinstance(value, str):
            raise LoginRefused(
                f"the identity provider did not give a personnummer (claim {self.personnummer_claim})"
            )
        return identifiers.personnummer(value, field=f"claim {self.personnummer_claim}")

    def staff_identifier(self, claims: dict[str, Any]) -> str:
        """The value matched against a staff account's e-mail address."""
        value = claims.get(self.staff_claim)
        if not isinstance(value, str) or not value.strip():
            raise LoginRefused(f"the identity provider did not give claim {self.staff_claim}")
        if self.staff_claim == "email" and claims.get("email_verified") is False:
            raise LoginRefused("the identity provider has not verified this e-mail address")
        return value.strip().lower()


def _same(a: str, b: str) -> bool:
    """Constant-time comparison that also takes non-ASCII text (from a URL or a token)."""
    return secrets.compare_digest(a.encode(), b.encode())


def _pick(keys: dict[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None and len(keys) == 1:  # an issuer with a single key may omit kid
        return next(iter(keys.values()))
    return keys.get(kid) if kid is not None else None


def _reason(e: jwt.InvalidTokenError) -> str:
    """Why PyJWT refused a token, in words a log-in page can show."""
    reasons = [
        (jwt.InvalidSignatureError, "signature does not verify"),
        (jwt.ExpiredSignatureError, "has expired"),
        (jwt.ImmatureSignatureError, "is not valid yet (check the server's clock)"),
        (jwt.InvalidAudienceError, "is for another client (aud)"),
        (jwt.InvalidIssuerError, "is from another issuer (iss)"),
        (jwt.InvalidAlgorithmError, "uses an algorithm its key does not allow"),
    ]
    if isinstance(e, jwt.MissingRequiredClaimError):
        return f"lacks the {e.claim} claim"
    for kind, text in reasons:
        if isinstance(e, kind):
            return text
    return "is malformed"


# --- Configuration ---------------------------------------------------------------------------

CALLBACK_PATH = "/login/oidc/callback"


def provider_from_settings(
    issuer: str | None,
    client_id: str | None,
    redirect_uri: str | None,
    client_secret_file: Path | None = None,
    personnummer_claim: str | None = None,
    staff_claim: str | None = None,
    scope: str | None = None,
    client_secret: str | None = None,
) -> OIDCProvider | None:
    """The configured provider, None when OIDC is not configured at all, or ``InputError``
    naming every missing or wrong setting when it is configured only in part.

    The client secret comes from ``client_secret_file`` or ``client_secret`` (the setting
    ``BRYGGA_OIDC_CLIENT_SECRET``; never a command-line argument: those are visible to every
    user of the machine).
    """
    secret = client_secret or None
    given = {
        "--oidc-issuer (BRYGGA_OIDC_ISSUER)": issuer,
        "--oidc-client-id (BRYGGA_OIDC_CLIENT_ID)": client_id,
        "--oidc-redirect-uri (BRYGGA_OIDC_REDIRECT_URI)": redirect_uri,
        "a client secret (BRYGGA_OIDC_CLIENT_SECRET or --oidc-client-secret-file)": secret
        or client_secret_file,
    }
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise InputError("OIDC log-in is only partly configured; missing " + ", ".join(missing))
    if secret and client_secret_file:
        raise InputError(
            "give the OIDC client secret once: BRYGGA_OIDC_CLIENT_SECRET or "
            "--oidc-client-secret-file, not both"
        )
    if client_secret_file is not None:
        secret = _read_secret(client_secret_file)
    assert issuer and client_id and redirect_uri and secret
    _check_url(issuer, "--oidc-issuer", path=None)
    _check_url(redirect_uri, "--oidc-redirect-uri", path=CALLBACK_PATH)
    return OIDCProvider(
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        redirect_uri=redirect_uri,
        personnummer_claim=personnummer_claim or "personal_identity_number",
        staff_claim=staff_claim or "email",
        scope=scope or "openid profile",
    )


def _read_secret(path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise InputError(f"--oidc-client-secret-file {path}: cannot read ({e.strerror})") from None
    if not secret:
        raise InputError(f"--oidc-client-secret-file {path}: the file is empty")
    return secret


def _check_url(url: str, option: str, path: str | None) -> None:
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise InputError(f"{option}: must be an https:// URL (http only for localhost)")
    if path is not None and not parts.path.rstrip("/").endswith(path):
        raise InputError(f"{option}: must end in {path} (Brygga's callback)")
