"""The strategies as data: valid, complete, and every cited passage is in the strategy's text."""

from __future__ import annotations

import difflib
import re
import unicodedata
from pathlib import Path

import pytest
from pydantic import BaseModel

from brygga.agenda import catalogue
from brygga.agenda.strategy import STRATEGY_DIR, Cite, Strategy, bundled, check_kpis, load_strategy
from brygga.documents import parse_yaml
from brygga.errors import DocumentError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def fold(text: str) -> str:
    """Letters and digits only, without diacritics, lower case: the seed texts are OCR output
    (ä read as a, i or é; words broken at line ends), the quotes are the strategies' Swedish."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", text.lower())


def found(quote: str, seed: str) -> float:
    """The share of ``quote``'s letters found in order in the best window of ``seed``."""
    q = fold(quote)
    # Where the quote may be: the places of its 12-letter pieces found verbatim (an OCR error
    # breaks a few pieces, not all); then the letters in order in a window there.
    starts = set()
    for k in range(0, max(1, len(q) - 12), 6):
        pos = seed.find(q[k : k + 12])
        if pos >= 0:
            starts.add(max(0, pos - k - 20))
    if not starts:  # a short quote with an OCR error in every piece: the longest common run
        matcher = difflib.SequenceMatcher(None, seed, q, autojunk=False)
        block = matcher.find_longest_match(0, len(seed), 0, len(q))
        starts.add(max(0, block.a - block.b - 20))
    best = 0.0
    for start in sorted(starts)[:10]:
        window = seed[start : start + len(q) + 40]
        blocks = difflib.SequenceMatcher(None, window, q, autojunk=False).get_matching_blocks()
        best = max(best, sum(m.size for m in blocks) / len(q))
    return best


def cites(strategy: Strategy):
    def walk(obj, path):
        if isinstance(obj, Cite):
            yield path, obj
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                yield from walk(getattr(obj, name), f"{path}.{name}")
        elif isinstance(obj, list):
            for i, item in enumerate(obj):
                yield from walk(item, f"{path}[{i}]")

    yield from walk(strategy, strategy.id)


def test_both_strategies_load_and_name_known_kpis():
    strategies = {s.id: s for s in bundled()}
    assert set(strategies) == {"skane-firs-2026", "stockholm-life-science"}
    skane, sthlm = strategies["skane-firs-2026"], strategies["stockholm-life-science"]
    assert [p.number for p in skane.priorities] == ["1", "2", "3", "4"]
    assert [p.number for p in sthlm.priorities] == ["4.1", "4.2", "4.3", "4.4", "4.5", "FL"]
    assert len(skane.themes) == 5 and len(skane.ways_of_working) == 3
    assert skane.sdgs == [3, 8, 9] and skane.sdg_basis == "strategy"
    for s in strategies.values():
        check_kpis(s, catalogue.registry().ids())
        for p in s.priorities:
            assert p.measures and p.indicators, p.id
            assert all(m.owners for m in p.measures)


def test_proposals_name_their_anchor():
    targets = [i.target for s in bundled() for i in s.indicators if i.target]
    proposals = [t for t in targets if t.kind == "proposal"]
    assert any("Trial Nation" in t.anchor.sv and t.value == 5 for t in proposals)
    assert any("NIHR" in t.anchor.en and t.value == 90 for t in proposals)
    assert all(t.cite is not None for t in targets if t.kind == "strategy")


@pytest.mark.parametrize("path", sorted(STRATEGY_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_cited_passage_is_in_the_strategy(path):
    strategy = load_strategy(path)
    seed = SHARED / strategy.source.document
    # The seeds are beside the checkout (shared/), as in CI: a missing one is a failure, so a
    # citation check never passes by not running.
    assert seed.is_file(), f"the strategy's text {seed} is expected beside the checkout"
    text = fold(seed.read_text(encoding="utf-8"))
    missing = [(where, c.quote, round(r, 2)) for where, c in cites(strategy)
               if (r := found(c.quote, text)) < 0.93]  # fmt: skip
    assert not missing, missing


def test_errors_name_file_line_and_field(tmp_path):
    text = (STRATEGY_DIR / "skane-firs-2026.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("sdgs: [3, 8, 9]", "sdgs: [3, 8, 19]", 1), encoding="utf-8")
    with pytest.raises(DocumentError, match=r"bad.yaml: invalid strategy.*SDG 19"):
        load_strategy(bad)
    bad.write_text(text.replace("kind: proposal\n          direction: at_most\n          value: 90",
                                "kind: proposal\n          direction: at_most\n          value: 90\n"
                                "          colour: red", 1), encoding="utf-8")  # fmt: skip
    with pytest.raises(DocumentError, match=r"target\.colour \(line \d+\)"):
        load_strategy(bad)
    bad.write_text(text.replace("- kpi: ls_patents", "- kpi: ls_patent", 1), encoding="utf-8")
    with pytest.raises(DocumentError, match=r"indicators\[\d+\]\.kpi \(line \d+\): unknown KPI"):
        check_kpis(load_strategy(bad), catalogue.registry().ids(), str(bad))


def test_a_strategy_target_without_its_passage_is_refused(tmp_path):
    doc = parse_yaml((STRATEGY_DIR / "skane-firs-2026.yaml").read_text(encoding="utf-8"), "s")
    target = doc.data["priorities"][0]["indicators"][0]["target"]
    del target["cite"]
    from brygga.documents import Document, validate

    with pytest.raises(DocumentError, match="needs the passage"):
        validate(Strategy, Document(doc.data, "s.yaml"), "strategy")
