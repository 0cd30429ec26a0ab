"""Keyed pseudonyms: personnummer -> person_id with HMAC-SHA256.

``person_id = first 8 bytes of HMAC-SHA256(key, canonical personnummer)``, as an unsigned
big-endian integer with the top bit cleared (a positive int63, so it fits ``BIGINT`` and Arrow
int64). Without the key nobody can compute or reverse a pseudonym; with it the same person
always gets the same id, across regions and imports. 0 is never produced in practice (chance
2**-63) and is refused if it is.

The key is a deployment secret, never in code: a file named by ``BRYGGA_PSEUDONYM_KEY_FILE``
(preferred: readable only by the service) or the value of ``BRYGGA_PSEUDONYM_KEY``; at least 32
bytes. Key rotation re-pseudonymizes every region (docs/privacy.md).

The canonical form is the 12-digit ``YYYYMMDDNNNC`` (century resolved, separator dropped), so
``19811218-9876``, ``198112189876`` and ``811218-9876`` give the same id. Samordningsnummer
(day of birth + 60) are accepted. Errors never contain the number (security property 1).
"""

from __future__ import annotations

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MIN_KEY_BYTES",
    "PseudonymKeyError",
    "canonical",
    "key_configured",
    "load_key",
    "permit_pseudonyms",
    "pseudonym",
    "pseudonymize_parts",
    "pseudonyms",
    "pseudonyms_of_canonical",
]

import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from brygga.config import Settings, get_settings, secret
from brygga.errors import InputError

KEY_FILE_ENV = "BRYGGA_PSEUDONYM_KEY_FILE"
KEY_ENV = "BRYGGA_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32
_TOP_BIT_CLEARED = (1 << 63) - 1


class PseudonymKeyError(InputError):
    """No usable pseudonym key is configured."""


def load_key(settings: Settings | None = None) -> bytes:
    """The pseudonym key from ``BRYGGA_PSEUDONYM_KEY_FILE`` or ``BRYGGA_PSEUDONYM_KEY``."""
    settings = settings or get_settings()
    if path := settings.pseudonym_key_file:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise PseudonymKeyError(
                f"{KEY_FILE_ENV}: cannot read the key file {str(path)!r} ({exc.strerror})"
            ) from None
        source = f"the key file {str(path)!r}"
    elif value := secret(settings.pseudonym_key):
        key, source = value.encode("utf-8"), KEY_ENV
    else:
        raise PseudonymKeyError(
            f"no pseudonym key: set {KEY_FILE_ENV} to a file holding a secret of at least "
            f"{MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32 > key`), or {KEY_ENV}"
        )
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{source}: the pseudonym key must be at least {MIN_KEY_BYTES} bytes, not {len(key)}"
        )
    return key


def key_configured(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return bool(settings.pseudonym_key_file or secret(settings.pseudonym_key))


def canonical(personnummer: str, *, where: str = "") -> str:
    """``YYYYMMDDNNNC`` of a valid personnummer or samordningsnummer, else InputError.

    ``where`` (e.g. ``"person.csv line 12"``) is put in the message; the number never is.
    """
    from personnummer import personnummer as pnr

    prefix = f"{where}: " if where else ""
    if not isinstance(personnummer, str) or not personnummer.strip():
        raise InputError(f"{prefix}a personnummer is missing")
    try:
        parsed = pnr.parse(personnummer.strip())
    except Exception:  # the package raises its own exception types; never echo the value
        raise InputError(
            f"{prefix}not a valid personnummer or samordningsnummer (format, date or check digit)"
        ) from None
    return parsed.format(True).replace("-", "").replace("+", "")


def pseudonym(personnummer: str, key: bytes | None = None, *, where: str = "") -> int:
    """The person_id of one personnummer (``key`` default: ``load_key()``)."""
    key = key if key is not None else load_key()
    return _hmac_id(key, canonical(personnummer, where=where))


def _hmac_id(key: bytes, text: str) -> int:
    digest = hmac.new(key, text.encode("ascii"), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big") & _TOP_BIT_CLEARED
    if value == 0:  # 2**-63: refuse rather than emit an id that looks unset
        raise InputError("a pseudonym came out as 0; use another key")
    return value


def pseudonyms(
    numbers: Iterable[str], key: bytes | None = None, *, where: str = "row"
) -> np.ndarray:
    """person_ids (int64) of many personnummer, in order. An invalid one raises InputError
    naming its position (``where`` 1-based), never its value."""
    key = key if key is not None else load_key()
    mac = hmac.new(key, digestmod=hashlib.sha256)  # copied per number: the keyed state is reused
    out: list[int] = []
    for i, number in enumerate(numbers, start=1):
        text = canonical(number, where=f"{where} {i}")
        h = mac.copy()
        h.update(text.encode("ascii"))
        value = int.from_bytes(h.digest()[:8], "big") & _TOP_BIT_CLEARED
        if value == 0:
            raise InputError("a pseudonym came out as 0; use another key")
        out.append(value)
    return np.array(out, dtype=np.int64)


def pseudonyms_of_canonical(texts: Iterable[str], key: bytes) -> np.ndarray:
    """person_ids of numbers already in canonical ``YYYYMMDDNNNC`` form and known to be valid
    (e.g. generated ones): the same HMAC as ``pseudonym`` without re-parsing each number."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    values = []
    for text in texts:
        h = mac.copy()
        h.update(text.encode("ascii"))
        values.append(int.from_bytes(h.digest()[:8], "big") & _TOP_BIT_CLEARED)
    out = np.array(values, dtype=np.int64)
    if (out == 0).any():
        raise InputError("a pseudonym came out as 0; use another key")
    return out


def permit_pseudonyms(person_ids: Iterable[int] | np.ndarray, key: bytes) -> np.ndarray:
    """The ids a region's people get in one recipient's extract: HMAC-SHA256 of the region
    person_id under that permit's own ``key`` (``access``: a random key per permit), so the
    same person has unrelated ids under two permits and recipients cannot link their data;
    only the platform, holding the key, maps them back."""
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"a permit key must be at least {MIN_KEY_BYTES} bytes")
    return pseudonyms_of_canonical((f"person:{int(i)}" for i in person_ids), key)


# --- Pseudonymizing an imported region --------------------------------------------------------


def pseudonymize_parts(con: Any, root: Path, key: bytes, *, label: str = "person.csv") -> int:
    """Replace the export's person_ids by pseudonyms of ``person_source_value`` in every table
    written under ``root`` (a RegionWriter's temporary folder), and blank the numbers.

    ``con`` is a DuckDB connection. Returns the number of people.
    """
    import pyarrow as pa

    from brygga.records import schema

    person = con.sql(
        f"SELECT person_id, person_source_value FROM read_parquet({_glob(root, 'person')})"
    ).to_arrow_table()
    ids = person.column("person_id").to_numpy()
    numbers = person.column("person_source_value").to_pylist()
    new = pseudonyms(numbers, key, where=f"{label}: person row")
    _refuse_duplicates(new, label)
    con.register("pseudonym_map", pa.table({"old_id": ids, "new_id": new}))
    for table in schema.TABLES.values():
        if table.person_column is None or not (root / table.name).is_dir():
            continue
        _rewrite(con, root / table.name, table)
    con.unregister("pseudonym_map")
    return len(new)


def _glob(root: Path, table: str) -> str:
    return "'" + str(root / table / "*.parquet").replace("'", "''") + "'"


def _refuse_duplicates(ids: np.ndarray, label: str) -> None:
    values, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        (i,) = np.flatnonzero(counts > 1)[:1]
        again = np.flatnonzero(ids == values[i])[1]
        raise InputError(
            f"{label}: person rows {first[i] + 1} and {again + 1} have the same personnummer"
        )


def _rewrite(con: Any, folder: Path, table: Any) -> None:
    """Rewrite each Parquet part of one table with pseudonymous ids (sorted as before)."""
    column = table.person_column
    replace = f"m.new_id AS {column}"
    if table.name == "person":  # the numbers themselves never enter the region
        replace += ", NULL::VARCHAR AS person_source_value"
    order = f" ORDER BY {', '.join(table.sort_keys)}" if table.sort_keys else ""
    for part in sorted(folder.glob("*.parquet")):
        source = "'" + str(part).replace("'", "''") + "'"
        orphans = con.execute(
            f"SELECT count(*) FROM read_parquet({source}) t "
            f"ANTI JOIN pseudonym_map m ON t.{column} = m.old_id"
        ).fetchone()[0]
        if orphans:
            raise InputError(
                f"{table.name}: {orphans} rows refer to a person_id that is not in the person "
                "table; they cannot be pseudonymized"
            )
        target = part.with_name(f".{part.name}.tmp")
        con.execute(
            f"COPY (SELECT t.* REPLACE ({replace}) FROM read_parquet({source}) t "
            f"JOIN pseudonym_map m ON t.{column} = m.old_id{order}) "
            f"TO '{str(target).replace(chr(39), chr(39) * 2)}' (FORMAT parquet, COMPRESSION zstd)"
        )
        target.replace(part)
