"""Security property 2: every count that leaves goes through the disclosure policy.

A small region marked ``source: omop-import`` (not synthetic) with a few dozen people; every
CLI command and API function that emits counts is run on it and no emitted count may lie
between 1 and the threshold - 1. Feasibility is checked over random criteria (hypothesis), under
the rounding policy, the cell key method and noisy mode. The prevention commands (risk, program,
equity, evaluate) run on a non-synthetic copy of the small synthetic region, under both
methods; under the cell key method their counts are checked against the record keys of the
people counted, and the same people must get the same answer in every command.
``test_every_command_is_classified`` fails when a command is added without deciding whether
it emits counts.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brygga import cli
from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import feasibility
from brygga.errors import InputError, PermissionDenied
from brygga.privacy.noise import noisy_request
from brygga.records import schema
from brygga.records.store import Region, RegionWriter

THRESHOLD = 8
CODES = ["E11", "I10", "J45", "I21"]
MUNICIPALITIES = ["0180", "1280", "1281"]
INDEX = "2025-06-15"

# Every CLI command: does it emit counts about a region's people, and how is that covered?
EMITS_COUNTS = {
    "feasibility": "property test below (rounding, cell key, noise)",
    "risk": "run below on the non-synthetic regions (rounding, cell key)",
    "program": "run below on the non-synthetic small region (rounding, cell key)",
    "equity": "run below on the non-synthetic small region (rounding, cell key)",
    "evaluate": "run below on the non-synthetic small region (rounding, cell key)",
    "match": "invitations per study, expired, notified: run below (operational database)",
    "notify": "notifications by outcome: run below (operational database)",
    "serve": "web pages and API: through cohort.feasibility (web tests)",
    "catalogue": "the number of people per region: run below (rounding, cell key)",
    "access": "feasibility counts, data requests, extract sizes: through the release gate "
    "(test_access.py runs every subcommand and checks its output)",
    "kpi": "KPI series through the release gate (tests/unit/test_agenda_kpis.py)",
    "report": "the annual report's figures, the same series (tests/unit/test_agenda_report.py)",
}
NO_POPULATION_COUNTS = {
    "synth": "writes a synthetic region",
    "synth-report": "calibration of a synthetic region",
    "import-omop": "operator: rows imported per table (whole tables, no criteria)",
    "region-info": "operator: rows per table (whole tables, no criteria)",
    "optimize": "operator: builds the region's DuckDB database (rows per table, sizes)",
    "schema-docs": "documentation",
    "risk-calc": "one person's score from typed-in values",
    "findrisc": "one person's score from typed-in values",
    "anonymize": "a data steward's own CSV extract, k-anonymized",
    "audit": "the audit log's own commands (verify)",
    "prevention-list": "identifiable invitation list for one care unit, audited (not research output)",
    "db-upgrade": "database schema",
    "budget": "epsilon and delta only",
    "demo-seed": "seeds the demo database from a synthetic region (needs its identities file)",
    "ecosystem": "directory entries, rankings and inquiries; the agenda figures (counts of "
    "inquiries, not people) still pass the policy (unit/test_ecosystem_inquiries.py)",
    "criteria": "checks a criteria document without a region (criteria check)",
}


def small_counts(document: Any) -> list[Any]:
    """Every disclosed count ({"value", "display"}) in a document whose value is 1..7."""
    found = []
    if isinstance(document, dict):
        if "display" in document and "value" in document:
            v = document["value"]
            if isinstance(v, int) and 0 < v < THRESHOLD:
                found.append(document)
            if document["display"].isdigit() and 0 < int(document["display"]) < THRESHOLD:
                found.append(document)
        for child in document.values():
            found += small_counts(child)
    elif isinstance(document, list):
        for child in document:
            found += small_counts(child)
    return found


def write_region(out: Path, *, keys: bool = True, n: int = 60, seed: int = 3) -> Region:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    person = {
        "person_id": ids,
        "gender_concept_id": rng.choice([8507, 8532], n).astype(np.int32),
        "year_of_birth": rng.integers(1935, 2000, n).astype(np.int32),
        "race_concept_id": np.zeros(n, np.int32),
        "ethnicity_concept_id": np.zeros(n, np.int32),
        "municipality_code": rng.choice(MUNICIPALITIES, n),
    }
    period = {
        "observation_period_id": ids,
        "person_id": ids,
        "observation_period_start_date": [date(2000, 1, 1)] * n,
        "observation_period_end_date": [date(2030, 12, 31)] * n,
        "period_type_concept_id": np.full(n, 32817, np.int32),
    }
    who = rng.integers(1, n + 1, 120)
    conditions = {
        "condition_occurrence_id": np.arange(1, 121, dtype=np.int64),
        "person_id": who.astype(np.int64),
        "condition_concept_id": np.zeros(120, np.int32),
        "condition_start_date": [date(2015 + int(y), 3, 1) for y in rng.integers(0, 10, 120)],
        "condition_type_concept_id": np.full(120, 32817, np.int32),
        "condition_source_value": rng.choice(CODES, 120),
        "condition_source_vocabulary": ["ICD10"] * 120,
    }
    with RegionWriter(out) as writer:
        writer.write("person", pa.table(person))
        writer.write("observation_period", pa.table(period))
        writer.write("condition_occurrence", pa.table(conditions))
        if keys:
            writer.write("person_key", pa.table({"person_id": ids, "record_key": rng.random(n)}))
        writer.ensure_tables(schema.CORE_TABLES)
        return writer.commit({"region": "tiny-omop", "source": "omop-import"})


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Region:
    return write_region(tmp_path_factory.mktemp("outputs") / "tiny")


@pytest.fixture(autouse=True)
def _deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("METHOD", "THRESHOLD", "ROUNDING"):
        monkeypatch.delenv(f"BRYGGA_DISCLOSURE_{name}", raising=False)
    monkeypatch.delenv("BRYGGA_NOISE_MECHANISM", raising=False)
    monkeypatch.setenv("BRYGGA_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(tmp_path / "data"))  # the audit log


def test_every_command_is_classified() -> None:
    commands = set(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]
    assert commands == set(EMITS_COUNTS) | set(NO_POPULATION_COUNTS), (
        "a command was added or removed: classify it here (does it emit counts of people?)"
    )


rules = st.fixed_dictionaries(
    {
        "condition": st.fixed_dictionaries(
            {
                "codes": st.lists(st.sampled_from(CODES), min_size=1, max_size=2, unique=True),
                "vocabulary": st.just("ICD10"),
            }
        )
    }
)
criteria_documents = st.fixed_dictionaries(
    {
        "name": st.just("random"),
        "index_date": st.just(INDEX),
        "demographics": st.fixed_dictionaries(
            {},
            optional={
                "age": st.tuples(st.integers(20, 60), st.integers(0, 40)).map(
                    lambda t: {"min": t[0], "max": t[0] + t[1]}
                ),
                "sex": st.sampled_from([["female"], ["male"], ["female", "male"]]),
                "municipalities": st.lists(
                    st.sampled_from(MUNICIPALITIES), min_size=1, max_size=2, unique=True
                ),
            },
        ),
        "include": st.lists(rules, max_size=2),
        "exclude": st.lists(rules, max_size=1),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=criteria_documents, method=st.sampled_from(["rounding", "cell-key"]))
def test_feasibility_never_shows_a_small_count(
    region: Region, document: dict, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", method)
    result = feasibility(parse_criteria(document), region).as_dict()
    assert small_counts(result) == []
    assert result["raw"] is False


def test_cell_key_method_same_cell_same_answer(
    region: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "cell-key")
    criteria = parse_criteria({"name": "a", "index_date": INDEX})
    first = feasibility(criteria, region).as_dict()
    again = feasibility(criteria, region).as_dict()
    assert first["count"] == again["count"] and first["breakdowns"] == again["breakdowns"]
    assert "cell key" in first["disclosure"]
    # The whole region's count and the same people reached another way share their noise.
    renamed = parse_criteria(
        {"name": "b", "index_date": INDEX, "demographics": {"age": {"min": 0}}}
    )
    assert feasibility(renamed, region).as_dict()["count"] == first["count"]


def test_cell_key_method_refused_without_record_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "cell-key")
    bare = write_region(tmp_path / "bare", keys=False)
    with pytest.raises(PermissionDenied, match="no record keys"):
        feasibility(parse_criteria({"name": "a", "index_date": INDEX}), bare)


def test_raw_is_refused_on_a_non_synthetic_region(region: Region, tmp_path: Path, capsys) -> None:
    criteria = tmp_path / "c.yaml"
    criteria.write_text(f"name: all\nindex_date: {INDEX}\n")
    for argv in (
        ["feasibility", str(criteria), "--region", str(region.path), "--raw"],
        ["risk", "--region", str(region.path), "--raw"],
    ):
        assert cli.main(argv) == 2, argv
        assert "only allowed for synthetic regions" in capsys.readouterr().err


def test_cli_outputs_carry_no_small_counts(region: Region, tmp_path: Path, capsys) -> None:
    criteria = tmp_path / "c.yaml"
    criteria.write_text(
        f"name: diabetes\nindex_date: {INDEX}\ninclude:\n  - condition: {{codes: [E11], vocabulary: ICD10}}\n"
    )
    for argv in (
        ["feasibility", str(criteria), "--region", str(region.path), "--json"],
        ["risk", "--region", str(region.path), "--index-date", INDEX, "--json"],
    ):
        assert cli.main(argv) == 0, argv
        document = json.loads(capsys.readouterr().out)
        assert document["raw"] is False
        assert small_counts(document) == [], argv


def test_noisy_feasibility_is_cached_rate_limited_and_reports_its_error(
    region: Region, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("BRYGGA_NOISE_RATE_LIMIT", "3")
    criteria = parse_criteria({"name": "a", "index_date": INDEX})
    first = feasibility(criteria, region, noise="laplace", user="ann").as_dict()
    again = feasibility(criteria, region, noise="laplace", user="ann").as_dict()
    assert first["count"] == again["count"] and first["attrition"] == again["attrition"]
    assert first["noise"]["mechanism"] == "laplace" and first["noise"]["epsilon"] == 0.5
    assert first["count"]["error95"] == first["noise"]["error95"] > 5
    assert first["count"]["value"] % 10 == 0 and small_counts(first) == []
    assert "±" in first["disclosure"]
    feasibility(criteria, region, noise="laplace", user="ann")
    with pytest.raises(PermissionDenied, match="rate limit: at most 3"):
        feasibility(criteria, region, noise="laplace", user="ann")
    feasibility(criteria, region, noise="laplace", user="bob")  # the limit is per user
    with pytest.raises(InputError, match="cannot be combined"):
        noisy_request("laplace", raw=True)
    path = tmp_path / "c.yaml"
    path.write_text(f"name: all\nindex_date: {INDEX}\n")
    argv = ["feasibility", str(path), "--region", str(region.path), "--noise", "uniform"]
    assert cli.main(argv) == 2
    assert "--noise must be one of laplace, gaussian" in capsys.readouterr().err


def test_gaussian_noise_same_answer_when_asked_again(region: Region) -> None:
    answers = {}
    for codes in (["E11"], ["I10"], ["E11"]):
        criteria = parse_criteria(
            {"name": "g", "index_date": INDEX, "include": [{"condition": {"codes": codes}}]}
        )
        answers.setdefault(codes[0], []).append(
            feasibility(criteria, region, noise="gaussian", user="g").as_dict()["count"]
        )
    assert answers["E11"][0] == answers["E11"][1]
    assert answers["E11"][0]["error95"] > 10


@pytest.mark.parametrize("method", ["rounding", "cell-key"])
def test_catalogue_population_passes_the_policy(
    region: Region, method: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", method)
    assert cli.main(["catalogue", "--region", str(region.path)]) == 0
    turtle = capsys.readouterr().out
    found = re.findall(r'numberOfUniqueIndividuals "(\d+)"', turtle)
    ids = region.read_table("person", columns=["person_id"]).column("person_id").to_numpy()
    expected = 60 if method == "rounding" else expected_cell_key_count(region, ids)
    assert found == [str(expected)]


# --- Prevention commands on a non-synthetic region --------------------------------------------

PREVENTION_INDEX = "2025-06-30"
PROGRAM = """name: heart check
criteria: {demographics: {age: {min: 50, max: 69}}}
score: {model: applicable, min_risk_percent: 5}
capacity: {default: 3}
"""


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert cli.main([*argv, "--json"]) == 0, (argv, capsys.readouterr().err)
    return json.loads(capsys.readouterr().out)


def expected_cell_key_count(region: Region, person_ids: np.ndarray) -> int | None:
    """What the cell key method must show for these people, worked out from the region's
    record keys and the documented default p-table (independently of privacy.people)."""
    from brygga.privacy.cellkey import PTable, cell_key_of

    keys = region.read_table("person_key").to_pydict()
    key_of = dict(zip(keys["person_id"], keys["record_key"], strict=True))
    n = len(person_ids)
    value = n + PTable.build(2, 1.0).perturbation(cell_key_of(key_of[int(p)] for p in person_ids))
    return None if n < THRESHOLD or value < THRESHOLD else value


@pytest.mark.parametrize("method", ["rounding", "cell-key"])
def test_prevention_commands_pass_the_policy(
    omop_small: Region,
    method: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from brygga.prevention.evaluation import Invitations, write_invitations
    from brygga.prevention.inputs import extract_inputs
    from brygga.prevention.programs import parse_program, plan_program
    from brygga.prevention.stratify import population_risk

    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", method)
    where = ["--region", str(omop_small.path)]
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    plan = plan_program(
        parse_program(yaml.safe_load(PROGRAM)),
        omop_small,
        index_date=date.fromisoformat(PREVENTION_INDEX),
    )
    invited = np.sort(plan.person_id[plan.invited])
    invitations = tmp_path / "invitations.csv"
    day = np.datetime64(PREVENTION_INDEX, "D")
    write_invitations(Invitations(invited, np.full(len(invited), day)), invitations)
    docs = {
        "risk": run_json(["risk", *where, "--index-date", PREVENTION_INDEX], capsys),
        "program": run_json(
            ["program", str(program), *where, "--index-date", PREVENTION_INDEX], capsys
        ),
        "equity": run_json(["equity", *where, "--index-date", PREVENTION_INDEX], capsys),
        "evaluate": run_json(["evaluate", str(invitations), *where], capsys),
    }
    for name, doc in docs.items():
        assert doc["raw"] is False, name
        assert small_counts(doc) == [], name
        assert ("cell key" in doc["disclosure"]) == (method == "cell-key"), name
    # The same people get the same answer in every command.
    risk, equity, plan_doc, evaluation = (
        docs[k] for k in ("risk", "equity", "program", "evaluate")
    )
    assert risk["population"]["scored_population"] == equity["overall"]["people"]
    assert plan_doc["invited"] == evaluation["invited_in_region"]
    if method == "rounding":
        return
    # Cell key method: each count is its people's count plus their cell's perturbation.
    pr = population_risk(
        extract_inputs(omop_small, index_date=date.fromisoformat(PREVENTION_INDEX))
    )
    scored = pr.inputs["person_id"][pr.in_population]
    women = pr.inputs["person_id"][pr.in_population & (pr.inputs["sex"] == "female")]
    assert risk["population"]["scored_population"]["value"] == expected_cell_key_count(
        omop_small, scored
    )
    assert risk["breakdowns"]["sex"]["female"]["people"]["value"] == expected_cell_key_count(
        omop_small, women
    )  # a cell summed per group (privacy.people.PeopleCounter.tally)
    assert plan_doc["invited"]["value"] == expected_cell_key_count(omop_small, invited)
    # Not the rounding rule: some counts are not multiples of 5.
    values = [risk["population"]["scored_population"]["value"], plan_doc["eligible"]["value"]]
    values += [c["people"]["value"] for c in risk["breakdowns"]["age_band"].values()]
    assert any(v is not None and v % 5 for v in values)


def test_match_counts_pass_the_policy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from brygga.studies import invitations, matching, outbox

    monkeypatch.setattr(invitations, "expire_due", lambda _s: 5)
    monkeypatch.setattr(matching, "run", lambda _url, _e: {1: 3, 2: 41})
    links: list[str] = []

    def deliver(_url: str, _sender: object, settings: Any, **_kw: object) -> dict[str, int]:
        links.append(settings.public_url)
        return {"sent": 44, "in_app": 3, "retrying": 0, "failed": 0}

    monkeypatch.setattr(outbox, "deliver", deliver)
    monkeypatch.setenv("BRYGGA_NOTIFY_PUBLIC_URL", "https://brygga.example/")
    doc = run_json(["match"], capsys)
    assert small_counts(doc) == []
    assert doc["invited"]["1"]["display"] == "<8" and doc["invited"]["2"]["value"] == 40
    assert doc["expired"]["display"] == "<8"
    assert doc["notifications"]["sent"]["value"] == 45
    assert doc["notifications"]["in_app"]["display"] == "<8"
    # brygga notify: the same counts, disclosed
    doc = run_json(["notify"], capsys)
    assert small_counts(doc) == []
    assert doc["notifications"]["sent"]["value"] == 45
    assert doc["notifications"]["in_app"]["display"] == "<8"
    assert links == ["https://brygga.example"] * 2
