"""Property-based fuzzing of every route of the OpenAPI schema (schemathesis, in process).

Each operation is called with generated valid and invalid parameters and bodies, as anonymous
and as each role it admits, with a fixed seed and a bounded number of examples (the whole test
takes well under a minute). No answer may be a 5xx; every ``/api`` answer is JSON, errors in the
one JSON error shape (``web/app.py``).
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from brygga.web.app import routers

EXAMPLES = 12  # per operation and role
CSRF = "fuzz-csrf-token"
# Ending the session (or the account) would leave the operations after it nothing to reach.
LAST = ("/logout", "/portal/delete")


def declared_roles() -> dict[tuple[str, str], frozenset[str]]:
    found = {}
    for router in routers():
        for route in router.routes:
            (roles,) = [
                d.call.roles for d in route.dependant.dependencies if hasattr(d.call, "roles")
            ]
            for method in route.methods:
                found[(method, route.path)] = roles
    return found


def check(case, response) -> None:
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    if not case.path.startswith("/api/") or case.path == "/api/docs":
        return
    types = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    assert types[0].startswith("application/json"), where
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["status"] == response.status_code, where
        assert isinstance(error["code"], str) and isinstance(error["message"], str), where
        assert isinstance(error["fields"], dict), where


def fuzz(operation, cookies: dict[str, str]) -> int:
    calls = 0
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # a fixed seed: the same cases every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure names its case
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        nonlocal calls
        response = case.call(
            headers={"X-CSRF-Token": CSRF},
            cookies={"brygga_csrf": CSRF, **cookies},
            allow_redirects=False,
        )
        calls += 1
        check(case, response)

    run()
    return calls


def test_every_route_survives_fuzzing(site):
    started = time.monotonic()
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", site["app"])
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (op.path in LAST, op.path, op.method),
    )
    roles = declared_roles()
    # Every route but the API's own documentation page (/api/docs, not in the schema).
    documented = {k for k in roles if k[0] != "HEAD" and k != ("GET", "/api/docs")}
    assert len(operations) == len(documented) >= 35
    sessions = {}
    for role in ("resident", "researcher", "research_office", "care_provider", "admin"):
        sessions[role] = site["client"](role).http.cookies["brygga_session"]
    calls = 0
    for operation in operations:
        allowed = roles[(operation.method.upper(), operation.path)]
        as_whom = [{}] + [{"brygga_session": sessions[r]} for r in sorted(allowed) if r in sessions]
        for cookies in as_whom:
            calls += fuzz(operation, cookies)
    assert calls >= len(operations) * 2
    assert time.monotonic() - started < 120  # bounded: it is part of every `make test`


@pytest.mark.parametrize(
    "path",
    [
        "/studies/{id}",
        "/api/studies/{id}",
        "/api/studies/{id}/funnel",
        "/studies/{id}/contacts",
    ],
)
def test_ids_beyond_64_bits_are_invalid_input_not_a_crash(site, path):
    c = site["client"]("researcher")
    for value in (2**63, 2**64, 10**30):
        r = c.get(path.format(id=value), headers={"Accept": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"] == {"study_id": r.json()["error"]["fields"]["study_id"]}
    r = c.get(path.format(id=2**63 - 1), headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("role", "path", "data"),
    [
        ("researcher", "/studies/{id}/feasibility", {}),
        ("resident", "/portal/invitations/{id}", {"answer": "interested"}),
        ("care_provider", "/invitations/{id}/outcome", {"outcome": "enrolled"}),
    ],
)
def test_posts_with_ids_beyond_64_bits_are_invalid_input(site, role, path, data):
    c = site["client"](role)
    r = c.post(path.format(id=2**63), data=data, headers={"Accept": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
