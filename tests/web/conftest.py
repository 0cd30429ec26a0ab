"""An in-process app (httpx ASGITransport) on a fresh SQLite database with demo data."""

from __future__ import annotations

import asyncio
import shutil
from datetime import date, timedelta

import httpx
import pytest

from brygga.db import engine as db_engine
from brygga.db import session as db_session
from brygga.db import upgrade
from brygga.registry import consent, service
from brygga.studies import registration, staff
from brygga.web.app import WebConfig, create_app

PASSWORD = "correct horse battery"


def valid_pnr(birth: str, serial: int) -> str:
    digits = [int(c) for c in birth[2:] + f"{serial:03d}"]
    total = sum(sum(divmod(d * w, 10)) for d, w in zip(digits, [2, 1] * 5, strict=False))
    return f"{birth}-{serial:03d}{(10 - total % 10) % 10}"


def write_identities(path, n):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from brygga.records.schema import IDENTITY

    rows = [
        {
            "person_id": 1000 + i,
            "personnummer": valid_pnr(f"19{50 + i % 40:02d}0{1 + i % 9}1{i % 9}", 100 + i),
            "given_name": f"Förnamn{i}",
            "family_name": f"Efternamn{i}",
            "street_address": f"Gatan {i}",
            "postal_code": "211 20",
            "post_town": "Malmö",
            "municipality_code": "1280" if i % 2 == 0 else "1283",
            "phone": f"070-17406{i:02d}",
            "email": f"person{i}@example.com",
        }
        for i in range(n)
    ]
    schema = pa.schema([(c.name, c.type) for c in IDENTITY.columns])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return rows


TODAY = date.today()


class Client:
    """A synchronous face on ``httpx.AsyncClient`` over ASGI (no server, no sockets)."""

    def __init__(self, app) -> None:
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kw) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, url, **kw))

    def get(self, url: str, **kw) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw) -> httpx.Response:
        """POST with the CSRF token, as the site's own pages send it."""
        if "brygga_csrf" not in self.http.cookies:
            self.get("/healthz")
        token = self.http.cookies["brygga_csrf"]
        if "json" in kw:
            kw.setdefault("headers", {})["X-CSRF-Token"] = token
        else:
            kw["data"] = {"csrf_token": token, **kw.get("data", {})}
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("webdb") / "template.db"
    upgrade(f"sqlite:///{path}")
    db_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(scope="session", autouse=True)
def cheap_hashing():
    from argon2 import PasswordHasher

    staff.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    staff.use_hasher(PasswordHasher())


def study_form(**kw):
    data = {
        "title_sv": "Metformin och minne",
        "title_en": "Metformin and memory",
        "summary_sv": "Vi undersöker om metformin påverkar minnet.",
        "summary_en": "We study whether metformin affects memory.",
        "sponsor": "Lunds universitet",
        "phase": "2",
        "area": "diabetes",
        "ethics_number": "2024-01234-01",
        "target_enrolment": "100",
        "recruitment_start": (TODAY - timedelta(days=10)).isoformat(),
        "recruitment_end": (TODAY + timedelta(days=300)).isoformat(),
        "site_name": "SUS Lund",
        "site_municipality": "1281",
        "criteria_yaml": "include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n",
    }
    return data | kw


@pytest.fixture
def site(tmp_path, monkeypatch, migrated_db):
    """A database with identities, one organization, one account per staff role, one
    approved study, and a registered resident who reported type 2 diabetes."""
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    shutil.copy(migrated_db, tmp_path / "brygga.db")
    url = f"sqlite:///{tmp_path / 'brygga.db'}"
    people = write_identities(tmp_path / "ids.parquet", n=12)
    accounts = {}
    with db_session(url) as s:
        service.load_identities(s, tmp_path / "ids.parquet")
        org = staff.create_organization(s, {"name": "Lunds universitet", "kind": "university"})
        other = staff.create_organization(s, {"name": "Annat AB", "kind": "company"})
        for role, org_id in (("researcher", org.id), ("research_office", None),
                             ("care_provider", org.id), ("data_steward", None),
                             ("strategy", None), ("admin", None), ("outsider", other.id)):  # fmt: skip
            account = staff.create_staff(
                s,
                {
                    "email": f"{role}@example.com",
                    "display_name": role,
                    "role": "researcher" if role == "outsider" else role,
                    "organization_id": org_id,
                    "password": PASSWORD,
                },
            )
            accounts[role] = account.id
        researcher = staff.get(s, accounts["researcher"])
        office = staff.get(s, accounts["research_office"])
        form = study_form()
        data = {k: v for k, v in form.items() if not k.startswith("site_")}
        data["sites"] = [{"name": "SUS Lund", "municipality_code": "1281"}]
        study = registration.create_study(s, researcher, data)
        registration.submit(s, researcher, study)
        registration.review(s, office, study, approve=True)
        resident = service.register(s, service.by_personnummer(s, people[0]["personnummer"]))
        service.update_profile(s, resident, {"conditions": ["t2d"]})
        version = consent.TEXTS["contact"].version
        consent.record_consent(s, resident, "contact", True, text_version=version)
        ids = {"study": study.id, "resident_ref": resident.ref}
    config = WebConfig(database_url=url, demo=True, outbox_path=tmp_path / "outbox.jsonl")
    app = create_app(config)
    clients = []

    def log_in(c: Client, role: str) -> str | None:
        """Log ``c`` in as ``role``; returns the new session cookie."""
        c.http.cookies.delete("brygga_session")
        if role == "resident":
            r = c.post("/login/demo", data={"ref": ids["resident_ref"]})
            assert r.status_code == 303, r.text
        elif role != "public":
            r = c.post("/login/staff", data={"email": f"{role}@example.com", "password": PASSWORD})
            assert r.status_code == 303, r.text
        return c.http.cookies.get("brygga_session")

    def client(role: str = "public") -> Client:
        c = Client(app)
        clients.append(c)
        log_in(c, role)
        return c

    yield {"app": app, "url": url, "client": client, "log_in": log_in, "ids": ids,
           "people": people, "accounts": accounts, "dir": tmp_path}  # fmt: skip
    for c in clients:
        c.close()
