"""The dataset catalogue (brygga catalogue): DCAT-AP / HealthDCAT-AP from a region, validated
against the shapes in src/brygga/catalogue/shapes with pyshacl; the population is disclosed."""

from __future__ import annotations

import json
import warnings
from datetime import date
from pathlib import Path

import pytest
from pyshacl import validate
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF, XSD

from brygga.catalogue import SHAPES
from brygga.catalogue.dcat import HEALTH, NON_PUBLIC
from brygga.cli import main
from brygga.platform import Brygga
from brygga.records import schema
from tests.spec.conftest import build_region, period, person


def make_region(out: Path, n: int, *, source: str = "synthetic") -> Path:
    persons = [
        person(i, date(1940 + i % 60, 1 + i % 12, 1), "female" if i % 2 else "male")
        for i in range(1, n + 1)
    ]
    rows = [period(p["person_id"], date(2011, 3, 15), date(2024, 8, 20)) for p in persons]
    build_region(out, persons, rows, observe_all=False, source=source)
    return out


@pytest.fixture
def region(tmp_path) -> Path:
    return make_region(tmp_path / "skane", 23)


def parse_jsonld(**source: object) -> Graph:
    """rdflib's JSON-LD parser warns about its own use of ConjunctiveGraph (rdflib 7.x)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        return Graph().parse(format="json-ld", **source)


def shapes() -> Graph:
    return Graph().parse(SHAPES)


def conforms(g: Graph) -> tuple[bool, str]:
    ok, _, text = validate(g, shacl_graph=shapes(), inference="none")
    return ok, text


def test_catalogue_conforms_to_the_shapes(region):
    cat = Brygga().catalogue([region])
    g = cat.graph()
    ok, text = conforms(g)
    assert ok, text
    ds = cat.dataset_iri(cat.datasets[0])
    assert (ds, RDF.type, DCAT.Dataset) in g
    assert (ds, DCTERMS.accessRights, NON_PUBLIC) in g
    # One distribution per table, each with its variables.
    on_disk = {p.name.removesuffix(".parquet") for p in region.iterdir()} & set(schema.TABLES)
    assert {t.name for t in cat.datasets[0].tables} == on_disk - {"person_key"}
    assert len(list(g.objects(ds, DCAT.distribution))) == len(cat.datasets[0].tables)
    assert {t.name for t in cat.datasets[0].tables} >= set(schema.CORE_TABLES)
    assert "person_key" not in {t.name for t in cat.datasets[0].tables}
    person_dist = cat.table_iri(
        cat.datasets[0], next(t for t in cat.datasets[0].tables if t.name == "person")
    )
    names = set(
        g.query(
            "SELECT ?n WHERE { ?d csvw:tableSchema/csvw:column/csvw:name ?n }",
            initBindings={"d": person_dist},
            initNs={"csvw": "http://www.w3.org/ns/csvw#"},
        )
    )
    assert {str(r[0]) for r in names} == set(schema.PERSON.column_names)
    # Temporal coverage to the month; titles in Swedish and English.
    period_node = g.value(ds, DCTERMS.temporal)
    assert g.value(period_node, DCAT.startDate) == Literal(date(2011, 3, 1), datatype=XSD.date)
    assert g.value(period_node, DCAT.endDate) == Literal(date(2024, 8, 31), datatype=XSD.date)
    assert {t.language for t in g.objects(ds, DCTERMS.title)} == {"sv", "en"}


def test_population_is_the_disclosed_count_not_the_raw_one(region, tmp_path):
    cat = Brygga().catalogue([region])
    g = cat.graph()
    ds = cat.dataset_iri(cat.datasets[0])
    # Default policy: counts below 8 suppressed, the rest rounded to 5: 23 -> 25.
    assert g.value(ds, HEALTH.numberOfUniqueIndividuals) == Literal(
        25, datatype=XSD.nonNegativeInteger
    )
    assert cat.datasets[0].population["display"] == "25"
    assert "23" not in {str(o) for o in g.objects(ds, None)}
    # A synthetic region may show raw counts when asked, as every other output.
    raw = Brygga().catalogue([region], raw=True)
    assert raw.datasets[0].population["value"] == 23
    # Too few people: suppressed, and then left out of the graph (not published as 0).
    few = make_region(tmp_path / "few", 4)
    small = Brygga().catalogue([few])
    g_small = small.graph()
    assert small.datasets[0].population["value"] is None
    assert (
        g_small.value(small.dataset_iri(small.datasets[0]), HEALTH.numberOfUniqueIndividuals)
        is None
    )
    assert conforms(g_small)[0]


def test_raw_counts_are_refused_for_a_region_that_is_not_synthetic(tmp_path, capsys):
    imported = make_region(tmp_path / "imported", 23, source="omop-import")
    with pytest.raises(Exception, match="synthetic"):
        Brygga().catalogue([imported], raw=True)
    cat = Brygga().catalogue([imported])
    assert cat.datasets[0].population["value"] == 25


def test_the_shapes_are_not_vacuous(region):
    """Removing what DCAT-AP / HealthDCAT-AP require makes validation fail."""
    cat = Brygga().catalogue([region])
    ds = cat.dataset_iri(cat.datasets[0])
    for prop in (DCTERMS.title, DCTERMS.accessRights, DCAT.contactPoint, HEALTH.healthCategory):
        g = cat.graph()
        g.remove((ds, prop, None))
        assert not conforms(g)[0], prop
    g = cat.graph()
    g.set((ds, HEALTH.numberOfUniqueIndividuals, Literal("many")))
    assert not conforms(g)[0]
    g = cat.graph()
    dist = next(iter(g.objects(ds, DCAT.distribution)))
    g.remove((dist, DCAT.accessURL, None))
    assert not conforms(g)[0]
    g = cat.graph()
    g.set((ds, DCTERMS.accessRights, URIRef("http://example.org/open")))
    assert not conforms(g)[0]


@pytest.mark.slow  # graph isomorphism of a few thousand triples
def test_turtle_and_jsonld_carry_the_same_graph(region):
    cat = Brygga().catalogue([region])
    turtle = Graph().parse(data=cat.serialize("turtle"), format="turtle")
    jsonld = parse_jsonld(data=cat.serialize("jsonld"))
    assert isomorphic(turtle, jsonld)
    assert isomorphic(turtle, cat.graph())
    json.loads(cat.serialize("jsonld"))  # plain JSON too


def test_publisher_and_contact_come_from_the_settings(region, monkeypatch):
    from brygga.config import clear_settings_cache

    monkeypatch.setenv("BRYGGA_CATALOGUE_PUBLISHER", "Region Skåne")
    monkeypatch.setenv("BRYGGA_CATALOGUE_BASE_URL", "https://brygga.skane.example/")
    monkeypatch.setenv("BRYGGA_CATALOGUE_CONTACT_EMAIL", "data@skane.example")
    clear_settings_cache()
    try:
        cat = Brygga().catalogue([region])
    finally:
        clear_settings_cache()
    text = cat.serialize("turtle")
    assert '"Region Skåne"' in text
    assert "<mailto:data@skane.example>" in text
    assert "<https://brygga.skane.example/data#spec>" in text
    assert conforms(cat.graph())[0]


# --- CLI ------------------------------------------------------------------------------------


def test_cli_writes_turtle_and_jsonld(region, tmp_path, capsys):
    out = tmp_path / "cat.jsonld"
    assert (
        main(["catalogue", "--region", str(region), "--format", "jsonld", "--out", str(out)]) == 0
    )
    assert "1 dataset" in capsys.readouterr().err
    g = parse_jsonld(source=out)
    assert conforms(g)[0]
    assert main(["catalogue", "--region", str(region)]) == 0
    g2 = Graph().parse(data=capsys.readouterr().out, format="turtle")
    assert isomorphic(g, g2)


def test_cli_bad_region_dir_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["catalogue", "--region", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "does not exist" in err
    (tmp_path / "empty").mkdir()
    assert main(["catalogue", "--region", str(tmp_path / "empty")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_cli_unknown_format(region, capsys):
    assert main(["catalogue", "--region", str(region), "--format", "rdfxml"]) == 2
    assert "--format" in capsys.readouterr().err
