"""The web front door: FastAPI app factory (``app.create_app``), one router per area.

Public modules:

* ``app`` - the app factory, middleware, error handlers;
* ``server`` - uvicorn, one or more workers;
* ``deps`` - what routes use: the platform, the disclosure policy, sessions, ``render``;
* ``security`` - sessions, roles, CSRF, client address behind trusted proxies;
* ``auth`` - OIDC and the demo provider;
* ``i18n`` - the message catalogue (Swedish first, English);
* ``routes`` - one router per area.

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.web`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.web.app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]

__getattr__ = lazy_exports(__name__, {"WebConfig": "app", "create_app": "app"})
