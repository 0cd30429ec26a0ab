"""Residents: identity, profile, preferences, consents, pause, withdrawal and deletion.

Public modules:

* ``models`` - resident, profile, consents and their history;
* ``service`` - load identities, register, profile, pause, delete, download my data;
* ``consent`` - the three consents, versioned texts, withdrawal of open invitations;
* ``catalogue`` - conditions and medicines a resident can report, by name;
* ``geography`` - travel distances between municipalities;
* ``areas`` - research areas, shared by residents' preferences and studies.

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.registry`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.registry.areas import AREAS
    from brygga.registry.models import Consent, Profile, Resident

__all__ = ["AREAS", "Consent", "Profile", "Resident"]

__getattr__ = lazy_exports(
    __name__, {"Consent": "models", "Profile": "models", "Resident": "models", "AREAS": "areas"}
)
