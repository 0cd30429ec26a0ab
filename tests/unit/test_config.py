"""The one settings tree: nested sections from the environment, errors naming the variable,
and no other module reading the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from brygga.config import get_settings
from brygga.errors import InputError

SRC = Path(__file__).resolve().parents[2] / "src" / "brygga"


def test_sections_keep_their_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "cell-key")
    monkeypatch.setenv("BRYGGA_DISCLOSURE_CKM_MAX_PERTURBATION", "3")
    monkeypatch.setenv("BRYGGA_NOISE_EPSILON", "0.25")
    monkeypatch.setenv("BRYGGA_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    monkeypatch.setenv("BRYGGA_PSEUDONYM_KEY_FILE", "/run/secrets/key")
    monkeypatch.setenv("BRYGGA_DATA_DIR", "/srv/brygga")
    s = get_settings()
    assert s.disclosure.method == "cell-key" and s.disclosure.ckm_max_perturbation == 3
    assert s.noise.epsilon == 0.25
    assert s.spark.conf == {"spark.executor.memory": "8g"}
    assert s.pseudonym_key_file == Path("/run/secrets/key")
    assert s.data_dir == Path("/srv/brygga")


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRYGGA_NOISE_EPSILON", "-1")
    with pytest.raises(InputError, match="BRYGGA_NOISE_EPSILON"):
        get_settings()
    monkeypatch.delenv("BRYGGA_NOISE_EPSILON")
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "cell-key")
    monkeypatch.setenv("BRYGGA_DISCLOSURE_THRESHOLD", "2")
    with pytest.raises(InputError, match=r"disclosure settings: BRYGGA_DISCLOSURE_\*"):
        get_settings()


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRYGGA_SECRET_KEY", "do-not-print-me")
    assert "do-not-print-me" not in repr(get_settings())


def _environment_reads(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for a in node.names if a.name in ("environ", "getenv")]
    return lines


def test_only_config_reads_the_environment() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "config.py" and path.parent == SRC:
            continue
        for line in _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(SRC.parent)}:{line}")
    assert offenders == [], "read settings through brygga.config, not the environment"


def test_the_walk_finds_environment_reads() -> None:
    # The check above is only worth something if it sees the usual spellings.
    code = "import os\nfrom os import getenv\na = os.environ['X']\nb = os.getenv('Y')\n"
    assert _environment_reads(ast.parse(code)) == [2, 3, 4]
