"""Organizations, staff, studies, review, matching, invitations and the recruitment funnel.

Public modules:

* ``models`` - organizations, staff, studies, sites, invitations, the outbox;
* ``staff`` - organizations and staff accounts;
* ``registration`` - register, submit, review (approve / reject);
* ``ctgov`` - import ClinicalTrials.gov records;
* ``selfreport`` - what a resident's self-report says about a study's criteria;
* ``volunteers`` - the volunteers who may be invited;
* ``matching`` - matching volunteers to studies, and the invitations it makes;
* ``invitations`` - the invitation lifecycle;
* ``outbox`` - notifications through the outbox;
* ``funnel`` - the recruitment funnel and feasibility on submission (disclosed);
* ``participation`` - a resident's profile, consent or pause change and the rematching it brings;
* ``catalogue`` - the public study catalogue (recruiting studies, search);
* ``plain`` - who can take part, in plain words, from a study's criteria;
* ``seed`` - demo data (organizations, staff, studies, volunteers).

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.studies`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.studies.models import Invitation, Organization, OutboxMessage, StaffAccount, Study

__all__ = ["Invitation", "Organization", "OutboxMessage", "StaffAccount", "Study"]

__getattr__ = lazy_exports(
    __name__,
    {
        "Invitation": "models",
        "Organization": "models",
        "OutboxMessage": "models",
        "StaffAccount": "models",
        "Study": "models",
    },
)
