"""The one document loader: no aliases, bounded depth and size, one error style, and the caps
of the criteria language (docs/criteria.md, "Limits")."""

from __future__ import annotations

import json

import pytest

from brygga import documents
from brygga.cli import main
from brygga.cohort import criteria as C
from brygga.cohort.criteria import criteria_from_text, load_criteria, parse_criteria
from brygga.errors import DocumentError, NotFoundError
from brygga.prevention.programs import load_program
from brygga.privacy.anonymize import load_config

# Under 300 characters that expand to 10^5 rules through aliases (Hardening 2).
BOMB = (
    "a: &a {condition: {codes: [E11]}}\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "include: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
)


def error_of(call, *args) -> str:
    with pytest.raises(DocumentError) as info:
        call(*args)
    return info.value.message


def test_aliases_are_refused_before_they_expand():
    message = error_of(criteria_from_text, BOMB)
    assert message.startswith("criteria: line 1: ")
    assert "anchors and aliases" in message
    # A lone anchor is refused too: it is only there to be aliased.
    assert "line 2" in error_of(documents.parse_yaml, "a: 1\nb: &x 2\n", "x.yaml")


@pytest.mark.parametrize("depth", [300, 3000, 100_000])
def test_deep_nesting_is_an_error_not_a_recursion_error(depth):
    block = "a:\n" + "".join(" " * i + "-\n" for i in range(min(depth, 3000)))
    for text in ("[" * depth + "]" * depth, block):
        assert f"deeper than {documents.MAX_DEPTH} levels" in error_of(criteria_from_text, text)
    deep_json = '{"a": ' * depth + "1" + "}" * depth
    assert "line 1: nested deeper" in error_of(documents.parse_json, deep_json, "d.json")


def test_nesting_within_the_limit_is_read():
    depth = documents.MAX_DEPTH
    assert documents.parse_yaml("[" * depth + "]" * depth, "x").data is not None
    assert documents.parse_json("[" * depth + "]" * depth, "x").data is not None
    # Brackets inside strings are not nesting.
    assert documents.parse_json(json.dumps({"a": "[" * 5000}), "x").data == {"a": "[" * 5000}


def test_documents_have_a_size_limit(monkeypatch):
    monkeypatch.setattr(documents, "MAX_NODES", 50)
    text = "include:\n" + "".join(f"  - condition: {{codes: [E{i}]}}\n" for i in range(10, 30))
    assert "more than 50 values (the limit)" in error_of(documents.parse_yaml, text, "x")
    assert "more than 50 values" in error_of(documents.parse_json, json.dumps(list(range(60))), "x")


def test_field_errors_name_file_line_and_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: x\ninclude:\n  - condition: {codes: [E11]}\n  - drug:\n      codes: [XX]\n"
    )
    message = error_of(load_criteria, path)
    assert message.startswith(f"{path}: invalid criteria: include[1].drug.codes (line 5): ")
    assert "'XX' is not a valid ATC code" in message


def test_one_error_for_a_missing_file(tmp_path):
    for load, what in (
        (load_criteria, "criteria"),
        (load_program, "program"),
        (load_config, "config"),
    ):
        with pytest.raises(NotFoundError, match=f"^{what} file .* does not exist"):
            load(tmp_path / "missing.yaml")


def test_programs_and_anonymize_configs_use_the_loader(tmp_path):
    program = tmp_path / "p.yaml"
    program.write_text("name: x\ncriteria:\n  include: &r [{visit: {}}]\n  exclude: *r\n")
    assert "anchors and aliases" in error_of(load_program, program)
    program.write_text("name: x\ncapacity:\n  per_unit: many\n")
    message = error_of(load_program, program)
    assert message.startswith(f"{program}: invalid program: capacity")
    assert "(line 3)" in message
    config = tmp_path / "a.yaml"
    config.write_text(
        "k: 2\nquasi_identifiers:\n  - column: age\n    hierarchy: {type: prefix, lengths: [1, 3]}\n"
    )
    message = error_of(load_config, config)
    assert "quasi_identifiers[0].hierarchy (line 4): lengths must be strictly decreasing" in message


def rules(n):
    return [{"condition": {"codes": ["E11"]}}] * n


def nested(levels):
    rule = {"condition": {"codes": ["E11"]}}
    for _ in range(levels):
        rule = {"any_of": [rule]}
    return rule


def test_criteria_caps_rules_counting_groups_and_their_rules():
    assert len(parse_criteria({"include": rules(C.MAX_RULES)}).include) == C.MAX_RULES
    message = error_of(parse_criteria, {"include": rules(C.MAX_RULES), "exclude": rules(1)})
    assert f"more than {C.MAX_RULES} rules (the limit" in message
    # A group counts, and so does every rule in it.
    grouped = {"include": [{"any_of": rules(C.MAX_RULES - 1)}, {"visit": {}}]}
    assert f"more than {C.MAX_RULES} rules" in error_of(parse_criteria, grouped)


def test_criteria_caps_nesting():
    assert parse_criteria({"include": [nested(C.MAX_NESTING)]})
    message = error_of(parse_criteria, {"include": [nested(C.MAX_NESTING + 1)]})
    assert f"groups nested more than {C.MAX_NESTING} deep (the limit)" in message
    assert "include[0]" + ".any_of[0]" * C.MAX_NESTING in message


def test_criteria_caps_codes_and_text():
    codes = [f"E{i % 90 + 10}" for i in range(C.MAX_CODES + 1)]
    message = error_of(parse_criteria, {"include": [{"condition": {"codes": codes}}]})
    assert f"include[0].condition.codes: has more than {C.MAX_CODES} items (the limit)" in message
    message = error_of(parse_criteria, {"name": "x" * (C.MAX_NAME + 1)})
    assert f"name: is longer than {C.MAX_NAME} characters (the limit)" in message
    many = [f"{1000 + i}" for i in range(C.MAX_MUNICIPALITIES + 1)]
    message = error_of(parse_criteria, {"demographics": {"municipalities": many}})
    assert f"has more than {C.MAX_MUNICIPALITIES} items" in message


def test_cli_refuses_an_alias_bomb_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 400
    code = main(["feasibility", str(path), "--region", str(tmp_path / "region")])
    err = capsys.readouterr().err
    assert code == 2
    assert "bomb.yaml: line 1:" in err and "aliases" in err
