"""The message catalogues: complete in both languages, one definition of each key, and every
key the templates and code use is defined."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from brygga import messages
from brygga.registry.models import CONSENT_KINDS
from brygga.studies import funnel, models

SRC = Path(messages.__file__).parent
# t("key", ...) in templates; translate("key", ...) and the error keys in Python.
USE = re.compile(r"""\b(?:t|translate)\(\s*["']([a-z0-9_]+)["']\s*[,)]""")


def _write(root: Path, lang: str, domain: str, pairs: dict[str, str]) -> None:
    d = root / lang / "LC_MESSAGES"
    d.mkdir(parents=True, exist_ok=True)
    body = "".join(f'msgid "{k}"\nmsgstr "{v}"\n\n' for k, v in pairs.items())
    (d / f"{domain}.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n' + body,
        encoding="utf-8",
    )


def test_installed_catalogues_load_and_are_complete() -> None:
    cat = messages.load()
    assert len(cat) > 50
    for key, (sv, en) in cat.items():
        assert sv.strip() and en.strip(), key


def test_every_key_used_in_templates_and_code_is_defined() -> None:
    cat = messages.catalogue()
    used: dict[str, Path] = {}
    for path in [*SRC.rglob("*.html"), *SRC.rglob("*.py")]:
        for key in USE.findall(path.read_text(encoding="utf-8")):
            used.setdefault(key, path)
    assert len(used) > 30  # the scan finds the templates' keys
    missing = {k: str(p.relative_to(SRC)) for k, p in used.items() if k not in cat}
    assert not missing


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("study_status_", models.STUDY_STATES),
        ("phase_", models.PHASES),
        ("invitation_status_", models.INVITATION_STATES),
        ("outcome_", models.OUTCOMES),
        ("funnel_", funnel.STAGES),
        ("org_kind_", models.ORGANIZATION_KINDS),
        ("role_", models.ROLES),
        ("consent_kind_", CONSENT_KINDS),
    ],
)
def test_every_enum_value_shown_on_a_page_has_its_words(prefix: str, values: tuple) -> None:
    """Pages show enums as t(prefix ~ value): a new value without words would show a key."""
    missing = [v for v in values if prefix + v not in messages.catalogue()]
    assert not missing


def test_a_key_missing_in_one_language_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "sv", "web", {"a": "ett", "b": "två"})
    _write(tmp_path, "en", "web", {"a": "one"})
    with pytest.raises(messages.CatalogueError, match="without en text: b"):
        messages.load(tmp_path)


def test_an_empty_translation_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "sv", "web", {"a": "ett"})
    _write(tmp_path, "en", "web", {"a": " "})
    with pytest.raises(messages.CatalogueError, match="no en text"):
        messages.load(tmp_path)


def test_a_key_in_two_domains_is_refused(tmp_path: Path) -> None:
    for lang in ("sv", "en"):
        _write(tmp_path, lang, "web", {"a": "x"})
        _write(tmp_path, lang, "public", {"a": "y"})
    with pytest.raises(messages.CatalogueError, match="also defined"):
        messages.load(tmp_path)


def test_domains_merge(tmp_path: Path) -> None:
    for lang, (x, y) in {"sv": ("ett", "två"), "en": ("one", "two")}.items():
        _write(tmp_path, lang, "web", {"a": x})
        _write(tmp_path, lang, "public", {"b": y})
    assert messages.load(tmp_path) == {"a": ("ett", "one"), "b": ("två", "two")}
    assert messages.translate("portal", "en") == "My pages"
    assert messages.translate("portal", "sv") == "Mina sidor"


def test_formatted_english_messages_are_matched_to_their_templates() -> None:
    """A stored or f-string message finds its template and keeps its values."""
    assert (
        messages.localize("counts 1-7 suppressed, others rounded to the nearest 5", "sv")
        == "antal 1–7 visas inte, övriga avrundas till närmaste 5"
    )
    assert messages.localize("must be at most 300", "sv") == "får vara högst 300"
    assert messages.localize("must be at most 300", "en") == "must be at most 300"
    assert messages.localize("something nobody wrote down", "sv") is None
