"""The records layer: region folders (store.py), the generated data-model docs, code systems."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from brygga import cli
from brygga.errors import InputError, OutputExistsError, RegionError
from brygga.records import codes, schema
from brygga.records.store import MANIFEST, Region, RegionWriter

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def make_region(out: Path) -> Region:
    """A tiny synthetic region: two people, every other core table empty."""
    with RegionWriter(out) as writer:
        writer.write(
            "person",
            pa.table(
                {
                    "person_id": [1, 2],
                    "gender_concept_id": [codes.GENDER_MALE, codes.GENDER_FEMALE],
                    "year_of_birth": [1950, 1980],
                    "race_concept_id": [0, 0],
                    "ethnicity_concept_id": [0, 0],
                    "municipality_code": ["1280", "0180"],
                }
            ),
        )
        writer.ensure_tables(schema.CORE_TABLES)
        return writer.commit({"source": "synthetic", "region": "test", "seed": 1})


@pytest.fixture
def region(tmp_path: Path) -> Region:
    return make_region(tmp_path / "region")


def region_info(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["region-info", str(path)])
    return code, capsys.readouterr().err


# --- Region.open -----------------------------------------------------------------------------


def test_a_written_region_opens(region: Region, capsys: pytest.CaptureFixture[str]) -> None:
    assert region.name == "test"
    assert region.synthetic
    assert region.row_counts["person"] == 2 and region.row_counts["death"] == 0
    assert set(region.tables()) == set(schema.CORE_TABLES)
    person = region.read_table("person")
    assert person.schema == schema.table("person").arrow_schema()
    assert person.column("municipality_code").to_pylist() == ["1280", "0180"]
    assert region.duckdb().sql("SELECT sum(year_of_birth) FROM person").fetchall() == [(3930,)]
    assert cli.main(["region-info", str(region.path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["row_counts"]["person"] == 2
    assert document["schema_version"] == schema.SCHEMA_VERSION


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = region_info(tmp_path / "nowhere", capsys)
    assert code == 2
    assert "does not exist" in err
    assert "Traceback" not in err


def test_folder_without_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notaregion").mkdir()
    code, err = region_info(tmp_path / "notaregion", capsys)
    assert code == 2
    assert f"no {MANIFEST}" in err


def test_invalid_manifest_json(region: Region, capsys: pytest.CaptureFixture[str]) -> None:
    (region.path / MANIFEST).write_text('{"schema_version": 1,\n  "region": }')
    code, err = region_info(region.path, capsys)
    assert code == 2
    assert "line 2" in err and "invalid JSON" in err


def test_other_schema_version(region: Region, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((region.path / MANIFEST).read_text())
    manifest["schema_version"] = schema.SCHEMA_VERSION + 1
    (region.path / MANIFEST).write_text(json.dumps(manifest))
    code, err = region_info(region.path, capsys)
    assert code == 2
    assert f"schema version {schema.SCHEMA_VERSION + 1}" in err
    assert "re-import" in err
    with pytest.raises(RegionError):
        Region.open(region.path)


def test_missing_table(region: Region, capsys: pytest.CaptureFixture[str]) -> None:
    for part in (region.path / "death").iterdir():
        part.unlink()
    (region.path / "death").rmdir()
    code, err = region_info(region.path, capsys)
    assert code == 2
    assert "missing tables: death" in err


def test_missing_vocabulary_tables_are_fine(region: Region) -> None:
    assert region.table_path("concept") is None
    with pytest.raises(RegionError, match="no table 'concept'"):
        region.read_table("concept")


# --- RegionWriter ----------------------------------------------------------------------------


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "region"
    with pytest.raises(InputError, match="required column 'year_of_birth'"):  # noqa: SIM117
        with RegionWriter(out) as writer:
            writer.write("person", pa.table({"person_id": [1], "gender_concept_id": [8507]}))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_force(region: Region) -> None:
    with pytest.raises(OutputExistsError, match="--force"):
        RegionWriter(region.path)
    assert Region.open(region.path).row_counts["person"] == 2
    replaced = make_region_forced(region.path)
    assert replaced.manifest["seed"] == 2


def make_region_forced(out: Path) -> Region:
    with RegionWriter(out, force=True) as writer:
        writer.ensure_tables(schema.CORE_TABLES)
        return writer.commit({"source": "synthetic", "region": "test", "seed": 2})


# --- Generated documentation ------------------------------------------------------------------


def test_data_model_docs_are_current() -> None:
    # Regenerate with: brygga schema-docs --out docs/data-model.md
    assert DOCS.read_text(encoding="utf-8") == schema.render_markdown()


def test_schema_docs_command_writes_the_docs(tmp_path: Path) -> None:
    target = tmp_path / "data-model.md"
    assert cli.main(["schema-docs", "--out", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == schema.render_markdown()


def test_schema_definitions_are_consistent() -> None:
    for table in schema.TABLES.values():
        names = table.column_names
        assert len(names) == len(set(names)), table.name
        for key in table.sort_keys:
            assert key in names, (table.name, key)
        for attr in ("date_column", "code_column", "vocabulary_column", "concept_column"):
            column = getattr(table, attr)
            assert column is None or column in names, (table.name, attr)
        if table.person_column:
            assert table.column(table.person_column).required, table.name
    assert "concept" not in schema.CORE_TABLES and "person" in schema.CORE_TABLES
    with pytest.raises(InputError, match="unknown table"):
        schema.table("patients")


# --- Code systems -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vocabulary", "code", "normalized"),
    [
        ("ICD10", "E11.9", "E119"),
        ("ICD10", " e119 ", "E119"),
        ("ICD10", "I21", "I21"),
        ("ATC", "a10ba02", "A10BA02"),
        ("ATC", "C10", "C10"),
        ("NPU", "NPU27300", "NPU27300"),
        ("LOINC", "8480-6", "8480-6"),
        ("KVA", "fng05", "FNG05"),
        ("SNOMED", "77176002", "77176002"),
        ("OMOP", "201826", "201826"),
    ],
)
def test_valid_codes_are_normalized(vocabulary: str, code: str, normalized: str) -> None:
    assert codes.vocabulary(vocabulary).validate(code) == normalized


@pytest.mark.parametrize(
    ("vocabulary", "code"),
    [
        ("ICD10", "11E"),
        ("ICD10", "E"),
        ("ATC", "A10B0"),
        ("NPU", "27300"),
        ("LOINC", "8480"),
        ("KVA", "F05"),
        ("SNOMED", "123"),
        ("OMOP", "C10"),
    ],
)
def test_invalid_codes_are_refused(vocabulary: str, code: str) -> None:
    with pytest.raises(InputError, match=f"not a valid {vocabulary} code"):
        codes.vocabulary(vocabulary).validate(code)


def test_vocabulary_lookup() -> None:
    assert codes.vocabulary("icd10").hierarchical
    assert not codes.vocabulary("LOINC").hierarchical
    with pytest.raises(InputError, match="unknown vocabulary 'ICD9'"):
        codes.vocabulary("ICD9")


def test_normalize_icd10() -> None:
    assert codes.normalize_icd10("e11.9") == "E119"
    assert codes.normalize_icd10("I21") == "I21"


def test_catalogue_codes_are_valid_and_stored_normalized() -> None:
    groups = [codes.CONDITIONS, codes.DRUGS, codes.LABS, codes.PROCEDURES, codes.OBSERVATIONS]
    for group in groups:
        for key, code in group.items():
            assert key == code.key
            # Stored exactly as validate() normalizes it (ICD-10 without the dot).
            assert codes.vocabulary(code.vocabulary).validate(code.code) == code.code, key


def test_aliases() -> None:
    assert codes.resolve_alias("hba1c") == codes.LABS["HbA1c"]
    assert codes.resolve_alias("SMOKER").code == "77176002"
    assert codes.resolve_alias("metformin") is None  # drugs are given by ATC code
