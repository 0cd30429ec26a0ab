"""Every model module, imported so that ``Base.metadata`` (and Alembic) knows every table.

Add a line here when a package gets models of its own.
"""

from brygga import logins as login_models
from brygga.db.base import Base
from brygga.privacy import models as privacy_models

__all__ = ["Base", "login_models", "privacy_models"]
