"""The web's view of the message catalogues (``brygga.messages``) and its language choice.

The language comes from the ``lang`` cookie (set by ``/lang/{code}``), else Swedish.
"""

from __future__ import annotations

from brygga.messages import LANGUAGES, catalogue, translate, translate_error

__all__ = ["LANGUAGES", "catalogue", "translate", "translate_error"]
