"""OIDC log-in end to end through the ASGI app, against a mock IdP in process.

The mock IdP (httpx.MockTransport) publishes a JWKS and signs ID tokens with a freshly
generated key; each refusal case changes one thing about what it returns and checks that the
callback answers 4xx with a message naming the problem, and that no session was started.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from brygga.db import session as db_session
from brygga.errors import InputError
from brygga.studies import staff
from brygga.web import auth
from brygga.web.app import WebConfig, create_app
from brygga.web.auth import OIDCProvider, provider_from_settings
from tests.web.conftest import Client

ISSUER = "https://idp.example"
CLIENT_ID = "brygga"
SECRET = "client-secret"
CALLBACK = "http://testserver/login/oidc/callback"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def keys():
    """Two RSA keys (the IdP's and an attacker's) and one P-256 key, made once per module."""
    return {
        "idp": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "attacker": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class MockIdP:
    """Discovery, JWKS, token and userinfo endpoints of an issuer, in process."""

    def __init__(self, key: Any, alg: str = "RS256", kid: str = "k1") -> None:
        self.key, self.alg, self.kid = key, alg, kid
        self.published: dict[str, Any] = {kid: key}  # kid -> private key (public part served)
        self.claims: dict[str, Any] = {}  # overrides of the ID token's claims (None removes)
        self.userinfo: dict[str, Any] = {}
        self.forge: Callable[[dict[str, Any]], str] | None = None  # craft a bad token instead
        self.codes: dict[str, tuple[str, str]] = {}  # authorization code -> nonce, challenge
        self.jwks_fetches = 0
        self.discovery_issuer = ISSUER

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.discovery_issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "userinfo_endpoint": f"{ISSUER}/userinfo",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(
                200, json={"keys": [jwk(k, kid) for kid, k in self.published.items()]}
            )
        if path == "/token":
            return self.token(request)
        if path == "/userinfo":
            if request.headers.get("authorization", "").startswith("Bearer at-"):
                return httpx.Response(200, json=self.userinfo)
            return httpx.Response(401)
        return httpx.Response(404)

    def token(self, request: httpx.Request) -> httpx.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        form = dict(parse_qsl(request.content.decode()))
        nonce, challenge = self.codes.pop(form.get("code", ""), (None, None))  # a code works once
        verifier = form.get("code_verifier", "")
        if b64(hashlib.sha256(verifier.encode()).digest()) != challenge:  # PKCE, S256
            nonce = None
        if request.headers.get("authorization") != expected or nonce is None:
            return httpx.Response(400, json={"error": "invalid_grant"})
        claims = self.id_claims(nonce)
        token = self.forge(claims) if self.forge else self.sign(claims, self.key, self.kid)
        return httpx.Response(
            200, json={"id_token": token, "access_token": "at-1", "token_type": "Bearer"}
        )

    def id_claims(self, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "sub": "subject-1",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
        } | self.claims
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: Any, kid: str) -> str:
        return jwt.encode(claims, key, algorithm=self.alg, headers={"kid": kid})

    def authorize(self, location: str) -> tuple[str, str]:
        """What the user's browser does at the IdP: returns (code, state) for the callback."""
        params = httpx.URL(location).params
        assert params["client_id"] == CLIENT_ID and params["redirect_uri"] == CALLBACK
        assert params["response_type"] == "code" and "openid" in params["scope"].split()
        code = secrets.token_urlsafe(8)
        assert params["code_challenge_method"] == "S256"
        self.codes[code] = (params["nonce"], params["code_challenge"])
        return code, params["state"]


def jwk(private_key: Any, kid: str) -> dict[str, Any]:
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True) | {"alg": "RS256"}
    else:
        data = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True) | {"alg": "ES256"}
    return data | {"kid": kid, "use": "sig"}


def unsigned(claims: dict[str, Any], header: dict[str, Any], key: bytes = b"") -> str:
    """A token with any header: HS256 over ``key``, or no signature at all for alg none."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    if header["alg"] == "none":
        return head + "."
    return head + "." + b64(hmac.new(key, head.encode(), hashlib.sha256).digest())


@pytest.fixture
def idp(keys):
    return MockIdP(keys["idp"])


@pytest.fixture
def oidc_site(site, idp):
    """The test site with OIDC configured against the mock IdP (demo mode off)."""
    provider = OIDCProvider(
        ISSUER, CLIENT_ID, SECRET, CALLBACK, personnummer_claim="ssn", transport=idp.transport()
    )
    app = create_app(WebConfig(database_url=site["url"], oidc=provider))
    clients: list[Client] = []

    def client() -> Client:
        clients.append(Client(app))
        return clients[-1]

    yield {**site, "client": client, "provider": provider}
    for c in clients:
        c.close()


def pnr_of(site: dict[str, Any], i: int = 0) -> str:
    return site["people"][i]["personnummer"]


def log_in(c: Client, idp: MockIdP, start: str = "/login/oidc") -> httpx.Response:
    begun = c.get(start)
    assert begun.status_code == 303
    assert auth.PENDING_COOKIE in c.http.cookies
    code, state = idp.authorize(begun.headers["location"])
    return c.get("/login/oidc/callback", params={"code": code, "state": state}, headers=JSON)


def assert_no_session(c: Client) -> None:
    assert "brygga_session" not in c.http.cookies
    assert auth.PENDING_COOKIE not in c.http.cookies  # a refused log-in ends the pending one
    assert c.get("/portal", headers=JSON).status_code == 401


def test_valid_login_starts_a_resident_session(oidc_site, idp):
    pnr = pnr_of(oidc_site)
    idp.claims = {"ssn": pnr.replace("-", "")}  # Idura/Criipto style: 12 digits in the ID token
    c = oidc_site["client"]()
    r = log_in(c, idp)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text
    assert auth.PENDING_COOKIE not in c.http.cookies
    assert c.get("/portal").status_code == 200
    # A second log-in uses the cached key set.
    other = oidc_site["client"]()
    begun = other.get("/login/oidc")
    code, state = idp.authorize(begun.headers["location"])
    callback = {"code": code, "state": state}
    assert other.get("/login/oidc/callback", params=callback).status_code == 303
    assert idp.jwks_fetches == 1
    # Replaying the callback: the pending log-in is gone.
    replay = other.get("/login/oidc/callback", params=callback, headers=JSON)
    assert replay.status_code == 403 and "not started here" in replay.json()["error"]["message"]
    # The used code with a fresh log-in's state: the IdP refuses it (one use; PKCE verifier).
    third = oidc_site["client"]()
    fresh = httpx.URL(third.get("/login/oidc").headers["location"]).params["state"]
    r = third.get("/login/oidc/callback", params={"code": code, "state": fresh}, headers=JSON)
    assert r.status_code == 403 and "token endpoint" in r.json()["error"]["message"]
    assert "brygga_session" not in third.http.cookies


def test_personnummer_from_userinfo_for_the_same_subject(oidc_site, idp):
    idp.userinfo = {"sub": "subject-1", "ssn": pnr_of(oidc_site, 1)}
    c = oidc_site["client"]()
    r = log_in(c, idp)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text


def test_rotated_keys_are_fetched_again_once(oidc_site, idp, keys):
    idp.claims = {"ssn": pnr_of(oidc_site)}
    assert log_in(oidc_site["client"](), idp).status_code == 303
    idp.key, idp.kid, idp.published = keys["attacker"], "k2", {"k2": keys["attacker"]}
    assert log_in(oidc_site["client"](), idp).status_code == 303
    assert idp.jwks_fetches == 2


def test_es256_tokens_verify(site, keys):
    idp = MockIdP(keys["ec"], alg="ES256", kid="ec1")
    idp.claims = {"personal_identity_number": pnr_of(site)}
    provider = OIDCProvider(ISSUER, CLIENT_ID, SECRET, CALLBACK, transport=idp.transport())
    c = Client(create_app(WebConfig(database_url=site["url"], oidc=provider)))
    try:
        assert log_in(c, idp).status_code == 303
    finally:
        c.close()


def _wrong_key(idp: MockIdP, keys: dict[str, Any]) -> None:
    idp.forge = lambda claims: idp.sign(claims, keys["attacker"], idp.kid)


def _unknown_kid(idp: MockIdP, keys: dict[str, Any]) -> None:
    idp.forge = lambda claims: idp.sign(claims, keys["attacker"], "k-unknown")


def _alg_none(idp: MockIdP, keys: dict[str, Any]) -> None:
    idp.forge = lambda claims: unsigned(claims, {"alg": "none", "kid": idp.kid})


def _hs256_with_public_key(idp: MockIdP, keys: dict[str, Any]) -> None:
    pem = (
        keys["idp"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    idp.forge = lambda claims: unsigned(claims, {"alg": "HS256", "kid": idp.kid}, pem)


def _claims(**changes: Any) -> Callable[[MockIdP, dict[str, Any]], None]:
    def change(idp: MockIdP, keys: dict[str, Any]) -> None:
        now = int(time.time())
        idp.claims |= {k: v(now) if callable(v) else v for k, v in changes.items()}

    return change


REFUSALS = {
    "wrong signature": (_wrong_key, 403, "signature does not verify"),
    "unknown kid": (_unknown_kid, 403, "does not publish"),
    "alg none": (_alg_none, 403, "algorithm is refused (none)"),
    "HS256 with the public key": (_hs256_with_public_key, 403, "algorithm is refused (HS256)"),
    "wrong audience": (_claims(aud="someone-else"), 403, "another client (aud)"),
    "wrong issuer": (_claims(iss="https://evil.example"), 403, "another issuer (iss)"),
    "expired": (_claims(exp=lambda now: now - 600, iat=lambda now: now - 900), 403, "expired"),
    "issued in the future": (_claims(iat=lambda now: now + 3600), 403, "not valid yet"),
    "nonce mismatch": (_claims(nonce="another-nonce"), 403, "nonce does not match"),
    "no nonce": (_claims(nonce=None), 403, "nonce does not match"),
    "no exp": (_claims(exp=None), 403, "lacks the exp claim"),
    "other azp": (_claims(aud=[CLIENT_ID, "x"], azp="x"), 403, "another client (azp)"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_bad_id_tokens_are_refused_without_a_session(oidc_site, idp, keys, case):
    change, status, message = REFUSALS[case]
    idp.claims = {"ssn": pnr_of(oidc_site)}
    change(idp, keys)
    c = oidc_site["client"]()
    r = log_in(c, idp)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]["message"]
    assert pnr_of(oidc_site).replace("-", "") not in r.text
    assert_no_session(c)
    if case == "unknown kid":
        assert idp.jwks_fetches == 2  # the cached set, then one fresh fetch


def test_userinfo_about_another_subject_is_refused(oidc_site, idp):
    idp.userinfo = {"sub": "subject-2", "ssn": pnr_of(oidc_site)}
    c = oidc_site["client"]()
    r = log_in(c, idp)
    assert r.status_code == 403 and "another subject" in r.json()["error"]["message"]
    assert_no_session(c)


def test_invalid_personnummer_is_refused(oidc_site, idp):
    good = pnr_of(oidc_site)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)  # wrong check digit
    idp.claims = {"ssn": bad}
    c = oidc_site["client"]()
    r = log_in(c, idp)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("claim ssn: not a valid personnummer")
    assert bad not in r.text
    assert_no_session(c)


def test_callback_needs_the_signed_pending_cookie(oidc_site, idp):
    idp.claims = {"ssn": pnr_of(oidc_site)}
    c = oidc_site["client"]()
    begun = c.get("/login/oidc")
    code, state = idp.authorize(begun.headers["location"])
    cookie = c.http.cookies[auth.PENDING_COOKIE]
    tampered = cookie[:-1] + ("1" if cookie[-1] == "0" else "0")
    c.http.cookies.set(auth.PENDING_COOKIE, tampered, domain="testserver.local", path="/login/oidc")
    r = c.get("/login/oidc/callback", params={"code": code, "state": state}, headers=JSON)
    assert r.status_code == 403 and "not started here" in r.json()["error"]["message"]
    assert_no_session(c)
    c.get("/login/oidc")  # a fresh start, but the callback carries another state
    r = c.get("/login/oidc/callback", params={"code": code, "state": "forged"}, headers=JSON)
    assert r.status_code == 403 and "state mismatch" in r.json()["error"]["message"]
    assert_no_session(c)
    c.get("/login/oidc")
    r = c.get("/login/oidc/callback", params={"code": code, "state": "åäö"}, headers=JSON)
    assert r.status_code == 403 and "state mismatch" in r.json()["error"]["message"]
    r = c.get("/login/oidc/callback", params={"error": "access_denied"}, headers=JSON)
    assert r.status_code == 403 and "cancelled" in r.json()["error"]["message"]


def test_discovery_for_another_issuer_is_refused(oidc_site, idp):
    idp.discovery_issuer = "https://evil.example"
    r = oidc_site["client"]().get("/login/oidc", headers=JSON)
    assert r.status_code == 403 and "another issuer" in r.json()["error"]["message"]


def test_staff_log_in_through_the_provider(oidc_site, idp):
    with db_session(oidc_site["url"]) as s:
        staff.create_staff(
            s,
            {
                "email": "granskare@region.example",
                "display_name": "Granskare",
                "role": "research_office",
            },
        )
    idp.claims = {"email": "Granskare@Region.example", "email_verified": True}
    c = oidc_site["client"]()
    r = log_in(c, idp, start="/login/oidc/staff")
    assert r.status_code == 303 and r.headers["location"] == "/studies", r.text
    assert c.get("/studies", headers=JSON).status_code == 200
    assert c.get("/portal", headers=JSON).status_code == 403  # staff, not a resident


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"email": "researcher@example.com"}, "no staff account"),  # has a password
        ({"email": "nobody@example.com"}, "no staff account"),
        ({"email": "granskare@region.example", "email_verified": False}, "not verified"),
        ({}, "did not give claim email"),
    ],
)
def test_staff_log_in_refusals(oidc_site, idp, claims, message):
    with db_session(oidc_site["url"]) as s:
        staff.create_staff(
            s,
            {
                "email": "granskare@region.example",
                "display_name": "Granskare",
                "role": "research_office",
            },
        )
    idp.claims, idp.userinfo = claims, {"sub": "subject-1"}
    c = oidc_site["client"]()
    r = log_in(c, idp, start="/login/oidc/staff")
    assert r.status_code == 403 and message in r.json()["error"]["message"], r.text
    assert "brygga_session" not in c.http.cookies


def test_login_page_offers_both_provider_links(oidc_site):
    page = oidc_site["client"]().get("/login").text
    assert 'href="/login/oidc"' in page and 'href="/login/oidc/staff"' in page


# --- Configuration ---------------------------------------------------------------------------

FULL = {
    "issuer": "https://broker.example",
    "client_id": "brygga",
    "redirect_uri": "https://brygga.example/login/oidc/callback",
}


def test_unconfigured_means_no_provider():
    assert provider_from_settings(None, None, None) is None


def test_configured_provider_reads_the_secret_from_env_or_file(tmp_path):
    p = provider_from_settings(**FULL, staff_claim="upn", client_secret="s")
    assert p is not None and p.client_secret == "s" and p.staff_claim == "upn"
    assert p.personnummer_claim == "personal_identity_number"
    (tmp_path / "secret").write_text("from-file\n")
    p = provider_from_settings(**FULL, client_secret_file=tmp_path / "secret")
    assert p is not None and p.client_secret == "from-file"


@pytest.mark.parametrize(
    ("settings", "client_secret", "message"),
    [
        ({"issuer": "https://broker.example"}, None, "missing --oidc-client-id"),
        (FULL, None, "missing a client secret"),
        ({"client_id": "x"}, "s", "missing --oidc-issuer"),
        (FULL | {"issuer": "http://broker.example"}, "s", "https://"),
        (FULL | {"redirect_uri": "https://b.example/cb"}, "s", "must end in /login/oidc/callback"),
    ],
)
def test_partial_or_wrong_configuration_is_a_clear_error(settings, client_secret, message):
    args = {"issuer": None, "client_id": None, "redirect_uri": None} | settings
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        provider_from_settings(**args, client_secret=client_secret)


def test_secret_file_problems_name_the_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        provider_from_settings(**FULL, client_secret_file=tmp_path / "absent")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InputError, match="empty"):
        provider_from_settings(**FULL, client_secret_file=tmp_path / "empty")
    with pytest.raises(InputError, match="not both"):
        provider_from_settings(
            **FULL,
            client_secret_file=tmp_path / "empty",
            client_secret="s",
        )


def test_serve_refuses_a_partial_configuration(monkeypatch, capsys):
    from brygga.cli import main

    monkeypatch.setenv("BRYGGA_OIDC_ISSUER", "https://broker.example")
    monkeypatch.delenv("BRYGGA_OIDC_CLIENT_SECRET", raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "OIDC log-in is only partly configured" in capsys.readouterr().err


def test_the_log_in_lands_where_it_was_asked_for_on_this_site_only(oidc_site, idp):
    """A resident who pressed "Anmäl intresse" on a study lands on it after the OIDC log-in,
    as after the demo log-in. Only a path on this site is followed: another host is dropped
    (its path is taken on this site), anything that is no path lands on the portal."""
    idp.claims = {"ssn": pnr_of(oidc_site).replace("-", "")}
    page = oidc_site["client"]().get("/login", params={"next": "/studier/3/intresse"})
    assert 'href="/login/oidc?next=/studier/3/intresse"' in page.text
    for asked, landed in [
        ("/studier/3/intresse", "/studier/3/intresse"),
        ("/studier/3?lang=sv", "/studier/3?lang=sv"),
        ("//evil.example/x", "/x"),
        ("https://evil.example/studier/3", "/studier/3"),
        ("/\\evil.example", "/portal"),
        ("", "/portal"),
    ]:
        c = oidc_site["client"]()
        r = log_in(c, idp, start="/login/oidc?" + urlencode({"next": asked}))
        assert r.status_code == 303 and r.headers["location"] == landed, (asked, r.text)
