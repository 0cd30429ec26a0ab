"""Rendered pages kept until their data changes: public pages, and each resident's own pages.

The study catalogue and the study pages are the busiest pages of the e-service and the same
for every visitor who is not logged in: rendering them again for each visitor cost 2-3 ms of
the server's CPU, which at 50 concurrent users queues every request behind the others. A page
is kept under a key that holds everything it depends on: the path and query, the language and
the version of its data (for the catalogue, the approved studies' count and latest review
time, one aggregate query; approved studies cannot be edited). A changed version is a new
key; old keys fall out of the bounded LRU.

Each visitor's page carries their own CSRF token (in ``hx-headers`` and any form): the page
is kept with a random sentinel in its place and each copy served gets the visitor's token.
Logged-in visitors are never served a kept public page (theirs shows who they are). A
resident's own pages are kept in a cache of their own (``app.state.own_pages``), under keys
that hold the resident and their page version (``web.deps.render_own``).
"""

from __future__ import annotations

__all__ = ["PageCache"]

import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable


class PageCache:
    """A bounded LRU of rendered HTML bodies, safe to share between the server's threads."""

    def __init__(self, entries: int = 512, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.sentinel = "csrf-" + secrets.token_hex(16)
        self._entries = entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, csrf: str) -> str | None:
        """The kept page for ``key`` with the visitor's CSRF token in it, or None."""
        with self._lock:
            body = self._pages.get(key)
            if body is None:
                return None
            self._pages.move_to_end(key)
        return body.replace(self.sentinel, csrf)

    def put(self, key: Hashable, body: str) -> None:
        """Keep a page rendered with ``self.sentinel`` as its CSRF token."""
        if len(body) > self._max_bytes // 16:  # one page never crowds out the others
            return
        with self._lock:
            old = self._pages.pop(key, None)
            self._bytes -= len(old) if old is not None else 0
            self._pages[key] = body
            self._bytes += len(body)
            while len(self._pages) > self._entries or self._bytes > self._max_bytes:
                _, dropped = self._pages.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._pages)
