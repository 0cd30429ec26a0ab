"""brygga anonymize: optimality against brute force, criteria, hierarchies, bad input, CLI."""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from brygga.cli import main
from brygga.errors import InputError, NotFoundError
from brygga.privacy.anonymize import anonymize, parse_config
from brygga.privacy.anonymize.criteria import Pairs, emd_equal, emd_hierarchical, emd_ordered

# --- a small hand-made data set with hand-written hierarchies ------------------------------

AGE_LEVELS = 4  # 37 -> 35-39 -> 30-39 -> *
ZIP_LEVELS = 4  # 12345 -> 1234* -> 12*** -> *
SEX_LEVELS = 2


def age_row(a: int) -> list[str]:
    return [str(a), f"{a // 5 * 5}-{a // 5 * 5 + 4}", f"{a // 10 * 10}-{a // 10 * 10 + 9}", "*"]


def zip_row(z: str) -> list[str]:
    return [z, z[:4] + "*", z[:2] + "***", "*"]


def make_data(tmp: Path, seed: int, n: int = 70) -> Path:
    rng = random.Random(seed)
    ages = [rng.randint(20, 59) for _ in range(n)]
    zips = [rng.choice(["13053", "13068", "13012", "14850", "14853", "14801"]) for _ in range(n)]
    sexes = [rng.choice(["F", "M"]) for _ in range(n)]
    disease = [rng.choice(["flu", "flu", "cancer", "gastritis", "heart"]) for _ in range(n)]
    score = [str(rng.choice([1, 2, 2, 3, 3, 3, 4, 5])) for _ in range(n)]
    with (tmp / "data.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "age", "zip", "sex", "disease", "score"])
        w.writerows(zip(range(n), ages, zips, sexes, disease, score, strict=True))
    write_hierarchy(tmp / "age.csv", [age_row(a) for a in sorted(set(ages))])
    write_hierarchy(tmp / "zip.csv", [zip_row(z) for z in sorted(set(zips))])
    write_hierarchy(tmp / "sex.csv", [["F", "*"], ["M", "*"]])
    return tmp / "data.csv"


def write_hierarchy(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f, delimiter=";").writerows(rows)


def base_config(**extra) -> dict:
    cfg = {
        "k": 3,
        "suppression_limit": 0.1,
        "quasi_identifiers": [
            {"column": "age", "hierarchy": "age.csv"},
            {"column": "zip", "hierarchy": "zip.csv"},
            {"column": "sex", "hierarchy": "sex.csv"},
        ],
    }
    cfg.update(extra)
    return cfg


def brute_force(data: Path, cfg: dict) -> float:
    """The minimum metric over every node of the lattice, straight from the definitions."""
    with data.open(newline="") as f:
        rows = list(csv.DictReader(f))
    n = len(rows)
    gen = {
        "age": lambda v, lv: age_row(int(v))[lv],
        "zip": lambda v, lv: zip_row(v)[lv],
        "sex": lambda v, lv: [v, "*"][lv],
    }
    heights = {"age": AGE_LEVELS, "zip": ZIP_LEVELS, "sex": SEX_LEVELS}
    qis = [q["column"] for q in cfg["quasi_identifiers"]]
    limit = math.floor(cfg["suppression_limit"] * n + 1e-9)
    best = math.inf
    for node in itertools.product(*[range(heights[c]) for c in qis]):
        classes = defaultdict(list)
        for r in rows:
            classes[tuple(gen[c](r[c], lv) for c, lv in zip(qis, node, strict=True))].append(r)
        kept = [rs for rs in classes.values() if class_ok(rs, rows, cfg)]
        suppressed = n - sum(len(rs) for rs in kept)
        if suppressed > limit:
            continue
        g = sum(lv / (heights[c] - 1) for c, lv in zip(qis, node, strict=True)) / len(qis)
        metric = cfg.get("metric", "precision")
        if metric == "precision":
            value = ((n - suppressed) * g + suppressed) / n
        elif metric == "discernibility":
            value = sum(len(rs) ** 2 for rs in kept) + suppressed * n
        else:
            value = n / (len(kept) + (1 if suppressed else 0))
        best = min(best, value)
    return best


def class_ok(rs: list[dict], rows: list[dict], cfg: dict) -> bool:
    if len(rs) < cfg["k"]:
        return False
    for s in cfg.get("sensitive", []):
        hist = Counter(r[s["column"]] for r in rs)
        if s.get("l"):
            if s.get("diversity", "distinct") == "distinct" and len(hist) < s["l"]:
                return False
            if s.get("diversity") == "entropy":
                h = -sum(c / len(rs) * math.log(c / len(rs)) for c in hist.values())
                if math.exp(h) < s["l"] - 1e-9:
                    return False
        if s.get("t"):
            overall = Counter(r[s["column"]] for r in rows)
            values = sorted(overall, key=float) if s.get("distance") == "ordered" else list(overall)
            p = [hist.get(v, 0) / len(rs) for v in values]
            q = [overall[v] / len(rows) for v in values]
            if s.get("distance") == "ordered":
                cum = list(itertools.accumulate(a - b for a, b in zip(p, q, strict=True)))
                emd = sum(abs(x) for x in cum[:-1]) / (len(values) - 1)
            else:
                emd = 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True))
            if emd > s["t"] + 1e-9:
                return False
    return True


CASES = {
    "k3": {},
    "k5-nosupp": {"k": 5, "suppression_limit": 0.0},
    "k2-discernibility": {"k": 2, "metric": "discernibility"},
    "k4-aecs": {"k": 4, "metric": "aecs"},
    "l2-distinct": {"sensitive": [{"column": "disease", "l": 2}]},
    "l2-entropy": {"sensitive": [{"column": "disease", "l": 2, "diversity": "entropy"}]},
    "t-equal": {"k": 2, "sensitive": [{"column": "disease", "t": 0.3}]},
    "t-ordered": {
        "k": 2,
        "suppression_limit": 0.2,
        "sensitive": [{"column": "score", "t": 0.2, "distance": "ordered"}],
    },
    "two-sensitive": {
        "sensitive": [
            {"column": "disease", "l": 2},
            {"column": "score", "t": 0.35, "distance": "ordered"},
        ]
    },
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_search_is_optimal_against_brute_force(tmp_path, case, seed):
    data = make_data(tmp_path, seed)
    cfg = base_config(**CASES[case])
    expected = brute_force(data, cfg)
    config = parse_config(cfg, "test")
    if math.isinf(expected):
        with pytest.raises(InputError, match="no generalization satisfies"):
            anonymize(data, config, None, config_dir=tmp_path)
        return
    result = anonymize(data, config, tmp_path / "out.csv", config_dir=tmp_path)
    assert result.metrics.value(config.metric) == pytest.approx(expected, rel=1e-12)
    assert result.lattice_size == AGE_LEVELS * ZIP_LEVELS * SEX_LEVELS


def test_pruning_skips_most_of_a_larger_lattice(tmp_path):
    data = make_data(tmp_path, 7, n=300)
    result = anonymize(data, parse_config(base_config(), "t"), None, config_dir=tmp_path)
    assert result.evaluated < result.lattice_size


# --- criteria ------------------------------------------------------------------------------


def pairs_of(classes: list[dict[int, int]]) -> Pairs:
    cls, val, cnt = [], [], []
    for c, hist in enumerate(classes):
        for v, k in hist.items():
            cls.append(c)
            val.append(v)
            cnt.append(k)
    sizes = np.array([sum(h.values()) for h in classes])
    return Pairs(np.array(cls), np.array(val), np.array(cnt), sizes)


def test_emd_matches_the_t_closeness_paper():
    # Li et al. 2007: salaries 3k..11k, overall uniform; class {3k,4k,5k} has ordered EMD 0.375
    # and class {6k,8k,11k} 0.167.
    q = np.full(9, 1 / 9)
    rank = np.arange(9)
    pairs = pairs_of([{0: 1, 1: 1, 2: 1}, {3: 1, 5: 1, 8: 1}])
    assert emd_ordered(pairs, q, rank) == pytest.approx([0.375, 1 / 6], abs=1e-3)
    # Equal distance: half the L1 distance.
    assert emd_equal(pairs, q) == pytest.approx([2 / 3, 2 / 3])
    # Hierarchical: two leaves under one parent; moving mass between siblings costs 1/2.
    tree = [np.arange(4), np.array([0, 0, 1, 1]), np.zeros(4, dtype=int)]
    q4 = np.array([0.25, 0.25, 0.5, 0.0])
    # {0}: 0.25 to the sibling (cost 1/2 each), 0.5 across the root (cost 1 each).
    # {1, 3}: 0.25 from 1 to 0 and 0.5 from 3 to 2, both between siblings.
    sib = pairs_of([{0: 1}, {1: 1, 3: 1}])
    assert emd_hierarchical(sib, q4, tree) == pytest.approx([0.125 + 0.5, 0.125 + 0.25])


# --- automatic hierarchies ------------------------------------------------------------------


def test_automatic_hierarchies(tmp_path):
    data = tmp_path / "auto.csv"
    rows = [
        ("age", "kommun", "icd", "date", "postcode"),
        *[
            (str(a), k, d, dt, pc)
            for a, k, d, dt, pc in [
                ("34", "1280", "E119", "2021-03-04", "21145"),
                ("37", "1281", "E11.9", "2021-05-06", "21150"),
                ("52", "0180", "I10", "2019-12-31", "11122"),
                ("58", "0181", "I21", "2018-01-01", "11130"),
            ]
        ],
    ]
    with data.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    cfg = parse_config(
        {
            "k": 2,
            "quasi_identifiers": [
                {"column": "age", "hierarchy": {"type": "interval", "widths": [5, 10, 20]}},
                {"column": "kommun", "hierarchy": {"type": "municipality"}},
                {"column": "icd", "hierarchy": {"type": "icd10"}},
                {"column": "date", "hierarchy": {"type": "date"}},
                {"column": "postcode", "hierarchy": {"type": "prefix", "lengths": [3, 1]}},
            ],
        },
        "t",
    )
    out = tmp_path / "out.csv"
    result = anonymize(data, cfg, out)
    with out.open(newline="") as f:
        got = list(csv.DictReader(f))
    levels = {c: v["level"] for c, v in result.transformation.items()}
    labels = {
        "age": [["34", "30-34", "30-39", "20-39", "*"], ["52", "50-54", "50-59", "40-59", "*"]],
        "kommun": [["1280", "12", "*"], ["0180", "01", "*"]],
        "icd": [["E119", "E11", "E", "*"], ["I10", "I10", "I", "*"]],
        "date": [["2021-03-04", "2021-03", "2021", "2020-2029", "*"]],
        "postcode": [["21145", "211", "2", "*"]],
    }
    for column, chains in labels.items():
        for chain in chains:
            if levels[column] > 0:
                assert any(r[column] == chain[levels[column]] for r in got), (column, chain)
    # Two clusters of two (Skåne diabetes, Stockholm hypertension/MI): k=2 keeps all four.
    assert len(got) == 4 and result.suppressed == 0
    assert Counter(r["kommun"] for r in got) == Counter(["12", "12", "01", "01"])


# --- bad input: clear errors, exit 2, nothing written ---------------------------------------


def run_cli(tmp: Path, cfg: dict, data: Path, *extra: str) -> tuple[int, Path]:
    config = tmp / "cfg.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp / "out.csv"
    code = main(["anonymize", str(data), "--config", str(config), "--out", str(out), *extra])
    return code, out


def test_unknown_column(tmp_path, capsys):
    data = make_data(tmp_path, 1)
    cfg = base_config()
    cfg["quasi_identifiers"][1]["column"] = "postnummer"
    code, out = run_cli(tmp_path, cfg, data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "quasi_identifiers[1].column" in err and "'postnummer'" in err


def test_value_missing_from_hierarchy_names_column_value_and_line(tmp_path, capsys):
    data = make_data(tmp_path, 1)
    write_hierarchy(tmp_path / "sex.csv", [["F", "*"]])  # no row for M
    with data.open(newline="") as f:
        first_m = next(i for i, r in enumerate(csv.reader(f), 1) if r[3] == "M")
    code, out = run_cli(tmp_path, base_config(), data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert f"line {first_m}" in err and "'sex'" in err and "'M'" in err and "sex.csv" in err


def test_hierarchy_with_unequal_rows_names_file_and_line(tmp_path, capsys):
    data = make_data(tmp_path, 1)
    rows = [zip_row(z) for z in ["13053", "13068", "13012", "14850", "14853", "14801"]]
    rows[2] = rows[2][:3]
    write_hierarchy(tmp_path / "zip.csv", rows)
    code, out = run_cli(tmp_path, base_config(), data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "zip.csv line 3" in err and "3 levels" in err


def test_k_larger_than_the_data(tmp_path, capsys):
    data = make_data(tmp_path, 1, n=20)
    code, out = run_cli(tmp_path, base_config(k=21), data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "k = 21" in err and "20 records" in err


def test_no_solution_within_the_suppression_limit(tmp_path, capsys):
    data = make_data(tmp_path, 1)
    # Five diseases exist but l = 6 can never hold, even with everything generalized.
    cfg = base_config(sensitive=[{"column": "disease", "l": 6}])
    code, out = run_cli(tmp_path, cfg, data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "no generalization satisfies" in err


def test_config_errors_name_the_field_path(tmp_path, capsys):
    data = make_data(tmp_path, 1)
    cfg = base_config()
    cfg["quasi_identifiers"][0]["hierarchy"] = {"type": "interval", "widths": [5, 7]}
    cfg["suppression_limit"] = 2
    code, out = run_cli(tmp_path, cfg, data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "quasi_identifiers[0].hierarchy" in err and "multiple" in err
    assert "suppression_limit" in err
    assert "tagged-union" not in err and "valid string" not in err  # no pydantic union noise


def test_automatic_hierarchy_rejects_bad_values_with_line(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("icd,x\nE119,1\nE11,2\nnot-a-code,3\n")
    cfg = {"k": 1, "quasi_identifiers": [{"column": "icd", "hierarchy": {"type": "icd10"}}]}
    code, out = run_cli(tmp_path, cfg, data)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "line 4" in err and "not an ICD-10 code" in err


def test_missing_hierarchy_file(tmp_path):
    data = make_data(tmp_path, 1)
    cfg = parse_config(base_config(), "t")
    with pytest.raises(NotFoundError, match=r"age\.csv"):
        anonymize(data, cfg, None, config_dir=tmp_path / "elsewhere")


def test_hierarchies_folder_option_and_lookup_by_column(tmp_path, capsys):
    data = make_data(tmp_path, 2)
    cfg = base_config()
    for q in cfg["quasi_identifiers"]:
        del q["hierarchy"]  # found as <column>.csv in --hierarchies
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    code, out = run_cli(conf_dir, cfg, data, "--hierarchies", str(tmp_path), "--json")
    assert code == 0 and out.exists()
    assert json.loads(capsys.readouterr().out)["written"] > 0


# --- CLI output ------------------------------------------------------------------------------


def test_cli_json_shape_and_output_file(tmp_path, capsys):
    data = make_data(tmp_path, 3)
    cfg = base_config(sensitive=[{"column": "disease", "l": 2}])
    code, out = run_cli(tmp_path, cfg, data, "--json")
    assert code == 0
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON document
    assert set(doc) >= {"transformation", "metrics", "suppressed", "written", "records", "search"}
    assert set(doc["transformation"]) == {"age", "zip", "sex"}
    assert set(doc["metrics"]) == {
        "precision",
        "discernibility",
        "aecs",
        "classes",
        "suppressed",
        "ncp",
    }
    assert doc["written"] + doc["suppressed"] == doc["records"] == 70
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "age", "zip", "sex", "disease", "score"]
    assert len(rows) - 1 == doc["written"]
    # Suppressed records are left out; the ids of the others are kept in order.
    ids = [int(r[0]) for r in rows[1:]]
    assert ids == sorted(ids)


def test_cli_human_output(tmp_path, capsys):
    data = make_data(tmp_path, 3)
    code, _ = run_cli(tmp_path, base_config(), data)
    text = capsys.readouterr().out
    assert code == 0
    assert "Transformation" in text and "suppressed" in text and "precision loss" in text


def test_separator_and_quoting_are_kept(tmp_path):
    data = tmp_path / "semi.csv"
    data.write_text('name;age\n"Berg; Anna";34\nNilsson;36\nHolm;38\n')
    cfg = parse_config(
        {
            "k": 3,
            "separator": ";",
            "quasi_identifiers": [
                {"column": "age", "hierarchy": {"type": "interval", "widths": [10]}}
            ],
        },
        "t",
    )
    out = tmp_path / "out.csv"
    anonymize(data, cfg, out)
    with out.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows == [
        ["name", "age"],
        ["Berg; Anna", "30-39"],
        ["Nilsson", "30-39"],
        ["Holm", "30-39"],
    ]
