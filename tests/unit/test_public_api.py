"""Every package and public module states its public names (``__all__``), every listed name
exists, a package's underscore modules are imported only inside it, and importing a package loads
none of its heavy modules (its re-exports are lazy: ``brygga.util.lazy_exports``)."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = SRC / "brygga"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    # Alembic's migrations are scripts run by Alembic (env.py runs on import), not an API.
    return sorted(p for p in ROOT.rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts)


def is_public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split(".")[1:])


MODULES = {module_name(p) for p in source_files()}
PUBLIC = sorted(m for m in MODULES if is_public(m))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_module_and_package_states_its_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = vars(module).get("__all__")
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert all(isinstance(n, str) for n in exported), name
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"


def imported_modules(source: str, here: str, *, is_package: bool = False) -> set[str]:
    """Every ``brygga`` module that module ``here`` (text ``source``) imports, also inside
    functions, absolute or relative."""
    package = here if is_package else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from brygga.synth import _params`` imports a module by its attribute name.
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return {m for m in found if m == "brygga" or m.startswith("brygga.")}


def private_owner(module: str) -> str | None:
    """The package whose private module ``module`` is (or lies in), None for a public one."""
    parts = module.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def outside_imports(source: str, here: str, *, is_package: bool = False) -> list[str]:
    found = []
    for module in sorted(imported_modules(source, here, is_package=is_package)):
        owner = private_owner(module)
        if owner and here != owner and not here.startswith(owner + "."):
            found.append(f"{here} imports {module}")
    return found


def test_underscore_modules_are_imported_only_inside_their_package() -> None:
    outside = [
        line
        for path in source_files()
        for line in outside_imports(
            path.read_text(encoding="utf-8"),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
    ]
    assert not outside, outside


def test_the_private_module_check_can_fail() -> None:
    source = (
        "from brygga.synth import _params\n"
        "from brygga.prevention._charts import bar_chart\n"
        "from .scores._common import build_result\n"
        "from brygga.db.session import _writer_lock\n"  # a private name, not a module
        "from .generator import generate\n"
    )
    assert outside_imports(source, "brygga.prevention.equity") == [
        "brygga.prevention.equity imports brygga.prevention.scores._common",
        "brygga.prevention.equity imports brygga.synth._params",
    ]
    # The same imports are allowed inside the owning package.
    assert outside_imports("from brygga.synth import _params\n", "brygga.synth.care") == []
    assert (
        outside_imports("from . import _common\n", "brygga.prevention.scores", is_package=True)
        == []
    )
    assert private_owner("brygga.prevention.scores._common") == "brygga.prevention.scores"
    assert private_owner("brygga.synth.generator") is None


PACKAGES = [
    "records",
    "privacy",
    "cohort",
    "registry",
    "ingest",
    "studies",
    "prevention",
    "synth",
    "web",
]
HEAVY = ["duckdb", "ibis", "sqlalchemy", "pyarrow", "numpy", "polars", "fastapi", "pyspark"]


def test_importing_a_package_loads_none_of_its_modules() -> None:
    code = (
        "import sys\n"
        f"for p in {PACKAGES!r}: __import__('brygga.' + p)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{[*HEAVY, 'brygga']!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}  # this checkout's sources, not an installed copy
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    ).stdout.split()
    loaded = {m for m in out if not m.startswith("brygga")}
    assert not loaded, f"importing the packages loaded {sorted(loaded)}"
    brygga = {m for m in out if m.startswith("brygga")}
    assert brygga == {"brygga", "brygga.util", *(f"brygga.{p}" for p in PACKAGES)}


def test_importing_the_database_package_loads_no_sqlalchemy() -> None:
    """``brygga.db`` imports its modules (``from brygga.db import session`` is the function),
    but SQLAlchemy and Alembic only load when a session, an engine or ``Base`` is asked for."""
    code = (
        "import sys\n"
        "import brygga.db\n"
        "from brygga.db import database_url, session, write_session\n"
        "assert callable(session) and callable(write_session) and database_url\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'alembic'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        env=env,
    ).stdout.split()  # fmt: skip
    assert out == []


def test_a_lazy_name_is_the_submodule_s_object() -> None:
    import brygga.cohort
    from brygga.cohort import criteria

    assert brygga.cohort.parse_criteria is criteria.parse_criteria
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = brygga.cohort.nothing_here  # type: ignore[attr-defined]
