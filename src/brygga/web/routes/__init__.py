"""One router per area: public (log-in), resident portal, staff (studies), admin, JSON API.

Public modules, each with its ``router``: ``public``, ``resident``, ``staff``, ``admin``, ``api``.
``web/app.py`` includes them; nothing is re-exported here.
"""

__all__: list[str] = []
