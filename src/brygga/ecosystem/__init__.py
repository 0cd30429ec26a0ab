"""The ecosystem front door ("Vägen in"): a directory of actors, research infrastructures,
testbeds, support offerings and competence programmes; needs matched to offerings; inquiries
routed to providers with response clocks in Swedish working days.

Public modules:

* ``models`` - directory entries, needs, inquiries and their recipients, notifications;
* ``profiles`` - the profile document (YAML/JSON import, validated with ``brygga.documents``);
* ``directory`` - import, review (draft -> published), expiry and renewal, listing;
* ``text`` - Swedish and English text to stems (Snowball-style stemmers) and synonyms;
* ``match`` - needs -> offerings: ranking with reasons;
* ``workdays`` - Swedish public holidays and working-day arithmetic;
* ``inquiries`` - needs, routed inquiries, answers, overdue escalation, notifications, the
  agenda figures;
* ``feasibility`` - site feasibility as an inquiry type (form, site estimates, the collated
  answer, set-up milestones);
* ``testbeds`` - testbeds' capacity as bookable slots, booking requests with confirmation;
* ``service`` - ``Ecosystem``: the operations ``platform.Brygga.ecosystem`` exposes.

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.ecosystem`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.ecosystem.models import Entry, Inquiry, InquiryRecipient, Need

__all__ = ["Entry", "Inquiry", "InquiryRecipient", "Need"]

__getattr__ = lazy_exports(
    __name__,
    {"Entry": "models", "Inquiry": "models", "InquiryRecipient": "models", "Need": "models"},
)
