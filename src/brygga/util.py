"""Small helpers shared across modules: atomic file writes, lazy re-exports of a package and
modules imported on first use."""

from __future__ import annotations

__all__ = [
    "LazyModule",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "lazy_exports",
    "lazy_module",
]

import importlib
import os
import sys
import tempfile
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    Nothing is left behind if the body raises, so readers never see a half-written file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A package's ``__getattr__`` (PEP 562) for the names it re-exports from its submodules.

    ``exports`` maps each name to the submodule defining it. The submodule is imported when the
    name is first asked for, not on ``import package``: importing a package (which every import
    of one of its modules does) must not load DuckDB, Ibis or SQLAlchemy, and must not create
    import cycles between sibling modules.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    return __getattr__


class LazyModule:
    """A module imported when one of its attributes is first read (``lazy_module``).

    For start-up time only (issue 18): a new ``brygga`` process that answers a question from
    the bitmaps kept on disk must not pay for Ibis, SQLAlchemy or Alembic. The import itself
    is ``importlib.import_module`` (thread-safe under the import lock; import errors surface
    at the first use); the module is then kept, so later reads cost one attribute look-up.
    """

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: types.ModuleType | None = None

    def __getattr__(self, attribute: str) -> object:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> LazyModule:
    """``name`` imported on its first attribute read, for start-up time (see ``LazyModule``)."""
    return LazyModule(name)
