"""The public /data page and the catalogue downloads, in process."""

from __future__ import annotations

import re
import warnings
from datetime import date

import pytest
from rdflib import Graph

from brygga.web.app import WebConfig, create_app
from tests.spec.conftest import build_region, period, person
from tests.web.conftest import Client


@pytest.fixture
def data_site(site, tmp_path):
    persons = [person(i, date(1950 + i % 40, 1, 1)) for i in range(1, 24)]
    rows = [period(p["person_id"], date(2012, 5, 2), date(2023, 2, 9)) for p in persons]
    region = build_region(tmp_path / "region", persons, rows, observe_all=False).path
    app = create_app(WebConfig(database_url=site["url"], region=region, demo=True))
    clients: list[Client] = []

    def client() -> Client:
        c = Client(app)
        clients.append(c)
        return c

    yield client
    for c in clients:
        c.close()


def test_data_page_lists_tables_variables_coverage_and_disclosed_population(data_site):
    c = data_site()
    r = c.get("/data")
    assert r.status_code == 200
    html = r.text
    assert "<title>Datakatalog" in html
    assert "Hälsodata för spec" in html
    assert "2012-05-01" in html and "2023-02-28" in html  # coverage, to the month
    assert ">25<" in html.replace("\n", "").replace(" ", "")  # 23 people, disclosed as 25
    assert "23" not in re.sub(r"\d{4}-\d{2}-\d{2}", "", html)
    for table in ("person", "observation_period", "condition_occurrence"):
        assert f'id="spec-{table}"' in html
    assert "<code>year_of_birth</code>" in html
    assert 'href="/data/catalogue.ttl"' in html and 'href="/data/catalogue.jsonld"' in html
    assert "Inte öppna data" in html  # access rights, in Swedish
    c.get("/lang/en")
    english = c.get("/data").text
    assert "Health records of spec" in english and "Number of people" in english


def test_downloads_are_turtle_and_jsonld_of_the_same_catalogue(data_site):
    c = data_site()
    ttl = c.get("/data/catalogue.ttl")
    assert ttl.status_code == 200
    assert ttl.headers["content-type"].startswith("text/turtle")
    jsonld = c.get("/data/catalogue.jsonld")
    assert jsonld.headers["content-type"].startswith("application/ld+json")
    g1 = Graph().parse(data=ttl.text, format="turtle")
    with warnings.catch_warnings():  # rdflib's JSON-LD parser uses its own deprecated class
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        g2 = Graph().parse(data=jsonld.text, format="json-ld")
    assert len(g1) == len(g2) > 100
    assert '"25"^^xsd:nonNegativeInteger' in ttl.text


def test_without_a_region_the_page_says_so(site):
    c = site["client"]("public")
    r = c.get("/data")
    assert r.status_code == 200
    assert "Inga datamängder är publicerade än." in r.text
    assert c.get("/data/catalogue.ttl").status_code == 200
