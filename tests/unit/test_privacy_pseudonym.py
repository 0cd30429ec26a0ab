"""Keyed pseudonyms from personnummer, and the OMOP import's --pseudonymize."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import numpy as np
import pytest

from brygga import cli
from brygga.config import Settings
from brygga.errors import InputError
from brygga.ingest.omop import import_omop
from brygga.privacy.pseudonym import (
    PseudonymKeyError,
    canonical,
    load_key,
    pseudonym,
    pseudonyms,
)

KEY = b"k" * 32
# Test numbers from Skatteverket's published test series (not real people).
VALID = "19811218-9876"
COORDINATION = "19811278-9873"  # samordningsnummer: day of birth + 60


def test_pseudonym_is_hmac_sha256_top_bit_cleared() -> None:
    digest = hmac.new(KEY, b"198112189876", hashlib.sha256).digest()
    expected = int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)
    assert pseudonym(VALID, KEY) == expected
    assert 0 < expected < 2**63
    # Every spelling of the same number gives the same id; another key another id.
    assert pseudonym("198112189876", KEY) == pseudonym("811218-9876", KEY) == expected
    assert pseudonym(VALID, b"o" * 32) != expected


def test_samordningsnummer_accepted_and_distinct() -> None:
    assert canonical(COORDINATION) == "198112789873"
    assert pseudonym(COORDINATION, KEY) != pseudonym(VALID, KEY)


def test_vectorized_matches_one_by_one() -> None:
    ids = pseudonyms([VALID, COORDINATION, "811218-9876"], KEY)
    assert ids.dtype == np.int64
    assert ids.tolist() == [pseudonym(n, KEY) for n in (VALID, COORDINATION, VALID)]


@pytest.mark.parametrize("bad", ["19811218-9875", "19811318-9876", "abc", "", "1981121898"])
def test_errors_never_contain_the_number(bad: str) -> None:
    with pytest.raises(InputError) as one:
        pseudonym(bad, KEY, where="person.csv row 3")
    with pytest.raises(InputError) as many:
        pseudonyms([VALID, bad], KEY)
    for exc in (one.value, many.value):
        message = str(exc)
        assert (bad not in message) if bad else "missing" in message
        assert "19811218" not in message and "9876" not in message
    assert "person.csv row 3" in str(one.value)
    assert "row 2" in str(many.value)


def test_key_from_file_or_environment_never_from_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRYGGA_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("BRYGGA_PSEUDONYM_KEY_FILE", raising=False)
    with pytest.raises(PseudonymKeyError, match="BRYGGA_PSEUDONYM_KEY_FILE"):
        load_key(Settings())
    key_file = tmp_path / "key"
    key_file.write_bytes(b"s" * 40 + b"\n")
    assert load_key(Settings(pseudonym_key_file=key_file)) == b"s" * 40
    assert load_key(Settings(pseudonym_key="e" * 32)) == b"e" * 32
    with pytest.raises(PseudonymKeyError, match="at least 32 bytes"):
        load_key(Settings(pseudonym_key="short"))
    with pytest.raises(PseudonymKeyError, match="cannot read"):
        load_key(Settings(pseudonym_key_file=tmp_path / "missing"))


PERSON = (
    "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,"
    "person_source_value\n"
    f"1,8532,1981,0,0,{VALID}\n"
    f"2,8507,1981,0,0,{COORDINATION}\n"
)
CONDITIONS = (
    "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,"
    "condition_type_concept_id,condition_source_value\n"
    "1,2,0,2020-01-01,32817,E11\n"
    "2,1,0,2021-01-01,32817,I10\n"
)


def test_omop_import_pseudonymizes_every_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "omop"
    source.mkdir()
    (source / "person.csv").write_text(PERSON)
    (source / "condition_occurrence.csv").write_text(CONDITIONS)
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    monkeypatch.setenv("BRYGGA_PSEUDONYM_KEY_FILE", str(key_file))
    region = import_omop(source, tmp_path / "region", pseudonymize=True)
    person = region.read_table("person").to_pylist()
    expected = {pseudonym(VALID, KEY), pseudonym(COORDINATION, KEY)}
    assert {p["person_id"] for p in person} == expected
    assert all(p["person_source_value"] is None for p in person)
    conditions = {
        r["condition_source_value"]: r["person_id"]
        for r in region.read_table("condition_occurrence").to_pylist()
    }
    assert conditions == {"E11": pseudonym(COORDINATION, KEY), "I10": pseudonym(VALID, KEY)}
    keys = region.read_table("person_key").to_pylist()
    assert {k["person_id"] for k in keys} == expected
    assert all(0 <= k["record_key"] < 1 for k in keys)
    assert region.manifest["pseudonymized"] is True
    text = b"".join(p.read_bytes() for p in region.path.rglob("*") if p.is_file())
    assert b"9876" not in text and b"9873" not in text  # the numbers are nowhere in the region


def test_omop_import_without_key_or_with_bad_numbers_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    source = tmp_path / "omop"
    source.mkdir()
    (source / "person.csv").write_text(PERSON.replace(VALID, "19811218-9875"))
    monkeypatch.delenv("BRYGGA_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("BRYGGA_PSEUDONYM_KEY", raising=False)
    out = tmp_path / "region"
    assert cli.main(["import-omop", str(source), "--out", str(out), "--pseudonymize"]) == 2
    assert "no pseudonym key" in capsys.readouterr().err
    monkeypatch.setenv("BRYGGA_PSEUDONYM_KEY", KEY.decode())
    assert cli.main(["import-omop", str(source), "--out", str(out), "--pseudonymize"]) == 2
    err = capsys.readouterr().err
    assert "person row 1" in err and "not a valid personnummer" in err
    assert "9875" not in err
    assert not out.exists()
