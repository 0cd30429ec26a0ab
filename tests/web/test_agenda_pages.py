"""The public agenda pages: /agenda (the strategies' figures, each chart with its table) and
/halsolaget (prevalence and SCORE2 by municipality, sex and age; disclosed, age-standardised
where municipalities are compared)."""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time

import pytest

from brygga.platform import Brygga
from brygga.web.app import WebConfig, create_app, lifespan
from tests.unit.test_privacy_outputs import THRESHOLD
from tests.web.conftest import Client


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def test_agenda_page_shows_the_strategy_with_charts_and_tables(site):
    c = site["client"]("public")
    r = c.get("/agenda")
    assert r.status_code == 200
    html = r.text
    assert (
        _title(html)
        == "Agendan i siffror: FIRS Life science &amp; hälsa – agenda för Skåne (2026) – Brygga"
    )
    assert "Prioritering 2: En sammanhållen värdekedja" in html
    assert "Godkända studier" in html and "Direkt ur Brygga" in html and "Importerad" in html
    # One study was approved: a chart with its table, the count suppressed (1 < 8).
    assert 'role="img"' in html and "govuk-details__summary" in html
    assert "&lt;8" in html
    assert "Trial Nation" in html and "Antal från 1 till 7 visas inte" in html
    other = c.get("/agenda?strategy=stockholm-life-science")
    assert other.status_code == 200 and "Utvecklingsområde 4.1" in other.text
    assert _title(other.text) != _title(html)  # every page has its own title
    assert c.get("/agenda?strategy=nonexistent").status_code == 404
    assert c.get("/agenda?strategy=../etc").status_code in (400, 422)


def test_agenda_page_in_english(site):
    c = site["client"]("public")
    c.http.cookies.set("lang", "en")
    html = c.get("/agenda").text
    assert '<html lang="en"' in html and "The agenda in figures" in html
    assert "Studies approved" in html and "Godkända studier" not in html
    assert "Trial Nation (Denmark): one way in" in html


def test_halsolaget_without_regional_records_says_so(site):
    html = site["client"]("public").get("/halsolaget").text
    assert "Ingen regional hälsodata är ansluten" in html


@pytest.mark.slow
def test_halsolaget_is_disclosed_and_standardised(small_region, site, tmp_path):
    config = WebConfig(database_url=site["url"], demo=True, region=small_region.region.path,
                       outbox_path=tmp_path / "outbox.jsonl")  # fmt: skip
    c = Client(create_app(config))
    try:
        r = c.get("/halsolaget?condition=diabetes")
        assert r.status_code == 200
        html = r.text
        assert _title(html) == "Hälsoläget: Diabetes – Brygga"
        assert "åldersstandardiserade (direkt standardisering)" in html
        assert html.count('role="img"') == 6  # prevalence and SCORE2: municipality, sex, age
        assert html.count("<table") >= 6 + 2  # a table per chart, the municipality tables
        assert "Hög eller mycket hög risk" in html
        # No count between 1 and 7 anywhere in the tables (they passed the release gate).
        cells = re.findall(r'<td class="govuk-table__cell[^"]*">([^<]*)</td>', html)
        small = [x for x in cells if x.strip().isdigit() and 0 < int(x) < THRESHOLD]
        assert not small
        assert c.get("/halsolaget?condition=copd").status_code == 200
        agenda = c.get("/agenda").text  # with a region: the prevention figures are computed
        assert "Förebyggande arbetets räckvidd" in agenda
    finally:
        c.close()


def test_the_server_computes_the_public_figures_when_it_starts(site, tmp_path, monkeypatch):
    """``brygga serve --region R`` warms /agenda's and /halsolaget's figures in the background
    (the first view would otherwise take a minute on a large region); without a region, or
    with BRYGGA_WEB_WARM_PUBLIC_PAGES=false, it does not."""

    calls: list[object] = []
    done = threading.Event()

    def warm(self, region):
        calls.append(region)
        done.set()

    monkeypatch.setattr(Brygga, "warm_public_pages", warm)
    monkeypatch.setattr(Brygga, "eligibility", lambda self, region: None)  # no region needed
    # The warming's long-lived figures are exempted from the collector's scans once built
    # (app.freeze_heap; ``brygga serve`` froze the app's heap before).
    freezes: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(threading.current_thread().name))
    region = tmp_path / "region"
    monkeypatch.setenv("BRYGGA_NOTIFY_INTERVAL_SECONDS", "0")
    for with_region, setting, expected in ((True, "true", 1), (False, "true", 0),
                                           (True, "false", 0)):  # fmt: skip
        monkeypatch.setenv("BRYGGA_WEB_WARM_PUBLIC_PAGES", setting)
        config = WebConfig(database_url=site["url"], region=region if with_region else None,
                           outbox_path=tmp_path / "outbox.jsonl")  # fmt: skip
        calls.clear()
        done.clear()
        freezes.clear()
        app = create_app(config)

        async def serve(app=app, expected=expected):
            async with lifespan(app):
                done.wait(5 if expected else 0.5)

        asyncio.run(serve())
        assert calls == [region] * expected
        for _ in range(50):  # the warming thread freezes after ``warm`` returned
            if len(freezes) == expected:
                break
            time.sleep(0.1)
        assert freezes == ["brygga-warm"] * expected


def test_a_page_figure_is_computed_once_however_many_ask_at_once(site):
    """Visitors who come while the figures are being computed wait for that computation
    instead of starting their own (two at once would double a minute of work)."""

    brygga = Brygga()
    runs: list[int] = []

    def make():
        runs.append(1)
        time.sleep(0.3)
        return {"figures": len(runs)}

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(brygga._cached(("k",), make)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == [1] and results == [{"figures": 1}] * 4
