"""The annual report: rendered from its snapshot only (the same snapshot, the same bytes), in
Swedish and English, with every figure's value, target, chart and table, source and note."""

from __future__ import annotations

import re

import pytest

from brygga import charts, clock
from brygga.agenda import report, snapshot
from brygga.agenda.strategy import load_strategy
from brygga.db.session import session
from brygga.messages import catalogue
from brygga.privacy.disclosure import RoundingPolicy
from tests.unit.test_agenda_kpis import NOW, populated  # noqa: F401 (fixture)


@pytest.fixture
def snap(populated):  # noqa: F811
    with session(populated) as s:
        return snapshot.build(load_strategy("skane-firs-2026"), session=s,
                              policy=RoundingPolicy(8, 5), year=2026, today=NOW.date())  # fmt: skip


def test_the_same_snapshot_renders_the_same_html(snap, tmp_path):
    first = report.render_html(snap, "sv")
    charts._render.cache_clear()  # the charts are drawn again, not taken from the cache
    assert report.render_html(snap, "sv") == first
    snapshot.save(snap, tmp_path / "snapshot.json")
    again = snapshot.load(tmp_path / "snapshot.json")
    assert report.render_html(again, "sv") == first  # next year, from the saved file


def test_the_report_shows_each_figure_with_its_parts(snap):
    html = report.render_html(snap, "sv")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="sv">' in html
    assert "Årsrapport 2026: FIRS Life science &amp; hälsa" in html
    for number in ("1", "2", "3", "4"):
        assert f"Prioritering {number}:" in html
    assert "Godkända studier" in html and "Direkt ur Brygga" in html and "Importerad" in html
    assert 'role="img"' in html and "Tabell till diagrammet" in html  # chart with its table
    assert "Trial Nation" in html and "NIHR" in html  # proposals with their anchor
    assert "Antal från 1 till 7 visas inte" in html  # the disclosure note
    assert "Invest in Skåne" in html  # an owner
    assert "Mål 9: Hållbar industri" in html
    assert not re.search(r"\bagenda_[a-z_]+", html)  # no untranslated key
    en = report.render_html(snap, "en")
    assert '<html lang="en">' in en and "Annual report 2026" in en and "Studies approved" in en
    assert "Target" in en and "Mål 3" not in en
    assert "Brygga (study register)" in en and "Brygga (studieregistret)" not in en


def test_dynamic_message_keys_exist():
    keys = catalogue()
    for unit in ("people", "studies", "questions", "percent", "days", "ratio", "count", "msek"):
        assert f"agenda_unit_{unit}" in keys
    for status in ("met", "not_met", "better", "worse", "same", "unknown", "none"):
        assert f"agenda_status_{status}" in keys
    for area in ("skane", "stockholm", "medicon_valley", "sweden"):
        assert f"agenda_area_{area}" in keys
    for key in ("kind_priority", "kind_development_area", "kind_promise", "badge_live",
                "badge_imported", "target_strategy", "target_proposal", "sdg_3", "sdg_8", "sdg_9",
                "sdg_basis_strategy", "sdg_basis_proposal", "dimension_sex", "dimension_age_band",
                "dimension_deprivation_quintile"):  # fmt: skip
        assert f"agenda_{key}" in keys


def test_status_against_targets():
    years = {"years": [{"period": "2025", "value": 10}, {"period": "2026", "value": 12}]}
    assert report.status(years, {"direction": "increase"}, "2026") == "better"
    assert report.status(years, {"direction": "decrease"}, "2026") == "worse"
    assert report.status(years, {"direction": "at_most", "value": 5}, "2026") == "not_met"
    assert report.status(years, {"direction": "at_least", "value": 12}, "2026") == "met"
    assert report.status(years, None, "2026") == "none"


@pytest.mark.slow
def test_report_annual_writes_html_pdf_and_snapshot(populated, tmp_path, monkeypatch):  # noqa: F811
    from brygga.cli import main

    monkeypatch.setenv("BRYGGA_DATABASE_URL", populated)
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "report"
    with clock.frozen(NOW):
        assert main(["report", "annual", "--agenda", "stockholm-life-science", "--year", "2026",
                     "--out", str(out), "--lang", "en"]) == 0  # fmt: skip
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Development area 4.1" in html
    out2 = tmp_path / "again"
    assert main(["report", "annual", "--snapshot", str(out / "snapshot.json"), "--out",
                 str(out2), "--lang", "en"]) == 0  # fmt: skip
    assert (out2 / "index.html").read_text(encoding="utf-8") == html


def test_the_pages_figures_are_served_stale_while_one_thread_refreshes(monkeypatch):
    import time

    from brygga import platform as plat

    core = plat.Brygga()
    calls: list[int] = []

    def make() -> int:
        calls.append(1)
        return len(calls)

    assert core._cached(("k",), make) == 1
    assert core._cached(("k",), make) == 1  # fresh: not recomputed
    monkeypatch.setattr(plat, "PAGE_CACHE_SECONDS", 0)
    assert core._cached(("k",), make) == 1  # expired: the old value at once ...
    for _ in range(100):  # ... and the new one once the background thread is done
        if core._cached(("k",), make) > 1:
            break
        time.sleep(0.02)
    assert core._cached(("k",), make) > 1
