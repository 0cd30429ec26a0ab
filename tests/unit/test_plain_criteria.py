"""Who can take part, in plain words (studies/plain.py): every kind of rule, both languages,
and nothing it cannot phrase ever shown as codes or YAML."""

from __future__ import annotations

import pytest

from brygga.cohort.criteria import criteria_from_text
from brygga.messages import catalogue
from brygga.studies.plain import describe


def texts(yaml: str, lang: str = "sv") -> tuple[list[str], list[str]]:
    plain = describe(criteria_from_text(yaml), lang, {"1280": "Malmö", "1281": "Lund"}.get)

    def flat(items):
        return [t for i in items for t in [i.text, *flat(i.children)]]

    return flat(plain.include), flat(plain.exclude)


def test_demographics():
    inc, exc = texts(
        "demographics: {age: {min: 40, max: 75}, sex: [female], municipalities: ['1280', '1281']}"
    )
    assert inc == ["du är mellan 40 och 75 år", "du är kvinna", "du bor i Malmö eller Lund"]
    assert exc == []
    assert texts("demographics: {age: {min: 18}}")[0] == ["du är 18 år eller äldre"]
    assert texts("demographics: {age: {max: 17}}", "en")[0] == ["you are 17 or younger"]
    assert texts("demographics: {sex: [female, male]}")[0] == []  # both sexes: nothing to say


def test_conditions_medicines_and_labs_by_name():
    inc, exc = texts("""
include:
  - condition: {codes: [E11], vocabulary: ICD10, within: {days_before: 730}}
  - drug: {codes: [A10BA02], vocabulary: ATC}
  - drug: {codes: [C10], vocabulary: ATC}
  - measurement: {codes: [HbA1c], value: {min: 53, max: 97.5}, latest: true}
  - observation: {codes: [smoker]}
exclude:
  - condition: {codes: [I21, I63], vocabulary: ICD10}
  - procedure: {codes: [FNG05], vocabulary: KVA}
""")
    assert inc == [
        "du har eller har haft typ 2-diabetes (under de senaste 2 åren)",
        "du använder metformin",
        "du använder blodfettssänkande läkemedel",
        "ditt senaste långtidssocker (HbA1c) är mellan 53 och 97,5 mmol/mol",
        "du röker",
    ]
    assert exc == [
        "du har eller har haft hjärtinfarkt eller stroke",
        "du har genomgått ballongvidgning av kranskärlen",
    ]


def test_groups():
    inc, _ = texts(
        """
include:
  - any_of:
      - condition: {codes: [I10], vocabulary: ICD10}
      - measurement: {codes: [SBP], value: {min: 140}, latest: true}
  - at_least: {n: 2, of: [{condition: {codes: [E11], vocabulary: ICD10}},
                          {condition: {codes: [E66], vocabulary: ICD10}},
                          {condition: {codes: [I10], vocabulary: ICD10}}]}
""",
        "en",
    )
    assert inc[:3] == [
        "at least one of these is true:",
        "you have or have had high blood pressure",
        "your latest upper (systolic) blood pressure is at least 140 mmHg",
    ]
    assert inc[3] == "at least 2 of these are true:"


@pytest.mark.parametrize(
    "rule",
    [
        "condition: {codes: [Q999], vocabulary: ICD10}",
        "visit: {types: [inpatient], within: {days_before: 30}}",
        "drug: {codes: [L01XC], vocabulary: ATC}",
        "any_of: [{condition: {codes: [E11], vocabulary: ICD10}}, {condition: {codes: [Q999], vocabulary: ICD10}}]",
    ],
)
def test_what_cannot_be_phrased_is_said_generically_once(rule):
    inc, exc = texts(f"include:\n  - {rule}\n  - {rule}\nexclude:\n  - {rule}\n")
    generic = catalogue()["public_wp_generic"][0]
    assert inc == [generic] and exc == [generic]


def test_no_codes_or_yaml_ever_shown():
    inc, exc = texts("""
include:
  - condition: {codes: [E11, Q999], vocabulary: ICD10}
  - measurement: {codes: ["NPU99999"], vocabulary: NPU}
""")
    for text in inc + exc:
        assert "Q999" not in text and "NPU" not in text and ":" not in text.rstrip(":")
