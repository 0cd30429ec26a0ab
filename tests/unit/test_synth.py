"""The synthetic region: validity, determinism, calibration, isolation of identities, errors."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from personnummer import personnummer as pnr

from brygga.cli import main
from brygga.records import schema
from brygga.records.store import Region
from brygga.synth import generate
from brygga.synth.identity import luhn_check_digit, personnummer
from brygga.synth.targets import REGIONS


def _content_hashes(region: Path) -> dict[str, str]:
    out = {}
    for f in sorted(region.rglob("*.parquet")):
        table = pq.read_table(f)
        out[str(f.relative_to(region))] = hashlib.sha256(
            str(table.to_pydict()).encode()
        ).hexdigest()
    return out


def test_region_opens_with_every_core_table(small_region) -> None:
    region = Region.open(small_region.region.path)
    assert region.synthetic
    assert set(schema.CORE_TABLES) <= set(region.tables())
    for name in schema.CORE_TABLES:
        table = region.read_table(name)
        assert table.schema == schema.table(name).arrow_schema()
        assert table.num_rows == region.row_counts[name], name


@pytest.mark.slow  # generates three regions (about 40 s of the suite)
def test_same_seed_same_region_other_seed_differs(tmp_path: Path) -> None:
    a = generate(region="skane", out=tmp_path / "a", scale=0.002, seed=3, workers=1)
    b = generate(region="skane", out=tmp_path / "b", scale=0.002, seed=3, workers=2)
    c = generate(region="skane", out=tmp_path / "c", scale=0.002, seed=4, workers=1)
    ha, hb, hc = (_content_hashes(r.region.path) for r in (a, b, c))
    assert ha == hb  # the number of workers does not matter
    assert ha["person/part-00000.parquet"] != hc["person/part-00000.parquet"]
    same = [pq.read_table(r.identities).to_pydict() for r in (a, b)]
    assert same[0] == same[1]


def test_identities_are_valid_unique_and_kept_apart(small_region) -> None:
    region = small_region.region
    ids = pq.read_table(small_region.identities).to_pydict()
    assert small_region.identities.parent == region.path.parent
    assert not list(region.path.rglob("*identit*"))
    numbers = ids["personnummer"]
    assert len(set(numbers)) == len(numbers)
    assert all(pnr.valid(n) for n in numbers[:3000])
    person = region.read_table("person").to_pydict()
    assert sorted(ids["person_id"]) == sorted(person["person_id"])
    male = dict(zip(person["person_id"], person["gender_concept_id"], strict=True))
    for pid, number in list(zip(ids["person_id"], numbers, strict=True))[:3000]:
        assert pnr.parse(number).is_male() == (male[pid] == 8507)
    # No identifying column and no personnummer-looking value anywhere in the region.
    identifying = {"personnummer", "given_name", "family_name", "street_address", "phone", "email"}
    for name in region.tables():
        assert not identifying & set(schema.table(name).column_names)
    pattern = re.compile(r"\d{8}-\d{4}")
    for name in ("person", "observation", "measurement"):
        table = region.read_table(name)
        for col in table.column_names:
            if str(table.schema.field(col).type) == "string":
                values = table.column(col).drop_null().to_pylist()[:5000]
                assert not any(pattern.search(v) for v in values), (name, col)


def test_personnummer_check_digit_against_known_number() -> None:
    # Skatteverket's example 811218-9876: the check digit of 811218987 is 6.
    assert luhn_check_digit(np.array([[8, 1, 1, 2, 1, 8, 9, 8, 7]]))[0] == 6
    rng = np.random.default_rng(0)
    days = np.full(600, 5000)
    with pytest.raises(Exception, match="share a birth date"):
        personnummer(days, np.ones(600, bool), rng)


def test_calibration_main_targets_within_tolerance(small_region) -> None:
    rows = {r.measure: r for r in small_region.calibration}
    main_targets = [
        "residents (total)",
        "share aged 0-19",
        "share aged 20-64",
        "share aged 65+",
        "deaths per 1,000 residents a year",
        "life expectancy at birth, male",
        "life expectancy at birth, female",
        "diagnosed diabetes (E10-E14), all ages",
        "hypertension (I10-I15), adults",
        "myocardial infarction (I21-I22), new events per 100,000 a year",
        "systolic blood pressure, mean",
        "total cholesterol, mean",
        "HbA1c with type 2 diabetes, mean",
        "primary-care visits per person a year",
    ]
    failing = [m for m in main_targets if not rows[m].ok]
    assert not failing, [rows[m] for m in failing]
    report = (small_region.region.path / "calibration.md").read_text()
    assert "targets within tolerance" in report
    assert rows["residents (total)"].value == 14_227  # sum of round(population x 0.01)
    assert sum(1 for r in rows.values() if r.measure.startswith("residents 12")) == 33


def test_care_is_consistent_with_disease(small_region) -> None:
    con = small_region.region.duckdb()
    a1c = con.execute(
        """
        WITH dm AS (SELECT DISTINCT person_id FROM condition_occurrence
                    WHERE condition_source_value LIKE 'E11%')
        SELECT avg(CASE WHEN person_id IN (SELECT person_id FROM dm) THEN n END),
               avg(CASE WHEN person_id NOT IN (SELECT person_id FROM dm) THEN n END)
        FROM (SELECT p.person_id, count(m.person_id) AS n FROM person p
              LEFT JOIN measurement m ON m.person_id = p.person_id
                   AND m.measurement_source_value = 'NPU27300'
              WHERE p.year_of_birth < 1970 GROUP BY 1)
        """
    ).fetchone()
    assert a1c[0] > 5 * a1c[1]  # HbA1c far more often for people with diabetes
    metformin_without_t2d = con.execute(
        """SELECT count(DISTINCT person_id) FROM drug_exposure WHERE drug_source_value = 'A10BA02'
           AND person_id NOT IN (SELECT person_id FROM condition_occurrence
                                 WHERE condition_source_value LIKE 'E11%')"""
    ).fetchone()[0]
    assert metformin_without_t2d == 0
    events_outside = con.execute(
        """SELECT count(*) FROM condition_occurrence c JOIN observation_period o USING (person_id)
           WHERE c.condition_start_date < o.observation_period_start_date
              OR c.condition_start_date > o.observation_period_end_date"""
    ).fetchone()[0]
    assert events_outside == 0
    dead_after = con.execute(
        """SELECT count(*) FROM death d JOIN observation_period o USING (person_id)
           WHERE d.death_date <> o.observation_period_end_date"""
    ).fetchone()[0]
    assert dead_after == 0


def test_embedded_targets_match_region_facts(shared_dir: Path) -> None:
    text = (shared_dir / "reference" / "region-facts.md").read_text()
    for code, name, pop in re.findall(r"\| (\d{4}) \| ([^|]+?) \| ([\d,]+) \|", text):
        region = REGIONS["skane"] if code.startswith("12") else REGIONS["stockholm"]
        m = region.municipality(code)
        assert (m.name, m.population) == (name.strip(), int(pop.replace(",", "")))
    for region in REGIONS.values():
        assert len(region.municipalities) == len(set(m.code for m in region.municipalities))
    assert len(REGIONS["skane"].municipalities) == 33
    assert len(REGIONS["stockholm"].municipalities) == 26


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region", "gotland", "--scale", "0.01"], "unknown region"),
        (["--region", "skane", "--scale", "0"], "--scale must be a positive number"),
        (["--region", "skane", "--scale", "-1"], "--scale must be a positive number"),
        (["--region", "skane", "--years", "0"], "--years must be between"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    code = main(["synth", *args, "--out", str(tmp_path / "r")])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "r").exists()


def test_existing_output_needs_force(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["synth", "--region", "skane", "--scale", "0.001", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").exists()


def test_unwritable_output_is_a_clear_error(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["synth", "--region", "skane", "--scale", "0.001", "--out", str(blocker / "r")])
    assert code == 2
    assert "cannot write to" in capsys.readouterr().err


def test_failed_run_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    from brygga.synth import care

    def boom(self) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(care.CareGenerator, "generate", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(region="skane", out=tmp_path / "r", scale=0.001, seed=1, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_laboratory_tests_carry_normal_ranges(small_region) -> None:
    """range_low/range_high (criteria: values against the normal range) for the laboratory
    tests; none for blood pressure, BMI, weight and height."""
    con = small_region.region.duckdb()
    rows = dict(
        con.execute(
            """SELECT measurement_source_value, any_value([range_low, range_high])
               FROM measurement GROUP BY 1"""
        ).fetchall()
    )
    assert rows["NPU27300"] == [27.0, 42.0]
    assert rows["NPU04998"] == [45.0, 105.0]
    assert rows["8480-6"] == [None, None]
