"""The packaged seed directory: valid, every entry citing a passage that is in its source."""

from __future__ import annotations

import re

import pytest

from brygga.ecosystem.directory import PACKAGED_SEED
from brygga.ecosystem.profiles import load_document

SEEDS = {
    "FIRS": "seeds/000_d6471e39795ea83f.txt",  # the Skåne agenda
    "Region Stockholm": "seeds/001_b15fc18aa84f9f06.txt",  # the Stockholm strategy
}


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def seed():
    return load_document(PACKAGED_SEED).entries


def test_every_quote_is_in_the_document_it_cites(seed, shared_dir):
    texts = {}
    for prefix, name in SEEDS.items():
        path = shared_dir / name
        assert path.is_file(), f"{path} is expected beside the checkout (shared/)"
        raw = path.read_text(encoding="utf-8")
        # The strategy texts are PDF extractions: words are split across lines with a hyphen.
        texts[prefix] = (normalized(raw), normalized(re.sub(r"-\n\s*", "", raw)))
    cited = 0
    for entry in seed:
        for prefix, (plain, joined) in texts.items():
            if entry.source.document.startswith(prefix):
                quote = normalized(entry.source.quote or "")
                assert quote and (quote in plain or quote in joined), entry.id
                cited += 1
    assert cited >= 60


def test_the_seed_covers_both_regions_the_kss_nodes_and_the_border(seed):
    ids = {e.id for e in seed}
    for named in ("max-iv", "ess", "scilifelab-lund", "atmp-centrum-gmp", "lu-pregmp",
                  "invest-in-skane", "medicon-valley-alliance", "smile-venture-hub",
                  "karolinska-trial-alliance", "centrum-for-halsodata", "pku-biobanken",
                  "human-protein-atlas", "svenska-tvillingregistret", "ki-innovations"):  # fmt: skip
        assert named in ids
    assert {e.region for e in seed} >= {"skane", "stockholm", "denmark"}
    kss = [e for e in seed if e.id.startswith("kss-") and e.id != "kss-feasibility-sweden"]
    assert len(kss) == 6  # one node per healthcare region
    danish = [e for e in seed if e.region == "denmark" or "da" in e.languages]
    assert danish and all(e.cross_border for e in danish)
    for e in seed:
        assert "@" not in e.contact_channel  # roles, not people
        assert e.description.sv != e.description.en
