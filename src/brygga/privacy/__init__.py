"""Privacy: disclosure control, noise and budgets, pseudonyms and anonymized extracts.

Public modules:

* ``disclosure`` - the disclosure policy every count passes;
* ``suppression`` - secondary suppression for tables with totals;
* ``cellkey`` - the Cell Key Method (record keys, cell keys, p-table);
* ``noise`` - noisy, cached, rate-limited feasibility counts;
* ``questions`` - the question guard every feasibility question passes;
* ``budget`` - differential-privacy budgets of approved projects;
* ``people`` - counts of people computed in Python, disclosed with their cell keys;
* ``pseudonym`` - keyed pseudonyms (HMAC-SHA256 of the personnummer);
* ``models`` - the privacy tables;
* ``anonymize`` - anonymized extracts (k-anonymity, l-diversity, t-closeness).

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.privacy`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.privacy.disclosure import (
        CellKeyPolicy,
        DisclosurePolicy,
        RawPolicy,
        RoundingPolicy,
        TeamPolicy,
        policy_for,
    )
    from brygga.privacy.people import PeopleCounter, PeopleTable
    from brygga.privacy.questions import QuestionGuard, QuestionRefused
    from brygga.privacy.suppression import Line, protect

__all__ = [
    "CellKeyPolicy",
    "DisclosurePolicy",
    "Line",
    "PeopleCounter",
    "PeopleTable",
    "QuestionGuard",
    "QuestionRefused",
    "RawPolicy",
    "RoundingPolicy",
    "TeamPolicy",
    "policy_for",
    "protect",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "CellKeyPolicy": "disclosure",
        "DisclosurePolicy": "disclosure",
        "RawPolicy": "disclosure",
        "RoundingPolicy": "disclosure",
        "TeamPolicy": "disclosure",
        "policy_for": "disclosure",
        "Line": "suppression",
        "protect": "suppression",
        "QuestionGuard": "questions",
        "QuestionRefused": "questions",
        "PeopleCounter": "people",
        "PeopleTable": "people",
    },
)
