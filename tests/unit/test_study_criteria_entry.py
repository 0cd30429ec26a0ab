"""A study's criteria ask who qualifies today: an entry event (each person's own index date, a
historical cohort) is refused for studies, with a message in the form's language."""

from __future__ import annotations

import pytest

from brygga.messages import localize
from brygga.studies.registration import criteria_from_yaml

ENTRY = """
entry:
  event: {condition: {codes: ["E11"], vocabulary: ICD10}}
  period: {from: 2015-01-01, to: 2020-12-31}
"""


def test_entry_criteria_are_refused_for_a_study() -> None:
    with pytest.raises(ValueError) as refused:
        criteria_from_yaml(ENTRY)
    message = str(refused.value)
    assert "entry event" in message
    assert localize(message, "sv").startswith("en studie rekryterar personer som de är i dag")


def test_criteria_with_a_global_index_date_still_pass() -> None:
    criteria = criteria_from_yaml("include:\n  - condition: {codes: [E11], vocabulary: ICD10}\n")
    assert criteria.entry is None and len(criteria.include) == 1
