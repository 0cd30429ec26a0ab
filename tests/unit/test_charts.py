"""Charts are SVG drawn on the server, each one image with a name and its figures as a table."""

from __future__ import annotations

import re

import pytest

from brygga import charts


def test_bar_is_one_named_image_with_its_table() -> None:
    c = charts.bar(
        "Urval", ["Alla", "40–75 år", "Diabetes"], [1200, 640, None], ["1 200", "640", "<8"],
        label_title="Steg", value_title="Antal",
    )  # fmt: skip
    assert c.svg.startswith('<svg role="img" aria-label="Urval"')
    assert c.svg.count('role="img"') == 1  # the marks inside are not separate images
    assert 'aria-label="X-axis' not in c.svg  # Vega's own (English) descriptions are removed
    assert c.columns == ("Steg", "Antal")
    assert c.rows == (("Alla", "1 200"), ("40–75 år", "640"), ("Diabetes", "<8"))
    # The suppressed cell keeps its row: its label and display text are drawn, no bar length.
    assert "Diabetes" in c.svg and "&lt;8" in c.svg
    assert "1 200" in c.svg  # disclosed display text, not the raw number with a comma


def test_bar_axes_use_swedish_or_english_numbers() -> None:
    sv = charts.bar("A", ["x"], [12000], ["12 000"], label_title="s", value_title="n", lang="sv")
    en = charts.bar("A", ["x"], [12000], ["12,000"], label_title="s", value_title="n", lang="en")
    assert re.search(r">12\s000<", sv.svg) and not re.search(r">12,000<", sv.svg)
    assert re.search(r">12,000<", en.svg)


def test_line_table_has_one_column_per_series() -> None:
    c = charts.line(
        "Trend", ["2025", "2026"], {"Skåne": [3, 4], "Stockholm": [None, 5]},
        {"Skåne": ["3", "4"], "Stockholm": ["<8", "5"]}, period_title="År", value_title="Antal",
    )  # fmt: skip
    assert c.columns == ("År", "Skåne", "Stockholm")
    assert c.rows == (("2025", "3", "<8"), ("2026", "4", "5"))
    assert "Stockholm" in c.svg  # the legend names the series


def test_mismatched_lengths_are_a_bug() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        charts.bar("A", ["x", "y"], [1], ["1"], label_title="s", value_title="n")
