"""The message catalogues: every string a person reads, Swedish first, English complete.

The catalogues are gettext ``.po`` files in ``brygga/locale/{sv,en}/LC_MESSAGES/``, one domain
per part of the product (``web.po``, ``public.po``, ...), read with Babel. Message ids are
symbolic keys (``"portal"``, ``"status_approved"``) rather than English source text, because
Swedish is the first language and neither language is the other's source; translators see both
files side by side. Every key must exist, non-empty, in both languages and in exactly one
domain: ``load`` refuses anything else (tests/unit/test_messages.py), so a page never shows a
key or falls back to the other language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from brygga.errors import BryggaError

__all__ = [
    "LANGUAGES",
    "CatalogueError",
    "catalogue",
    "format_number",
    "load",
    "localize",
    "translate",
    "translate_error",
]

LANGUAGES = ("sv", "en")
LOCALE_DIR = Path(__file__).parent / "locale"


class CatalogueError(BryggaError):
    """A message catalogue is incomplete or contradicts another (a bug in the repository)."""


def load(locale_dir: Path = LOCALE_DIR) -> dict[str, tuple[str, str]]:
    """Every key with its (Swedish, English) text, from every domain's ``.po`` files."""
    texts: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    origin: dict[tuple[str, str], str] = {}
    for lang in LANGUAGES:
        for path in sorted((locale_dir / lang / "LC_MESSAGES").glob("*.po")):
            with path.open("rb") as fh:
                cat = read_po(fh, locale=lang)
            for message in cat:
                key = message.id
                if not key:
                    continue  # the header
                if not isinstance(key, str) or not isinstance(message.string, str):
                    raise CatalogueError(f"{path}: plural forms are not used ({key!r})")
                if (lang, key) in origin:
                    raise CatalogueError(
                        f"{path}: key {key!r} is also defined in {origin[(lang, key)]}"
                    )
                if not message.string.strip():
                    raise CatalogueError(f"{path}: key {key!r} has no {lang} text")
                origin[(lang, key)] = path.name
                texts[lang][key] = message.string
    sv, en = texts["sv"], texts["en"]
    for missing, have, lang in ((set(sv) - set(en), sv, "en"), (set(en) - set(sv), en, "sv")):
        if missing:
            raise CatalogueError(f"keys without {lang} text: {', '.join(sorted(missing))}")
        del have  # only the key sets are compared
    for key in sv:
        if origin[("sv", key)] != origin[("en", key)]:
            raise CatalogueError(f"key {key!r} is in different domains in sv and en")
    return {key: (sv[key], en[key]) for key in sorted(sv)}


@cache
def catalogue() -> Mapping[str, tuple[str, str]]:
    """The installed catalogues, read once per process."""
    return load()


def format_number(value: float | int, lang: str) -> str:
    """A number as the reader writes it: 1 234,5 in Swedish, 1,234.5 in English."""
    return format_decimal(value, locale="sv_SE" if lang == "sv" else "en_GB")


def translate(key: str, lang: str) -> str:
    """The text of ``key`` in ``lang`` (Swedish unless ``lang`` is ``"en"``).

    An unknown key is returned as it is, so a page never breaks over a translation; the test
    of the catalogues fails on any key the code or templates use that is not defined.
    """
    pair = catalogue().get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def translate_error(exc: Exception, lang: str) -> str | None:
    """The catalogue's text for an error that names its message (``key`` and ``params``, as
    ``privacy.questions.QuestionRefused`` does), or None."""
    key, params = getattr(exc, "key", None), getattr(exc, "params", None)
    if not isinstance(key, str) or key not in catalogue() or not isinstance(params, dict):
        return None
    return translate(key, lang).format(**params)


def localize(text: str, lang: str) -> str | None:
    """An English source message (a field or error message, ``forms.FieldMessage`` or plain
    text) in ``lang``, or None when the catalogues do not have it.

    The services raise their messages in English (the JSON API and the CLI show them as they
    are); the ``errors`` domain holds their Swedish text with the English source as the
    message id, gettext's classic form, and a ``FieldMessage`` brings its values along.
    """
    template = getattr(text, "template", text)
    params = getattr(text, "params", None) or {}
    if template not in catalogue():
        # A message already formatted (stored, or raised as an f-string) is matched against
        # the catalogue's templates: "counts 1-7 suppressed" fits "counts 1-{max} suppressed".
        for pattern, key in _patterns():
            match = pattern.fullmatch(text)
            if match:
                return translate(key, lang).format(**match.groupdict())
        return None
    return translate(template, lang).format(**params)


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    out = []
    for key in catalogue():
        if "{" not in key or " " not in key:
            continue  # symbolic keys have no spaces; only English source texts are matched
        parts = re.split(r"\{(\w+)\}", key)
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        out.append((re.compile(regex, re.DOTALL), key))
    # Longer templates first: the most specific one wins.
    return tuple(sorted(out, key=lambda p: -len(p[1])))
