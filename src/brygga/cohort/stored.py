"""What ``brygga optimize`` and earlier questions left on disk for a new process: the population
arrays and the kept rule bitmaps of a region's optimized database (the DuckDB engine's cold start).

A new process (``brygga feasibility``, or the first question after a server starts) would
otherwise ask DuckDB for the population on the index date and for every rule's person set, and
pay for opening the database and loading Ibis' compiler first. With the arrays
(``records/optimize.py``, ``<database>.arrays/``, memory-mapped):

* the **person index** (person ids by dense index) is read, not queried;
* the **population on any index date** is NumPy over the persons' birth date, observation period,
  death date, sex concept and municipality: the definition of ``population.py`` (observed on the
  day, no death on or before it; completed years with a missing month or day counted as the
  first, ``population.completed_years``), restated on arrays. The agreement tests hold the two
  together on every engine;
* each **rule bitmap** computed once on this database is written to ``bitmaps/`` (packed bits,
  one small file each) and read back by any later process asking the same rule on the same day;
  so are an ``entry``'s entries (each entered person's dense index and entry date,
  ``_entrykeep.py``) and its rules' bitmaps, keyed by the entry definition.

Only when a question needs a rule that no process has computed yet does the engine open its
DuckDB connection (``engines.duckdb_engine`` opens it lazily).

Nothing here can be stale: the folder belongs to one database file, whose name is a hash of
the region's manifest and table files (``optimize.stamp``); a changed region has another
database, and the old folder is removed by the next build. The bitmaps' file names also carry
a hash of the engine's source (``SEMANTICS``): a Brygga whose rules mean something else never
reads them. Person-level like the tables beside them; they never leave the region folder.
``BRYGGA_COHORT_CACHE=false`` turns all of it off (the engine then asks DuckDB everything).
"""

from __future__ import annotations

__all__ = ["SEMANTICS", "StoredSets", "numpy_column", "open_stored"]

import hashlib
import json
import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from brygga.cohort import population as population_module
from brygga.cohort.codearrays import readahead
from brygga.records import codes as codebook
from brygga.records import optimize

# The modules that decide what a rule's person set is (read as files: ``bitmaps`` imports
# the engines, which import this module).
_SOURCES = (
    "criteria.py",
    "compile.py",
    "population.py",
    "bitmaps.py",
    "_entrykeep.py",
    "stored.py",
    "codearrays.py",
)


def _semantics() -> str:
    """A hash of the engine's source: kept bitmaps from another version are never read."""
    digest = hashlib.sha256(f"layout={optimize.LAYOUT}".encode())
    for name in _SOURCES:
        digest.update(Path(__file__).with_name(name).read_bytes())
    return digest.hexdigest()[:12]


SEMANTICS = _semantics()
# The columns ``population`` reads, whole.
_POPULATION_COLUMNS = ("start", "stop", "death", "born", "gender", "municipality")
MAX_FILES = 4096  # kept rule bitmaps per database (400 kB each at 3.3 million people)


class StoredSets:
    """The arrays of one optimized database, and its kept rule bitmaps. ``hits``, ``misses``
    and ``writes`` count bitmap look-ups (the tests prove the cache is used with them)."""

    def __init__(self, folder: Path, semantics: str) -> None:
        self.folder = folder
        self.semantics = semantics
        self.bitmaps = folder / "bitmaps"
        self.lock = threading.Lock()
        self.hits = self.misses = self.writes = self.populations = 0
        self._arrays: dict[str, np.ndarray] = {}
        self.municipalities: list[str] = json.loads((folder / "municipalities.json").read_text())

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.load(self.folder / f"{name}.npy", mmap_mode="r")
        return self._arrays[name]

    def ids(self) -> np.ndarray:
        return np.asarray(self.array("person_id"), dtype=np.int64)

    def record_keys(self) -> np.ndarray | None:
        """Every person's record key by dense index (NaN: none); None when the region has
        no ``person_key`` table."""
        if not (self.folder / "record_key.npy").is_file():
            return None
        return np.asarray(self.array("record_key"))

    def read_ahead(self) -> None:
        """Ask the kernel to read the population's columns now (``readahead``): a cold disk
        streams them instead of faulting them in 8 MB at a time."""
        for name in _POPULATION_COLUMNS:
            column = self.array(name)
            readahead(column, [(0, len(column))])

    def population(self, index_date: date) -> dict[str, Any]:
        """The arguments of ``bitmaps.Population.from_columns``: what ``Compiler.population()``
        gives, over everyone by dense index: who is observed on the day with no death on or
        before it (``alive``); every person's completed years, sex (from the gender concept)
        and municipality. Whole columns, not the people gathered and spread back: at 3.3
        million people that took four times as long (measured)."""
        self.populations += 1
        self.read_ahead()
        day = population_module.ymd(index_date)
        alive = self.array("start") <= day
        alive &= self.array("stop") >= day
        alive &= self.array("death") > day
        # ``completed_years`` in integers (the same floor: YYYYMMDD numbers, exact).
        age = np.int32(day) - self.array("born")
        age //= np.int32(10000)
        gender = np.asarray(self.array("gender"))
        return {
            "alive": alive,
            "age": age.astype(np.int32, copy=False),
            "gender": gender,
            "municipality": np.asarray(self.array("municipality")),
            "municipalities": self.municipalities,
            **self._sexes(gender),
        }

    @staticmethod
    def _sexes(gender: np.ndarray) -> dict[str, Any]:
        """Sex codes into the sorted list of sexes (``unknown`` for another gender concept)."""
        sexes = sorted(set(codebook.SEX_OF_GENDER.values()) | {"unknown"})
        unknown = sexes.index("unknown")
        sex = np.full(len(gender), unknown, dtype=np.int32)
        for concept, name in codebook.SEX_OF_GENDER.items():
            # Arithmetic, not a masked assignment: a third of the time over millions.
            sex += (gender == concept).view(np.int8) * np.int32(sexes.index(name) - unknown)
        return {"sex": sex, "sexes": sexes}

    def entered(self, at: np.ndarray, day: np.ndarray) -> dict[str, Any]:
        """``population`` at each person's own entry date (``population.entered``): of the
        people ``at`` (dense indexes, ascending) with their entry dates ``day`` (YYYYMMDD), those
        observed on it whose death, if any, is not before it."""
        self.populations += 1
        start = np.asarray(self.array("start"))[at]
        stop = np.asarray(self.array("stop"))[at]
        death = np.asarray(self.array("death"))[at]
        keep = (start <= day) & (stop >= day) & (death >= day)
        return self._people(at[keep], day[keep])

    def _people(self, at: np.ndarray, day: int | np.ndarray) -> dict[str, Any]:
        """The arguments of ``Population.from_arrays`` for the people ``at``, aged on ``day``
        (one for all, or one each)."""
        born = np.asarray(self.array("born"))[at]
        age = population_module.completed_years(day, born).astype(np.int32)
        gender = np.asarray(self.array("gender"))[at].astype(np.int64)
        return {
            "at": at.astype(np.int64),
            "age": age,
            "age_band": (age // 10) * 10,
            "gender": gender,
            **self._sexes(gender),
            "municipality": np.asarray(self.array("municipality"))[at].astype(np.int32),
            "municipalities": self.municipalities,
            "size": len(self.array("person_id")),
        }

    def _file(self, key: tuple[date | str, str]) -> Path:
        # An index date, or an entry definition's key (``_entrykeep.entry_key``).
        at, rule = key
        prefix = at.isoformat() if isinstance(at, date) else at
        return self.bitmaps / f"{prefix}-{self.semantics}-{rule}.bits"

    def has(self, key: tuple[date | str, str]) -> bool:
        """Whether a rule's bitmap is kept on disk (without reading it)."""
        return self._file(key).is_file()

    def bitmap(self, key: tuple[date | str, str], nbytes: int) -> np.ndarray | None:
        """A rule's kept bitmap (packed bits of ``nbytes``), or None."""
        path = self._file(key)
        try:
            bits = np.fromfile(path, dtype=np.uint8)
        except OSError:
            with self.lock:
                self.misses += 1
            return None
        if len(bits) != nbytes:  # never expected (the file name holds the stamp); not trusted
            with self.lock:
                self.misses += 1
            return None
        with self.lock:
            self.hits += 1
        return bits

    def _entries_file(self, key: str) -> Path:
        return self.bitmaps / f"{key}-{self.semantics}.entries.npy"

    def entries(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """An entry definition's kept entries (``_entrykeep.py``): each entered person's dense
        index (ascending) and entry date (YYYYMMDD); None when no process kept them."""
        try:
            both = np.load(self._entries_file(key))
        except (OSError, ValueError):
            return None
        if both.ndim != 2 or len(both) != 2:  # never expected; not trusted
            return None
        return both[0].astype(np.int64), both[1]

    def keep_entries(self, key: str, at: np.ndarray, day: np.ndarray) -> None:
        """Write an entry definition's entries for later processes, as ``keep`` does."""
        path = self._entries_file(key)
        try:
            self.bitmaps.mkdir(exist_ok=True)
            if len(os.listdir(self.bitmaps)) >= MAX_FILES:
                return
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as out:
                np.save(out, np.stack([at.astype(np.int32), day.astype(np.int32)]))
            os.replace(tmp, path)
        except OSError:
            return

    def keep(self, key: tuple[date | str, str], bits: np.ndarray) -> None:
        """Write a computed rule bitmap for later processes: atomically, and quietly not at
        all on a read-only region folder or when ``MAX_FILES`` are kept already."""
        path = self._file(key)
        try:
            self.bitmaps.mkdir(exist_ok=True)
            if len(os.listdir(self.bitmaps)) >= MAX_FILES:
                return
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            bits.tofile(tmp)
            os.replace(tmp, path)
        except OSError:
            return
        with self.lock:
            self.writes += 1


_FIXED = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def numpy_column(table: pa.Table, name: str) -> np.ndarray:
    """A column without nulls as NumPy, read from its buffers. PyArrow's own ``to_numpy``
    imports pandas (a second of a new process under load, measured), which the engine does not
    otherwise need; any other column takes that path."""
    column = table.column(name)
    parts = []
    for chunk in column.chunks:
        buffers = chunk.buffers()
        if chunk.null_count or len(buffers) != 2:
            return column.to_numpy()
        if chunk.type == pa.bool_():
            bits = np.frombuffer(buffers[1], dtype=np.uint8)
            mask = np.unpackbits(bits, count=chunk.offset + len(chunk), bitorder="little")
            parts.append(mask[chunk.offset :].astype(bool))
        elif chunk.type in _FIXED:
            dtype = np.dtype(_FIXED[chunk.type])
            data = np.frombuffer(buffers[1], dtype=dtype, count=chunk.offset + len(chunk))
            parts.append(data[chunk.offset :])
        else:
            return column.to_numpy()
    if not parts:
        return column.to_numpy()
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def open_stored(database: Path | None, semantics: str) -> StoredSets | None:
    """The arrays of ``database`` (an optimized database file), when ``brygga optimize`` wrote
    them completely for this layout; else None."""
    if database is None:
        return None
    folder = optimize.arrays_path(database)
    try:
        complete = (folder / "complete").read_text().strip()
    except OSError:
        return None
    if complete != str(optimize.LAYOUT):
        return None
    return StoredSets(folder, semantics)
