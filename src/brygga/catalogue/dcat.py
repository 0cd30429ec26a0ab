"""A region's datasets in DCAT-AP 3 with the HealthDCAT-AP health properties.

``describe(region, policy)`` reads what the region holds: its manifest (name, source, created,
schema version), its tables and their columns from ``records.schema`` (one distribution per
table, its variables as a CSV on the Web table schema), the temporal coverage from
``observation_period`` and the number of people, **disclosed** through the release gate
(``privacy.gate.single`` with the platform's policy and, under the cell key method, the people's
cell key from ``privacy.people``: rounded, perturbed or suppressed like every other count; the
raw number never leaves). ``build(entries, settings)`` adds the publisher and contact point from
the settings (``BRYGGA_CATALOGUE_*``) and ``Catalogue.graph()`` makes the RDF graph
(rdflib), serialized as Turtle or JSON-LD.

Vocabularies: DCAT 3 and DCAT-AP 3.0 (SEMIC), HealthDCAT-AP (namespace
``http://healthdataportal.eu/ns/health#``, a draft: ``numberOfUniqueIndividuals``,
``healthCategory``), the EU Publications Office authority tables (access rights, data theme,
file type, language), CSVW for the variables. Titles and descriptions come from the message
catalogue (domain ``data``) in Swedish and English. The shapes in ``shapes/`` (our own subset,
see its PROVENANCE.md) state what each class must carry; the tests validate with pyshacl.

Not published, on purpose: row counts of the event tables (counts of records, which the release
gate has no keys for), the record keys table (``person_key``, never shown) and the identities
(never part of a region). Coverage dates are published to the month: the first and last days
of the data are single people's dates.
"""

from __future__ import annotations

__all__ = [
    "FORMATS",
    "SHAPES",
    "Catalogue",
    "DatasetEntry",
    "TableEntry",
    "Variable",
    "build",
    "describe",
    "slug",
]

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from brygga.config import CatalogueSettings
from brygga.messages import translate
from brygga.privacy.cellkey import cell_key
from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.gate import single
from brygga.privacy.people import people_counter
from brygga.records import schema
from brygga.records.store import Region

SHAPES = Path(__file__).parent / "shapes" / "brygga-healthdcat-ap.shacl.ttl"
# --format -> (media type, file suffix, rdflib format name)
FORMATS = {
    "turtle": ("text/turtle", "ttl", "turtle"),
    "jsonld": ("application/ld+json", "jsonld", "json-ld"),
}
LANGS = ("sv", "en")

HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
CSVW = Namespace("http://www.w3.org/ns/csvw#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
_EU = "http://publications.europa.eu/resource/authority/"
NON_PUBLIC = URIRef(_EU + "access-right/NON_PUBLIC")
HEALTH_THEME = URIRef(_EU + "data-theme/HEAL")
PARQUET = URIRef(_EU + "file-type/PARQUET")
LANGUAGES = {"sv": URIRef(_EU + "language/SWE"), "en": URIRef(_EU + "language/ENG")}
OMOP_CDM = URIRef("https://ohdsi.github.io/CommonDataModel/cdm54.html")
# The European Health Data Space regulation and the GDPR (ELI identifiers).
EHDS = URIRef("http://data.europa.eu/eli/reg/2025/327/oj")
GDPR = URIRef("http://data.europa.eu/eli/reg/2016/679/oj")

# The synthetic regions' names (synth/targets.py); another region's name is shown as it is.
_NAMES = {"skane": "Skåne", "stockholm": "Stockholm"}
# Tables never described: the cell key method's record keys are never shown.
_HIDDEN_TABLES = frozenset({"person_key"})
_XSD_TYPES = {
    pa.int64(): XSD.long,
    pa.int32(): XSD.int,
    pa.int8(): XSD.byte,
    pa.date32(): XSD.date,
    pa.float64(): XSD.double,
    pa.string(): XSD.string,
}


@dataclass(frozen=True)
class Variable:
    name: str
    datatype: str  # xsd local name: long, int, byte, date, double, string
    required: bool
    description: str  # English (the data model's documentation, records/schema.py)
    extension: bool  # not an OMOP CDM column (a Brygga extension)


@dataclass(frozen=True)
class TableEntry:
    name: str
    description: str  # English, from records/schema.py; the page shows the catalogue's text
    variables: tuple[Variable, ...]
    vocabulary: bool  # an OMOP vocabulary table (reference data, not about people)


@dataclass(frozen=True)
class DatasetEntry:
    """One region's records, as the catalogue describes them."""

    id: str  # slug, the last segment of the dataset's IRI
    region: str  # the manifest's name
    name: str  # for people: "Skåne"
    source: str  # synthetic | omop-import
    created: datetime | None
    schema_version: int
    coverage_start: date | None
    coverage_end: date | None
    population: dict[str, Any]  # disclosed: {"value": int | None, "display": str}
    disclosure: str  # the policy's description
    tables: tuple[TableEntry, ...]

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "region"


def _variables(table: schema.Table) -> tuple[Variable, ...]:
    return tuple(
        Variable(
            name=c.name,
            datatype=str(_XSD_TYPES.get(c.type, XSD.string)).rsplit("#", 1)[1],
            required=c.required,
            description=c.doc,
            extension=c.extension,
        )
        for c in table.columns
    )


def _coverage(region: Region, created: datetime | None) -> tuple[date | None, date | None]:
    """First and last month under observation; the end no later than the extract."""
    con = region.duckdb(optimized=False)
    try:
        first, last = con.execute(
            "SELECT min(observation_period_start_date), max(observation_period_end_date)"
            " FROM observation_period"
        ).fetchone()
    finally:
        con.close()
    if first is None or last is None:
        return None, None
    if created is not None and last > created.date():
        last = created.date()  # periods of synthetic people run past the day of generation
    end_day = calendar.monthrange(last.year, last.month)[1]
    return first.replace(day=1), last.replace(day=end_day)


def _population(region: Region, policy: DisclosurePolicy) -> dict[str, Any]:
    """The number of people in the records, through the release gate (a table of one cell),
    with those people's cell key under the cell key method."""
    ids = region.read_table("person", columns=["person_id"]).column("person_id").to_numpy()
    counter = people_counter(policy, region, ids)
    everyone = np.ones(len(ids), dtype=bool)
    key = None if counter.units is None else cell_key(counter.key_sum(everyone))
    return single(policy, len(ids), key)


def describe(region: Region, policy: DisclosurePolicy) -> DatasetEntry:
    """What ``region`` holds; its one count (the population) disclosed under ``policy``."""
    manifest = region.manifest
    created = None
    if isinstance(manifest.get("created"), str):
        try:
            created = datetime.fromisoformat(manifest["created"])
        except ValueError:
            created = None
    start, end = _coverage(region, created)
    tables = tuple(
        TableEntry(
            name=name,
            description=schema.table(name).doc,
            variables=_variables(schema.table(name)),
            vocabulary=schema.table(name).vocabulary,
        )
        for name in region.tables()
        if name not in _HIDDEN_TABLES
    )
    return DatasetEntry(
        id=slug(region.name),
        region=region.name,
        name=_NAMES.get(region.name, region.name),
        source=str(manifest.get("source", "")),
        created=created,
        schema_version=int(manifest.get("schema_version", schema.SCHEMA_VERSION)),
        coverage_start=start,
        coverage_end=end,
        population=_population(region, policy),
        disclosure=policy.description,
        tables=tables,
    )


@dataclass(frozen=True)
class Catalogue:
    base_url: str
    publisher: str
    publisher_url: str
    contact_name: str
    contact_email: str
    datasets: tuple[DatasetEntry, ...] = field(default_factory=tuple)

    # --- IRIs: fragments of the public page, so that each resolves to its description ----

    @property
    def iri(self) -> URIRef:
        return URIRef(f"{self.base_url}/data#catalogue")

    @property
    def page(self) -> URIRef:
        return URIRef(f"{self.base_url}/data")

    def dataset_iri(self, d: DatasetEntry) -> URIRef:
        return URIRef(f"{self.base_url}/data#{d.id}")

    def table_iri(self, d: DatasetEntry, t: TableEntry) -> URIRef:
        return URIRef(f"{self.base_url}/data#{d.id}-{t.name}")

    # --- the graph --------------------------------------------------------------------------

    def graph(self) -> Graph:
        g = Graph()
        for prefix, ns in (
            ("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("skos", SKOS),
            ("vcard", VCARD), ("csvw", CSVW), ("healthdcatap", HEALTH), ("dcatap", DCATAP),
            ("xsd", XSD), ("rdfs", RDFS),
        ):  # fmt: skip
            g.bind(prefix, ns)
        cat = self.iri
        g.add((cat, RDF.type, DCAT.Catalog))
        self._text(g, cat, DCTERMS.title, "data_catalogue_title")
        self._text(g, cat, DCTERMS.description, "data_catalogue_description")
        publisher = self._publisher(g)
        g.add((cat, DCTERMS.publisher, publisher))
        g.add((cat, FOAF.homepage, self.page))
        g.add((self.page, RDF.type, FOAF.Document))
        for lang in LANGS:
            g.add((cat, DCTERMS.language, LANGUAGES[lang]))
            g.add((LANGUAGES[lang], RDF.type, DCTERMS.LinguisticSystem))
        created = [d.created for d in self.datasets if d.created is not None]
        if created:
            g.add((cat, DCTERMS.modified, Literal(max(created).date(), datatype=XSD.date)))
        for d in self.datasets:
            g.add((cat, DCAT.dataset, self._dataset(g, d, publisher)))
        return g

    def serialize(self, fmt: str = "turtle") -> str:
        """The catalogue as Turtle (``turtle``) or JSON-LD (``jsonld``)."""
        return self.graph().serialize(format=FORMATS[fmt][2])

    def _text(self, g: Graph, node: Any, prop: URIRef, key: str, **params: str) -> None:
        for lang in LANGS:
            g.add((node, prop, Literal(translate(key, lang).format(**params), lang=lang)))

    def _publisher(self, g: Graph) -> URIRef:
        agent = URIRef(self.publisher_url)
        g.add((agent, RDF.type, FOAF.Agent))
        g.add((agent, RDF.type, FOAF.Organization))
        g.add((agent, FOAF.name, Literal(self.publisher)))
        g.add((agent, FOAF.homepage, URIRef(self.publisher_url)))
        return agent

    def _contact(self, g: Graph) -> BNode:
        kind = BNode()
        g.add((kind, RDF.type, VCARD.Kind))
        g.add((kind, RDF.type, VCARD.Organization))
        g.add((kind, VCARD.fn, Literal(self.contact_name)))
        g.add((kind, VCARD.hasEmail, URIRef(f"mailto:{self.contact_email}")))
        return kind

    def _dataset(self, g: Graph, d: DatasetEntry, publisher: URIRef) -> URIRef:
        ds = self.dataset_iri(d)
        g.add((ds, RDF.type, DCAT.Dataset))
        self._text(g, ds, DCTERMS.title, "data_dataset_title", region=d.name)
        self._text(g, ds, DCTERMS.description, "data_dataset_description", region=d.name)
        g.add((ds, DCTERMS.identifier, Literal(d.id)))
        g.add((ds, DCTERMS.publisher, publisher))
        g.add((ds, DCAT.contactPoint, self._contact(g)))
        g.add((ds, DCAT.landingPage, self.page))
        g.add((ds, DCTERMS.accessRights, NON_PUBLIC))
        g.add((NON_PUBLIC, RDF.type, DCTERMS.RightsStatement))
        g.add((ds, DCAT.theme, HEALTH_THEME))
        g.add((HEALTH_THEME, RDF.type, SKOS.Concept))
        g.add((ds, DCTERMS.conformsTo, OMOP_CDM))
        g.add((OMOP_CDM, RDF.type, DCTERMS.Standard))
        for law in (EHDS, GDPR):
            g.add((ds, DCATAP.applicableLegislation, law))
        for lang in LANGS:
            for word in translate("data_keywords", lang).split(";"):
                g.add((ds, DCAT.keyword, Literal(word.strip(), lang=lang)))
            g.add((ds, DCTERMS.language, LANGUAGES[lang]))
        category = URIRef(f"{self.base_url}/data#electronic-health-records")
        g.add((ds, HEALTH.healthCategory, category))
        g.add((category, RDF.type, SKOS.Concept))
        self._text(g, category, SKOS.prefLabel, "data_category_ehr")
        place = BNode()
        g.add((ds, DCTERMS.spatial, place))
        g.add((place, RDF.type, DCTERMS.Location))
        g.add((place, SKOS.prefLabel, Literal(d.name)))
        provenance = BNode()
        g.add((ds, DCTERMS.provenance, provenance))
        g.add((provenance, RDF.type, DCTERMS.ProvenanceStatement))
        source_key = "data_source_synthetic" if d.synthetic else "data_source_omop"
        self._text(g, provenance, RDFS.label, source_key)
        if d.created is not None:
            g.add((ds, DCTERMS.issued, Literal(d.created.date(), datatype=XSD.date)))
        if d.coverage_start is not None and d.coverage_end is not None:
            period = BNode()
            g.add((ds, DCTERMS.temporal, period))
            g.add((period, RDF.type, DCTERMS.PeriodOfTime))
            g.add((period, DCAT.startDate, Literal(d.coverage_start, datatype=XSD.date)))
            g.add((period, DCAT.endDate, Literal(d.coverage_end, datatype=XSD.date)))
        value = d.population.get("value")
        if value is not None:  # a suppressed count is left out, not published as 0
            g.add(
                (ds, HEALTH.numberOfUniqueIndividuals,
                 Literal(int(value), datatype=XSD.nonNegativeInteger))
            )  # fmt: skip
        for t in d.tables:
            g.add((ds, DCAT.distribution, self._distribution(g, d, t)))
        return ds

    def _distribution(self, g: Graph, d: DatasetEntry, t: TableEntry) -> URIRef:
        dist = self.table_iri(d, t)
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCTERMS.title, Literal(t.name)))
        g.add((dist, DCTERMS.description, Literal(t.description, lang="en")))
        for lang in LANGS:
            text = translate(f"data_table_{t.name}", lang)
            if text != f"data_table_{t.name}":
                g.add((dist, DCTERMS.description, Literal(text, lang=lang)))
        # Access is by request or application, not download: the access URL is the page that
        # says how (DCAT-AP: accessURL, no downloadURL).
        g.add((dist, DCAT.accessURL, self.page))
        g.add((dist, DCTERMS.format, PARQUET))
        g.add((PARQUET, RDF.type, DCTERMS.MediaTypeOrExtent))
        g.add((dist, DCTERMS.conformsTo, OMOP_CDM))
        table_schema = BNode()
        g.add((dist, CSVW.tableSchema, table_schema))
        g.add((table_schema, RDF.type, CSVW.Schema))
        for v in t.variables:
            column = BNode()
            g.add((table_schema, CSVW.column, column))
            g.add((column, RDF.type, CSVW.Column))
            g.add((column, CSVW.name, Literal(v.name)))
            g.add((column, CSVW.datatype, XSD[v.datatype]))
            g.add((column, CSVW.required, Literal(v.required)))
            g.add((column, DCTERMS.description, Literal(v.description, lang="en")))
        return dist


def build(entries: list[DatasetEntry], settings: CatalogueSettings, public_url: str) -> Catalogue:
    """The catalogue of ``entries``, published as the settings say; ``public_url``: the
    service's address, the IRIs' base unless ``settings.base_url`` gives another."""
    base = (settings.base_url or public_url).rstrip("/")
    names = sorted({e.name for e in entries})
    default = translate("data_publisher_default", "sv").format(region=names[0]) if names else ""
    return Catalogue(
        base_url=base,
        publisher=settings.publisher or default or "Brygga",
        publisher_url=settings.publisher_url or f"{base}/",
        contact_name=settings.contact_name,
        contact_email=settings.contact_email,
        datasets=tuple(entries),
    )
