"""The one loader for YAML and JSON documents: criteria, programs, anonymization configs...

Every configuration document goes through here, so every one gets the same protection and the
same error style:

* **Bounded.** YAML anchors and aliases are refused (a few hundred characters of aliases expand
  to millions of values: a "billion laughs"); nesting deeper than ``MAX_DEPTH`` and documents
  of more than ``MAX_NODES`` values are refused *while* reading, before anything recursive
  (PyYAML's composer, ``json.loads``, pydantic) could exhaust the stack or the memory.
* **One error style.** Problems are a :class:`~brygga.errors.DocumentError` naming the source
  (file), the line (YAML) and the field path, e.g.
  ``criteria.yaml: invalid criteria: include[0].drug.codes (line 3): 'XX' is not a valid ATC code``.
  A missing file is a :class:`~brygga.errors.NotFoundError`.
"""

from __future__ import annotations

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "Document",
    "Explain",
    "describe",
    "field_path",
    "parse_json",
    "parse_text",
    "parse_yaml",
    "problem_text",
    "problems",
    "read_file",
    "validate",
]

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from brygga.errors import DocumentError, NotFoundError

MAX_DEPTH = 50  # nested mappings/lists; criteria nest about 2 levels per group
MAX_NODES = 100_000  # values in one document (a 50,000-character criteria text has < 20,000)

M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a text string (put it in quotes)",
    "list_type": "must be a list",
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "model_type": "must be a mapping of fields",
    "model_attributes_type": "must be a mapping of fields",
    "dict_type": "must be a mapping of fields",
}
# Errors that only say "not of this type": dropped when the same field has a better message
# (a union's other branch explains what is wrong).
_TYPE_ERRORS = {"string_type", "model_type", "model_attributes_type", "dict_type", "list_type"}
_LOC_NOISE = re.compile(r"[\[(,]")  # pydantic's names for union branches: function-after[...]


class _LimitExceeded(Exception):
    def __init__(self, problem: str, mark: Any) -> None:
        self.problem, self.mark = problem, mark


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and counts depth and nodes as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _LimitExceeded(
                "YAML anchors and aliases (&name, *name) are not allowed: write the values out",
                event.start_mark,
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _LimitExceeded(f"more than {MAX_NODES} values (the limit)", event.start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitExceeded(
                f"nested deeper than {MAX_DEPTH} levels (the limit)", event.start_mark
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass(frozen=True)
class Document:
    """Decoded data, where it came from, and (YAML) the node tree that knows the lines."""

    data: Any
    source: str
    node: yaml.Node | None = None

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        """The line of the deepest node on ``path`` (1-based); None without a node tree."""
        node = self.node
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in path:
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                child = node.value[part] if 0 <= part < len(node.value) else None
            if child is None:
                continue  # a union branch or discriminator tag pydantic put in the location
            node, line = child, child.start_mark.line + 1
        return line


def parse_yaml(text: str, source: str) -> Document:
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _LimitExceeded as exc:
        raise DocumentError(f"{source}: line {exc.mark.line + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise DocumentError(f"{source}: {where}invalid YAML ({problem})") from None
    finally:
        loader.dispose()
    return Document(data, source, node)


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def parse_json(text: str, source: str, *, count_nodes: bool = True) -> Document:
    """Decode JSON within the limits; ``count_nodes=False`` for data files (many records),
    whose size their reader bounds, rather than configuration."""
    # json.loads recurses once per level: check the depth first (strings skipped) so deep
    # input is an error message, not a RecursionError.
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                raise DocumentError(
                    f"{source}: line {line}: nested deeper than {MAX_DEPTH} levels (the limit)"
                )
        elif bracket in "]}":
            depth -= 1
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{source}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if count_nodes and _count(data) > MAX_NODES:
        raise DocumentError(f"{source}: more than {MAX_NODES} values (the limit)")
    return Document(data, source)


def _count(data: Any) -> int:
    count, stack = 0, [data]
    while stack and count <= MAX_NODES:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def parse_text(text: str, source: str, *, json_format: bool = False) -> Document:
    """Decode YAML (default) or JSON text, within the limits."""
    return parse_json(text, source) if json_format else parse_yaml(text, source)


def read_file(path: str | Path, what: str) -> Document:
    """Read a YAML or JSON (``.json``) file; ``what`` names it in the missing-file error."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{what} file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{path}: not UTF-8 text") from None
    return parse_text(text, str(path), json_format=path.suffix.lower() == ".json")


def field_path(loc: tuple[Any, ...], data: Any, branches: frozenset[str] = frozenset()) -> str:
    """A pydantic error location as the user wrote it: ``include[0].drug.codes``.

    The location is walked along the data, so the names pydantic adds for union branches and
    discriminator tags (``include.0.drug.drug``) drop out; a part not in the data is kept only
    at the end (a missing or unknown field), unless it is one of ``branches``.
    """
    out = ""
    for i, part in enumerate(loc):
        if i and part == loc[i - 1]:
            continue  # a discriminator tag repeats its key: include.0.drug.drug
        if isinstance(part, int):
            out += f"[{part}]"
            data = data[part] if isinstance(data, list) and 0 <= part < len(data) else None
        elif isinstance(data, dict) and part in data:
            out += f".{part}" if out else str(part)
            data = data[part]
        elif i == len(loc) - 1 and part not in branches and not _LOC_NOISE.search(str(part)):
            out += f".{part}" if out else str(part)
    return out


def problem_text(error: Any) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">",
              "less_than": "<"}[kind]  # fmt: skip
        bound = next(iter(error["ctx"].values()))
        return f"must be {op} {bound}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"has more than {error['ctx']['max_length']} items (the limit)"
    if kind == "string_too_long":
        return f"is longer than {error['ctx']['max_length']} characters (the limit)"
    return error["msg"][0].lower() + error["msg"][1:]


Explain = Callable[[str, Any], str | None]


def problems(
    exc: ValidationError,
    document: Document,
    branches: frozenset[str] = frozenset(),
    explain: Explain | None = None,
) -> list[tuple[str, int | None, str]]:
    """(field path, line, problem) for each error; ``explain(path, error)`` may reword one."""
    by_path: dict[str, list[Any]] = {}
    lines: dict[str, int | None] = {}
    for error in exc.errors():
        path = field_path(tuple(error["loc"]), document.data, branches)
        by_path.setdefault(path, []).append(error)
        lines.setdefault(path, document.line_of(tuple(error["loc"])))
    out = []
    for path, errors in by_path.items():
        errors = [e for e in errors if e["type"] not in _TYPE_ERRORS] or errors
        for error in errors:
            text = (explain(path, error) if explain else None) or problem_text(error)
            out.append((path, lines[path], text))
    return out


def describe(problem: tuple[str, int | None, str]) -> str:
    path, line, text = problem
    where = f"{path} (line {line})" if path and line else path or (f"line {line}" if line else "")
    return f"{where}: {text}" if where else text


def validate(
    model: type[M],
    document: Document,
    what: str,
    *,
    branches: frozenset[str] = frozenset(),
    explain: Explain | None = None,
) -> M:
    """Validate a document with a pydantic model; one DocumentError names every problem."""
    if not isinstance(document.data, dict):
        raise DocumentError(f"{document.source}: {what} must be a mapping of fields")
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        found = problems(exc, document, branches, explain)
        lines = [describe(p) for p in found]
        header = f"{document.source}: invalid {what}"
        message = header + ("\n  " if len(lines) > 1 else ": ") + "\n  ".join(lines)
        raise DocumentError(message, found) from None
