"""OMOP CDM import: the Synthea27Nj export end to end, and small hand-made exports for the edges."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from brygga import cli
from brygga.errors import InputError, NotFoundError, OutputExistsError
from brygga.ingest import omop
from brygga.ingest.omop import import_omop
from brygga.records import codes, schema
from brygga.records.store import Region

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SYNTHEA = SHARED / "data" / "omop-synthea27nj"

PERSON_CSV = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id\n"
PEOPLE = PERSON_CSV + "1,8507,1960,0,0\n2,8532,1975,0,0\n"


def export(folder: Path, files: dict[str, str]) -> Path:
    """Write a small OMOP export: file name -> CSV text."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def leftovers(parent: Path) -> list[str]:
    """Hidden temporary folders RegionWriter or the import would leave behind."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --- The Synthea27Nj export ------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthea(tmp_path_factory: pytest.TempPathFactory) -> Region:
    return import_omop(SYNTHEA, tmp_path_factory.mktemp("synthea") / "region")


def provenance_counts() -> dict[str, int]:
    text = (SYNTHEA / "PROVENANCE.txt").read_text()
    counts = {"person": int(re.search(r"(\d+) persons", text).group(1))}
    section = text.split("Row counts:")[1].split("Gaps")[0]
    for table, n in re.findall(r"([a-z_]+) ([\d,]+)", section):
        counts[table] = int(n.replace(",", ""))
    return counts


def test_row_counts_match_provenance(synthea: Region) -> None:
    expected = {t: n for t, n in provenance_counts().items() if t in schema.TABLES}
    # The tables PROVENANCE.txt counts that the region model has (others are not imported).
    assert set(expected) == {
        "person",
        "observation_period",
        "visit_occurrence",
        "condition_occurrence",
        "drug_exposure",
        "measurement",
        "observation",
        "procedure_occurrence",
        "death",
        "concept",
    }
    assert expected["person"] == 28
    con = synthea.duckdb()
    for table, n in expected.items():
        assert synthea.row_counts[table] == n, table
        assert con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0] == n, table


def test_manifest_and_tables(synthea: Region) -> None:
    manifest = synthea.manifest
    assert manifest["source"] == "omop-import"
    assert manifest["region"] == "omop-synthea27nj"
    assert manifest["source_folder"] == str(SYNTHEA.resolve())
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["cdm_source"]["cdm_version"] == "5.4"
    # Header-only tables are written empty (core) or left out (vocabulary).
    assert synthea.row_counts["location"] == 0 and synthea.row_counts["care_site"] == 0
    assert "concept_ancestor" not in synthea.tables()
    assert set(synthea.tables()) == {*schema.CORE_TABLES, "concept", "person_key"}
    assert not synthea.synthetic


def test_parquet_types_follow_the_schema(synthea: Region) -> None:
    for table in synthea.tables():
        for part in sorted(synthea.table_path(table).glob("*.parquet")):
            written = pq.read_schema(part)
            assert written.names == schema.table(table).column_names, table
            assert written.types == schema.table(table).arrow_schema().types, table


def test_concept_ids_and_source_values_are_kept(synthea: Region) -> None:
    con = synthea.duckdb()
    for table, short in [
        ("condition_occurrence", "condition"),
        ("drug_exposure", "drug"),
        ("measurement", "measurement"),
        ("procedure_occurrence", "procedure"),
    ]:
        csv = str(SYNTHEA / f"{table.upper()}.csv")
        same = con.sql(
            f"SELECT count(*) FROM {table} r JOIN read_csv('{csv}', all_varchar=true) o "
            f"ON r.{table}_id = o.{table}_id::BIGINT "
            f"WHERE r.person_id = o.person_id::BIGINT "
            f"AND r.{short}_concept_id = o.{short}_concept_id::INTEGER "
            f"AND r.{short}_source_concept_id = o.{short}_source_concept_id::INTEGER "
            f"AND r.{short}_source_value = o.{short}_source_value"
        ).fetchall()[0][0]
        assert same == synthea.row_counts[table], table
    values = con.sql(
        "SELECT value_as_number, unit_source_value FROM measurement WHERE measurement_id = 1"
    ).fetchall()[0]
    assert values == (48.1, "kg")


def test_source_vocabulary_comes_from_the_concept_table(synthea: Region) -> None:
    con = synthea.duckdb()

    def vocabularies(table: str, column: str) -> set[str | None]:
        return {v for (v,) in con.sql(f"SELECT DISTINCT {column} FROM {table}").fetchall()}

    assert vocabularies("condition_occurrence", "condition_source_vocabulary") == {"SNOMED"}
    assert vocabularies("drug_exposure", "drug_source_vocabulary") == {"RxNorm"}
    assert vocabularies("measurement", "measurement_source_vocabulary") == {"LOINC", "SNOMED"}
    assert vocabularies("death", "cause_source_vocabulary") == {"SNOMED"}
    # Height (LOINC 8302-2) is labelled LOINC.
    assert con.sql(
        "SELECT DISTINCT measurement_source_vocabulary FROM measurement "
        "WHERE measurement_source_value = '8302-2'"
    ).fetchall() == [("LOINC",)]


def test_extension_columns_not_in_omop_stay_null(synthea: Region) -> None:
    person = synthea.read_table("person")
    assert person.column("municipality_code").null_count == 28
    assert person.column("deprivation_quintile").null_count == 28
    assert person.column("gender_source_value").to_pylist().count("F") > 0


def test_event_tables_are_sorted_by_their_sort_keys(synthea: Region) -> None:
    table = schema.table("measurement")
    rows = synthea.read_table("measurement", columns=list(table.sort_keys)).to_pylist()
    keys = [tuple(r[k] for k in table.sort_keys) for r in rows]
    assert keys == sorted(keys)


# --- Small exports: file names, empty and missing tables ------------------------------------


def test_lower_case_names_header_only_and_missing_tables(tmp_path: Path) -> None:
    source = export(
        tmp_path / "omop",
        {
            "person.csv": PEOPLE,
            "measurement.csv": "measurement_id,person_id,measurement_concept_id,"
            "measurement_date,measurement_type_concept_id\n",
        },
    )
    region = import_omop(source, tmp_path / "region", name="tiny")
    assert region.name == "tiny"
    assert region.row_counts["person"] == 2
    assert region.row_counts["measurement"] == 0
    # Every core table exists (absent ones written empty), so the region opens.
    assert set(region.tables()) == {*schema.CORE_TABLES, "person_key"}
    assert all(region.row_counts[t] == 0 for t in schema.CORE_TABLES if t != "person")
    assert region.read_table("person").column("year_of_birth").to_pylist() == [1960, 1975]


def test_concept_ancestor_tab_separated_and_gzipped(tmp_path: Path) -> None:
    concept = (
        "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\t"
        "standard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason\n"
        "201820\tDiabetes mellitus\tCondition\tSNOMED\tClinical Finding\tS\t73211009\t"
        "19700101\t20991231\t\n"
        "201826\tType 2 diabetes mellitus\tCondition\tSNOMED\tClinical Finding\tS\t44054006\t"
        "19700101\t20991231\t\n"
    )
    ancestor = (
        "ANCESTOR_CONCEPT_ID\tDESCENDANT_CONCEPT_ID\tMIN_LEVELS_OF_SEPARATION\t"
        "MAX_LEVELS_OF_SEPARATION\n201820\t201826\t1\t1\n201826\t201826\t0\t0\n"
    )
    source = export(tmp_path / "omop", {"PERSON.csv": PEOPLE, "CONCEPT.csv": concept})
    with gzip.open(source / "CONCEPT_ANCESTOR.csv.gz", "wt") as f:
        f.write(ancestor)
    region = import_omop(source, tmp_path / "region")
    assert region.row_counts["concept_ancestor"] == 2
    assert region.read_table("concept_ancestor").to_pylist() == [
        {
            "ancestor_concept_id": 201820,
            "descendant_concept_id": 201826,
            "min_levels_of_separation": 1,
            "max_levels_of_separation": 1,
        },
        {
            "ancestor_concept_id": 201826,
            "descendant_concept_id": 201826,
            "min_levels_of_separation": 0,
            "max_levels_of_separation": 0,
        },
    ]
    concepts = region.read_table("concept").to_pylist()
    assert [c["valid_start_date"].isoformat() for c in concepts] == ["1970-01-01"] * 2
    assert concepts[0]["invalid_reason"] is None


def test_icd10_source_values_lose_the_dot_and_vocabulary_fallback(tmp_path: Path) -> None:
    concept_header = (
        "concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standard_concept,"
        "concept_code,valid_start_date,valid_end_date,invalid_reason\n"
    )
    concept = concept_header + (
        "45576876,Type 2 diabetes mellitus without complications,Condition,ICD10CM,"
        "5-char billing code,,E11.9,2007-10-01,2099-12-31,\n"
        "201826,Type 2 diabetes mellitus,Condition,SNOMED,Clinical Finding,S,44054006,"
        "1970-01-01,2099-12-31,\n"
    )
    conditions = (
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,"
        "condition_type_concept_id,condition_source_value,condition_source_concept_id\n"
        # ICD10CM via its source concept: stored without the dot.
        "1,1,201826,2020-01-01,32817,e11.9,45576876\n"
        # No source concept, but the value is the standard concept's own code: SNOMED.
        "2,1,201826,2020-01-02 00:00:00,32817,44054006,0\n"
        # No source concept and a value that is not the standard concept's code: unknown.
        "3,2,201826,20200103,32817,E11.9,0\n"
    )
    source = export(
        tmp_path / "omop",
        {"PERSON.csv": PEOPLE, "CONCEPT.csv": concept, "CONDITION_OCCURRENCE.csv": conditions},
    )
    region = import_omop(source, tmp_path / "region")
    rows = {
        r["condition_occurrence_id"]: r
        for r in region.read_table("condition_occurrence").to_pylist()
    }
    assert rows[1]["condition_source_value"] == codes.normalize_icd10("e11.9") == "E119"
    assert rows[1]["condition_source_vocabulary"] == "ICD10CM"
    assert rows[2]["condition_source_vocabulary"] == "SNOMED"
    assert rows[2]["condition_source_value"] == "44054006"
    assert rows[3]["condition_source_vocabulary"] is None
    assert rows[3]["condition_source_value"] == "E11.9"  # not known to be ICD-10
    assert [rows[i]["condition_start_date"].isoformat() for i in (1, 2, 3)] == [
        "2020-01-01",
        "2020-01-02",
        "2020-01-03",
    ]


def test_many_batches_become_parquet_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(omop, "BATCH_ROWS", 2)
    people = PERSON_CSV + "".join(f"{i},8507,{1950 + i},0,0\n" for i in range(1, 8))
    region = import_omop(export(tmp_path / "omop", {"person.csv": people}), tmp_path / "r")
    assert len(list((tmp_path / "r" / "person").glob("*.parquet"))) > 1
    assert region.read_table("person").column("person_id").to_pylist() == list(range(1, 8))
    assert region.row_counts["person"] == 7


# --- Errors ----------------------------------------------------------------------------------


def measurement_export(folder: Path, bad_value: str) -> Path:
    """A MEASUREMENT.csv whose line 17 holds ``bad_value``; a quoted field spans lines 3-4."""
    header = (
        "measurement_id,person_id,measurement_concept_id,measurement_date,"
        "measurement_type_concept_id,value_as_number,unit_source_value\n"
    )
    rows = ['1,1,3025315,2020-01-01,32817,48.1,"kg\n(weight)"\n']
    rows += [f"{i},1,3025315,2020-01-01,32817,{40 + i},kg\n" for i in range(2, 15)]
    rows.append(f"15,2,3025315,2020-01-01,32817,{bad_value},kg\n")
    text = header + "".join(rows)
    assert text.count("\n") == 17
    return export(folder, {"PERSON.csv": PEOPLE, "MEASUREMENT.csv": text})


def test_malformed_number_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = measurement_export(tmp_path / "omop", "abc")
    out = tmp_path / "out" / "region"
    code = cli.main(["import-omop", str(source), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "MEASUREMENT.csv line 17, column value_as_number: 'abc' is not a number" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert leftovers(out.parent) == []


def test_error_line_across_chunks_blank_lines_and_quoted_newlines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(omop, "LOCATE_CHUNK", 3)  # the bad record is in a later chunk
    people = (
        PERSON_CSV.replace("\n", ",person_source_value\n")
        + '1,8507,1960,0,0,"a\nb\nc"\n'  # lines 2-4
        + "\n"  # line 5, blank: skipped
        + "".join(f"{i},8532,1975,0,0,p{i}\n" for i in range(2, 8))  # lines 6-11
        + "8,8532,1975,0,2026-01-01,p8\n"  # line 12
    )
    source = export(tmp_path / "omop", {"person.csv": people})
    with pytest.raises(InputError) as exc:
        import_omop(source, tmp_path / "region")
    assert str(exc.value) == (
        "person.csv line 12, column ethnicity_concept_id: '2026-01-01' is not an integer"
    )


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = measurement_export(tmp_path / "omop", "51.5")
    out = tmp_path / "region"
    assert cli.main(["import-omop", str(source), "--out", str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["row_counts"]["measurement"] == 15
    assert document["path"] == str(out)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "a value is required"),  # gender_concept_id is required
        ("12x", "'12x' is not an integer"),
        ("1.5", "'1.5' is not an integer"),
        ("191212121212", "a value of 12 characters is out of range"),  # never echoed
    ],
)
def test_bad_integers_and_missing_values(tmp_path: Path, value: str, problem: str) -> None:
    people = PEOPLE + f"3,{value},1980,0,0\n"
    source = export(tmp_path / "omop", {"person.csv": people})
    with pytest.raises(InputError) as exc:
        import_omop(source, tmp_path / "region")
    assert str(exc.value).startswith(f"person.csv line 4, column gender_concept_id: {problem}")
    assert not (tmp_path / "region").exists()


def test_integral_decimals_are_integers(tmp_path: Path) -> None:
    people = PERSON_CSV + "1.0,8532.0,1980,0,0\n"
    region = import_omop(export(tmp_path / "omop", {"person.csv": people}), tmp_path / "r")
    assert region.read_table("person").to_pylist()[0]["gender_concept_id"] == 8532


def test_bad_date(tmp_path: Path) -> None:
    periods = (
        "observation_period_id,person_id,observation_period_start_date,"
        "observation_period_end_date,period_type_concept_id\n1,1,2001-02-30,2010-01-01,32817\n"
    )
    source = export(tmp_path / "omop", {"PERSON.csv": PEOPLE, "OBSERVATION_PERIOD.csv": periods})
    with pytest.raises(
        InputError,
        match=r"OBSERVATION_PERIOD.csv line 2, column "
        r"observation_period_start_date: '2001-02-30' is not a date",
    ):
        import_omop(source, tmp_path / "region")


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    source = export(tmp_path / "omop", {"PERSON.csv": PEOPLE + "3,8507,1990,0,0,extra\n"})
    with pytest.raises(InputError, match=r"PERSON.csv line 4: expected 5 fields .* found 6"):
        import_omop(source, tmp_path / "region")


def test_required_column_missing_from_header(tmp_path: Path) -> None:
    source = export(tmp_path / "omop", {"PERSON.csv": "person_id,gender_concept_id\n1,8507\n"})
    with pytest.raises(InputError, match=r"PERSON.csv line 1: required column year_of_birth"):
        import_omop(source, tmp_path / "region")


def test_export_without_person_or_folder(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        import_omop(tmp_path / "nowhere", tmp_path / "region")
    source = export(tmp_path / "omop", {"DEATH.csv": "person_id,death_date\n"})
    with pytest.raises(InputError, match=r"no PERSON.csv"):
        import_omop(source, tmp_path / "region")
    (source / "PERSON.csv").write_text(PEOPLE)
    (source / "person.csv").write_text(PEOPLE)
    with pytest.raises(InputError, match=r"both PERSON.csv and person.csv"):
        import_omop(source, tmp_path / "region")


def test_personnummer_in_person_source_value_is_refused(tmp_path: Path) -> None:
    people = PERSON_CSV.replace("\n", ",person_source_value\n") + (
        "1,8507,1960,0,0,a81f\n2,8532,1912,0,0,19121212-1212\n"  # Skatteverket's test number
    )
    source = export(tmp_path / "omop", {"person.csv": people})
    with pytest.raises(InputError, match="personal identity numbers") as exc:
        import_omop(source, tmp_path / "region")
    assert "1212" not in str(exc.value)
    assert not (tmp_path / "region").exists()
    # Ten digits that are no valid personnummer (bad check digit) are a fine pseudonym.
    (source / "person.csv").write_text(people.replace("19121212-1212", "1234567890"))
    assert import_omop(source, tmp_path / "region").row_counts["person"] == 2


def test_existing_output_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = export(tmp_path / "omop", {"person.csv": PEOPLE})
    out = tmp_path / "region"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli.main(["import-omop", str(source), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputExistsError):
        import_omop(source, out)
    assert cli.main(["import-omop", str(source), "--out", str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists()
    assert Region.open(out).row_counts["person"] == 2


def test_force_never_replaces_the_export_itself(tmp_path: Path) -> None:
    source = export(tmp_path / "omop", {"person.csv": PEOPLE})
    for out in (source, tmp_path):
        with pytest.raises(InputError, match="would replace the OMOP export"):
            import_omop(source, out, force=True)
    assert (source / "person.csv").read_text() == PEOPLE


def test_sql_check_matches_python_normalization() -> None:
    # The import normalizes ICD-10 in SQL; it must agree with codes.normalize_icd10.
    samples = ["E11.9", "e11.9", "I21", "J44.9", "Z00.00"]
    sql = "SELECT upper(replace(x, '.', '')) FROM (SELECT unnest(?) AS x)"
    assert [r[0] for r in duckdb.sql(sql, params=[samples]).fetchall()] == [
        codes.normalize_icd10(s) for s in samples
    ]
