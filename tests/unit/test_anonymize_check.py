"""An independent checker for anonymized extracts, applied to the three Adult examples.

Plain Python (csv, math): it shares no code with brygga.privacy.anonymize. From the input, the
output, the config and the reported levels it checks that

- the output keeps the header and is the input with some records left out (at most the
  suppression limit) and the quasi-identifiers replaced by their label at the reported level of
  the hierarchy file;
- every equivalence class (records with equal quasi-identifiers) has >= k records, >= l distinct
  sensitive values, and an Earth Mover's Distance (equal ground distance) to the input's
  distribution of at most t.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from brygga.cli import main

REPO = Path(__file__).resolve().parents[2]
ADULT = REPO.parent / "shared" / "data" / "adult" / "adult.csv"
EXAMPLES = REPO / "examples" / "anonymize"


def read_rows(path: Path, sep: str) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter=sep))
    return rows[0], rows[1:]


def read_hierarchy(path: Path) -> dict[str, list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {row[0]: row for row in csv.reader(f, delimiter=";") if row}


def check_extract(
    config_path: Path, input_path: Path, output_path: Path, levels: dict[str, int]
) -> dict[str, float]:
    cfg = yaml.safe_load(config_path.read_text())
    sep = cfg.get("separator", ",")
    header, records = read_rows(input_path, sep)
    out_header, out_rows = read_rows(output_path, sep)
    assert out_header == header

    qis = [q["column"] for q in cfg["quasi_identifiers"]]
    qi_idx = [header.index(c) for c in qis]
    hierarchies = {
        c: read_hierarchy((config_path.parent / q["hierarchy"]).resolve())
        for c, q in zip(qis, cfg["quasi_identifiers"], strict=True)
    }

    # The output is the generalized input with some records left out, in the input's order.
    def generalize(row: list[str]) -> list[str]:
        row = list(row)
        for c, i in zip(qis, qi_idx, strict=True):
            row[i] = hierarchies[c][row[i]][levels[c]]
        return row

    j = 0
    for row in records:
        if j < len(out_rows) and generalize(row) == out_rows[j]:
            j += 1
    assert j == len(out_rows), "output rows are not the generalized input rows in order"
    suppressed = len(records) - len(out_rows)
    assert suppressed <= math.floor(cfg.get("suppression_limit", 0) * len(records) + 1e-9)

    classes: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
    for row in out_rows:
        classes[tuple(row[i] for i in qi_idx)].append(row)
    assert min(len(rows) for rows in classes.values()) >= cfg["k"]

    worst_emd = 0.0
    for s in cfg.get("sensitive", []):
        si = header.index(s["column"])
        overall = Counter(r[si] for r in records)
        q = {v: c / len(records) for v, c in overall.items()}
        for rows in classes.values():
            hist = Counter(r[si] for r in rows)
            if s.get("l"):
                assert len(hist) >= s["l"]
            if s.get("t"):
                p = {v: c / len(rows) for v, c in hist.items()}
                emd = 0.5 * sum(abs(p.get(v, 0.0) - q[v]) for v in q)
                assert emd <= s["t"] + 1e-9
                worst_emd = max(worst_emd, emd)
    return {"classes": len(classes), "suppressed": suppressed, "worst_emd": worst_emd}


@pytest.mark.parametrize("name", ["adult-k5", "adult-k5-l2", "adult-k5-t02"])
def test_adult_examples_pass_the_independent_check(name, tmp_path, capsys):
    config = EXAMPLES / f"{name}.yaml"
    out = tmp_path / f"{name}.csv"
    assert (
        main(["anonymize", str(ADULT), "--config", str(config), "--out", str(out), "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    levels = {c: v["level"] for c, v in summary["transformation"].items()}
    found = check_extract(config, ADULT, out, levels)
    assert found["classes"] == summary["metrics"]["classes"]
    assert found["suppressed"] == summary["suppressed"]
    # The data is generalized, not left as it was.
    assert sum(levels.values()) > 0
    if name == "adult-k5-t02":
        assert 0 < found["worst_emd"] <= 0.2


def test_checker_rejects_a_broken_extract(tmp_path, capsys):
    """The checker is not vacuous: an extract with one class split below k fails it."""
    config = EXAMPLES / "adult-k5.yaml"
    out = tmp_path / "k5.csv"
    assert (
        main(["anonymize", str(ADULT), "--config", str(config), "--out", str(out), "--json"]) == 0
    )
    levels = {
        c: v["level"] for c, v in json.loads(capsys.readouterr().out)["transformation"].items()
    }
    text = out.read_text().splitlines()
    # Drop all but one row of some class: that class now has fewer than 5 records.
    header, first = text[0].split(";"), text[1].split(";")
    qi_idx = [header.index(c) for c in levels]
    key = [first[i] for i in qi_idx]
    same = [i for i, line in enumerate(text[1:], 1) if [line.split(";")[j] for j in qi_idx] == key]
    assert len(same) >= 5
    kept = [line for i, line in enumerate(text) if i not in set(same[1:])]
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(kept) + "\n")
    with pytest.raises(AssertionError):
        check_extract(config, ADULT, broken, levels)
