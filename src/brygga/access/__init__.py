"""Health-data access: data requests, access applications, permits, extracts, output checking.

Public modules:

* ``models`` - applications, permits and outputs (operational database);
* ``variables`` - the variables an application may ask for, and the data dictionary;
* ``applications`` - the data access application: draft, submit (with a disclosed
  feasibility count), who may see what (``Actor``);
* ``review`` - the data steward's checklist and decision, the permit, deadlines, the public
  register of permits;
* ``donors`` - who has donated data (the ``donate_data`` consent), read at every use;
* ``people`` - the people of a request or permit (cohort, donors) with their attributes
  (person-level, internal);
* ``statistics`` - data requests: counts by the breakdowns asked for, through the release gate
  or as noisy answers charged to a permit's privacy budget;
* ``extracts`` - record-level extracts of a permit's cohort and variables, pseudonymised with
  the permit's key or anonymised by ``privacy.anonymize``;
* ``checking`` - output checking: automatic checks, a second person's review, release and
  download, each step audited;
* ``views`` - applications, permits and outputs as documents for the CLI, API and pages.

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.access`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.access.applications import Actor
    from brygga.access.models import AccessApplication, AccessOutput, Permit

__all__ = ["AccessApplication", "AccessOutput", "Actor", "Permit"]

__getattr__ = lazy_exports(
    __name__,
    {
        "AccessApplication": "models",
        "AccessOutput": "models",
        "Actor": "applications",
        "Permit": "models",
    },
)
