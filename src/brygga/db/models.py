"""Every model module, imported so that ``Base.metadata`` (and Alembic) knows every table.

Add a line here when a package gets models of its own; ``tests/unit/test_migrations.py``
fails when a table is missing here or when the migrations and the models disagree.

This module is the one deliberate upward import of ``db`` (the layer contract in
``pyproject.toml`` ignores ``brygga.db.models -> brygga.*.models`` by name): nothing in ``db``
imports it at import time, only ``db/migrations/env.py`` when Alembic runs. The model modules
import only ``brygga.db`` (``Base``), so importing this module first cannot start a cycle.
"""

from brygga import logins as login_models
from brygga.access import models as access_models
from brygga.agenda import models as agenda_models
from brygga.db.base import Base
from brygga.ecosystem import models as ecosystem_models
from brygga.privacy import models as privacy_models
from brygga.registry import models as registry_models
from brygga.studies import models as studies_models

__all__ = [
    "Base",
    "access_models",
    "agenda_models",
    "ecosystem_models",
    "login_models",
    "privacy_models",
    "registry_models",
    "studies_models",
]
