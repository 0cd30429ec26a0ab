"""A real server (uvicorn on a free loopback port, in a thread) and Debian's headless Chromium
driven by Playwright. Playwright's own browser downloads are never used.

Chromium must be at /usr/bin/chromium (`make test` installs it as root, `.ci/services.sh
chromium`); without it these tests fail with a message saying how to install it - they are
never skipped. Screenshots of every open page are saved when a test fails, under
``$BRYGGA_TEST_ARTIFACTS`` (default: ``<tmp>/brygga-test-artifacts``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.e2e.serving import serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip

PASSWORD = "correct horse battery"
ROLES = ("researcher", "research_office", "care_provider", "data_steward", "strategy", "admin")
TODAY = date.today()


def artifacts_dir() -> Path:
    path = Path(
        os.environ.get("BRYGGA_TEST_ARTIFACTS")
        or Path(tempfile.gettempdir()) / "brygga-test-artifacts"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


def valid_pnr(birth: str, serial: int) -> str:
    digits = [int(c) for c in birth[2:] + f"{serial:03d}"]
    total = sum(sum(divmod(d * w, 10)) for d, w in zip(digits, [2, 1] * 5, strict=False))
    return f"{birth}-{serial:03d}{(10 - total % 10) % 10}"


def write_identities(path: Path, n: int) -> list[dict]:
    """``n`` adult synthetic people, half in Malmö (1280), half in Lund (1281)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from brygga.records.schema import IDENTITY

    rows = [
        {
            "person_id": 5000 + i,
            "personnummer": valid_pnr(f"19{60 + i % 30:02d}0{1 + i % 9}1{i % 9}", 200 + i),
            "given_name": f"Testa{i}",
            "family_name": f"Person{i}",
            "street_address": f"Storgatan {i}",
            "postal_code": "211 20",
            "post_town": "Malmö",
            "municipality_code": "1280" if i % 2 == 0 else "1281",
            "phone": f"070-55501{i:02d}",
            "email": f"testa{i}@example.com",
        }
        for i in range(n)
    ]
    schema = pa.schema([(c.name, c.type) for c in IDENTITY.columns])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return rows


def study_data(title: str) -> dict:
    return {
        "title_sv": title,
        "title_en": title,
        "summary_sv": "Vi undersöker blodtryck.",
        "summary_en": "We study blood pressure.",
        "sponsor": "Lunds universitet",
        "phase": "2",
        "area": "cardiovascular",
        "ethics_number": "2024-01234-01",
        "target_enrolment": 50,
        "recruitment_start": (TODAY - timedelta(days=5)).isoformat(),
        "recruitment_end": (TODAY + timedelta(days=200)).isoformat(),
        "sites": [{"name": "SUS Malmö", "municipality_code": "1280"}],
        "criteria_yaml": "include:\n  - condition: {codes: [I10], vocabulary: ICD10}\n",
    }


@pytest.fixture(scope="session")
def make_identities():
    """``make_identities(path, n)``: an identities file of ``n`` synthetic adults."""
    return write_identities


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, databases) -> Iterator[dict]:
    """A seeded SQLite database and the app serving it over real HTTP on 127.0.0.1."""
    from argon2 import PasswordHasher

    from brygga.db import session as db_session
    from brygga.registry import consent, service
    from brygga.studies import registration, staff
    from brygga.web.app import WebConfig, create_app

    folder = tmp_path_factory.mktemp("e2e")
    url = databases.sqlite(folder)
    old_dir = os.environ.get("BRYGGA_DATA_DIR")
    os.environ["BRYGGA_DATA_DIR"] = str(folder)  # the audit log goes there
    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    people = write_identities(folder / "ids.parquet", n=6)
    with db_session(url) as s:
        service.load_identities(s, folder / "ids.parquet")
        org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        accounts = {}
        for role in ROLES:
            accounts[role] = staff.create_staff(
                s,
                {
                    "email": f"{role}@example.com",
                    "display_name": role.replace("_", " ").title(),
                    "role": role,
                    "organization_id": org.id if role in ("researcher", "care_provider") else None,
                    "password": PASSWORD,
                },
            )
        # A study with an interested volunteer already, for the page checks (accessibility).
        study = registration.create_study(s, accounts["researcher"], study_data("Seeded study"))
        registration.submit(s, accounts["researcher"], study)
        registration.review(s, accounts["research_office"], study, approve=True)
        other = service.register(s, service.by_personnummer(s, people[1]["personnummer"]))
        service.update_profile(s, other, {"conditions": ["hypertension"]})
        version = consent.TEXTS["contact"].version
        consent.record_consent(s, other, "contact", True, text_version=version)
        seeded_study = study.id
    from brygga.studies import invitations, matching

    with db_session(url) as s:
        matching.match_all(s, lambda _study: None)
        other = service.by_personnummer(s, people[1]["personnummer"])
        (inv,) = invitations.for_resident(s, other)
        invitations.answer(s, other, inv.id, True)

    config = WebConfig(database_url=url, demo=True, outbox_path=folder / "outbox.jsonl")
    app = create_app(config)
    try:
        with serve_in_thread(app) as base:
            yield {"base": base, "url": url, "people": people, "study": seeded_study,
                   "dir": folder, "app": app, "accounts": {r: a.id for r, a in accounts.items()}}  # fmt: skip
    finally:
        staff.use_hasher(PasswordHasher())
        if old_dir is None:
            os.environ.pop("BRYGGA_DATA_DIR", None)
        else:
            os.environ["BRYGGA_DATA_DIR"] = old_dir


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop: release it
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(
            "the browser tests need Debian's chromium at /usr/bin/chromium: run `make test` as "
            "root (it installs it) or `sudo apt-get install chromium`",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def sessions(browser, site) -> dict:
    """Log-in cookies per role, logged in once per module (the log-in is rate limited)."""
    return {}


@pytest.fixture
def open_page(browser, site, request: pytest.FixtureRequest) -> Iterator:
    """``open_page()`` gives a page in a fresh browser context (its own cookies: one per
    person). Every page is screenshotted if the test fails."""
    contexts, pages = [], []

    def factory(storage_state: dict | None = None):
        # The app's CSP allows only its own scripts; axe is injected by the test harness.
        context = browser.new_context(
            base_url=site["base"], bypass_csp=True, locale="sv-SE", storage_state=storage_state
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        pages.append(page)
        return page

    yield factory
    if request.node.stash.get(FAILED, False):
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        for i, page in enumerate(pages):
            target = artifacts_dir() / f"{name}-{i}.png"
            page.screenshot(path=str(target), full_page=True)
            print(f"screenshot: {target}")
    for context in contexts:
        context.close()
