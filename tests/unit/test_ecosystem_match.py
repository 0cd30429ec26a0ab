"""Needs -> offerings on the seed directory: the test set, reasons, languages, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brygga import clock
from brygga.cli import main
from brygga.documents import read_file
from brygga.ecosystem.match import NeedDocument
from brygga.ecosystem.service import Ecosystem
from brygga.ecosystem.text import detect_language, stem_sv, tokens

NEEDS = Path(__file__).resolve().parents[1] / "data" / "ecosystem_needs.yaml"


def cases() -> list[tuple[NeedDocument, list[str]]]:
    data = read_file(NEEDS, "needs").data["needs"]
    return [(NeedDocument.model_validate(n["need"]), n["top3"]) for n in data]


@pytest.fixture(scope="module")
def eco(tmp_path_factory, databases):
    folder = tmp_path_factory.mktemp("eco-match")
    url = databases.sqlite(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRYGGA_DATA_DIR", str(folder))
        eco = Ecosystem(url)
        eco.seed(actor="test")
        yield eco


def test_the_test_set_has_swedish_and_english_needs():
    found = cases()
    assert len(found) >= 12
    langs = [detect_language(tokens(f"{n.title} {n.description}")) for n, _ in found]
    assert langs.count("sv") >= 6 and langs.count("en") >= 6


@pytest.mark.parametrize("case", range(len(cases())))
def test_expected_entries_rank_in_the_top_three(eco, case):
    need, expected = cases()[case]
    ranked = eco.match(need, limit=3)
    top = [r["id"] for r in ranked]
    assert set(expected) <= set(top), (need.title, top)
    assert all(r["reasons"] for r in ranked)


def test_reasons_name_the_need_s_words_in_its_language(eco):
    need = NeedDocument(
        title="GMP för cellterapi",
        description="Tillverkning av cell- och genterapier.",
        trl=6,
        languages=["sv"],
    )
    ranked = {r["id"]: r for r in eco.match(need, limit=2)}
    best = ranked["atmp-centrum-gmp"]  # beside Karolinska Centrum för Cellterapi
    text = " | ".join(best["reasons"])
    assert "Cell- och genterapi (ATMP)" in text and "TRL 6" in text and "svenska" in text
    english = {r["id"]: r for r in eco.match(need, limit=2, lang="en")}["atmp-centrum-gmp"]
    assert "Cell and gene therapy (ATMP)" in " | ".join(english["reasons"])
    assert english["name"] == "ATMP Centre GMP facility (Skåne University Hospital)"


def test_a_swedish_need_finds_an_entry_described_only_in_english_words_through_synonyms(eco):
    # "sekvensering" (sv) and "sequencing" (en) are one concept.
    sv = eco.match(
        NeedDocument(title="Sekvensering", description="Helgenomsekvensering av prover."), limit=3
    )
    en = eco.match(
        NeedDocument(title="Sequencing", description="Whole genome sequencing of samples."), limit=3
    )
    assert {r["id"] for r in sv} & {r["id"] for r in en} >= {"scilifelab-lund"}


def test_expired_entries_are_not_offered(eco):
    need = NeedDocument(title="Neutronspridning", description="Neutronspridning på membran.")
    assert eco.match(need, limit=1)[0]["id"] == "ess"
    later = clock.now().replace(year=clock.now().year + 2)
    with clock.frozen(later):
        assert eco.match(need, limit=50) == []


def test_swedish_stemmer_follows_snowball():
    # Snowball's Swedish test vocabulary.
    for word, stem in [("kliniska", "klinisk"), ("prövningar", "prövning"), ("bolagen", "bolag"),
                       ("infrastrukturer", "infrastruktur"), ("jaktkarlarne", "jaktkarl"),
                       ("klokheten", "klok"), ("lärorikt", "lärorik")]:  # fmt: skip
        assert stem_sv(word) == stem, word


def test_cli_match_json(tmp_path, monkeypatch, fresh_db, capsys):
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BRYGGA_DATABASE_URL", fresh_db)
    assert main(["ecosystem", "seed"]) == 0
    need = tmp_path / "need.yaml"
    need.write_text(
        "title: Röntgen av proteiner\ndescription: Strukturbestämning med synkrotron.\n"
    )
    capsys.readouterr()
    assert main(["ecosystem", "match", str(need), "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert ranked[0]["id"] == "max-iv"
    assert set(ranked[0]) >= {"id", "name", "type", "score", "reasons"}
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    need.write_text("title: x\ndescription: y\ntrl: 12\n")
    assert main(["ecosystem", "match", str(need)]) == 2
    assert "trl (line 3): must be <= 9" in capsys.readouterr().err


def test_every_vocabulary_key_has_a_label_in_both_languages():
    from brygga.ecosystem import models, profiles
    from brygga.messages import catalogue

    keys = [f"eco_type_{t}" for t in models.ENTRY_TYPES]
    keys += [
        f"eco_area_{a}"
        for a in (*profiles.THERAPY_AREAS, *profiles.TECHNOLOGY_AREAS, "cross_border")
    ]
    keys += [f"eco_support_{k}" for k in profiles.SUPPORT_KINDS]
    keys += [f"eco_price_{p}" for p in models.PRICE_MODELS]
    keys += [f"eco_region_{r}" for r in profiles.REGIONS]
    keys += [f"eco_lang_{x}" for x in profiles.LANGUAGES]
    assert [k for k in keys if k not in catalogue()] == []
