"""The exception hierarchy, documented in one place.

``BryggaError`` and its subclasses are *user errors*: bad input, a missing file, a refused
request. Their message is shown as it is (no traceback), with exit code 2 on the CLI and a 4xx
status on the web. Any other exception is a bug and is shown with its traceback.

Messages must never contain identifying data (security property 1): name the file, line, field
and the kind of problem, not the value of a personnummer, name or contact detail.
"""

from __future__ import annotations

__all__ = [
    "BryggaError",
    "DocumentError",
    "InputError",
    "MissingExtra",
    "NotFoundError",
    "OutputExistsError",
    "PermissionDenied",
    "RegionError",
]


class BryggaError(Exception):
    """A problem the user can fix. ``http_status`` is used by the web layer."""

    exit_code: int = 2
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(BryggaError):
    """Invalid arguments, configuration or file contents (names file, line and field)."""


class NotFoundError(BryggaError):
    """A file, folder, region or record that does not exist."""

    http_status = 404


class RegionError(BryggaError):
    """A region folder that is missing, incomplete or of another schema version."""


class OutputExistsError(BryggaError):
    """The output location exists and is not empty, and ``--force`` was not given."""

    http_status = 409


class PermissionDenied(BryggaError):
    """The caller may not do this (role, consent or disclosure policy)."""

    http_status = 403


class DocumentError(InputError):
    """A YAML/JSON document (criteria, program, anonymization config...) that cannot be used.

    The message names the source (file), and for each problem its line where known and its
    field path; ``problems`` holds them as ``(field path, line or None, problem)`` so a web
    form can show them beside its field. Made by ``brygga.documents``.
    """

    def __init__(self, message: str, problems: list[tuple[str, int | None, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


class MissingExtra(BryggaError):
    """An optional feature whose packages (a ``pyproject.toml`` extra) are not installed."""

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(f"{feature} needs {module}: pip install 'brygga[{extra}]'")
