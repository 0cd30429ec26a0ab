"""Reading the input CSV as text columns and writing the anonymized CSV.

Every cell is read as a string (no type guessing: "007" stays "007"), with pyarrow's multi-
threaded reader, and each column is dictionary-encoded once into integer codes: everything after
this works on codes, never on strings.
"""

from __future__ import annotations

__all__ = ["Table", "read_table", "write_table"]

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from brygga.errors import InputError, NotFoundError
from brygga.util import atomic_path


@dataclass
class Table:
    path: Path
    separator: str
    columns: list[str]
    data: pa.Table

    @property
    def n_rows(self) -> int:
        return self.data.num_rows

    def encode(self, column: str) -> tuple[np.ndarray, list[str]]:
        """Integer codes (int32, one per row) and the distinct values they stand for."""
        encoded = self.data.column(column).combine_chunks().dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        return codes, encoded.dictionary.to_pylist()

    def line_of_row(self, row: int) -> int:
        """The 1-based line of the file where data row ``row`` (0-based) starts.

        Only used for error messages, so it re-reads the file rather than keeping line numbers
        for every row; quoted fields spanning lines are counted right.
        """
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=self.separator)
            next(reader)
            line = reader.line_num + 1
            for i, _ in enumerate(reader):
                if i == row:
                    return line
                line = reader.line_num + 1
        return line


def read_table(path: str | Path, separator: str) -> Table:
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"input file {path} does not exist")
    with path.open(newline="", encoding="utf-8") as f:
        try:
            header = next(csv.reader(f, delimiter=separator), None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path} line 1: cannot read the header ({exc})") from None
    if not header:
        raise InputError(f"{path}: the file is empty (a header line is needed)")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise InputError(f"{path} line 1: column {duplicates[0]!r} appears more than once")
    try:
        data = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=separator, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        # Arrow names the row ("Expected 9 columns, got 8: ..."); keep only its first line,
        # which does not quote the row's contents.
        first = str(exc).split(":")[0]
        raise InputError(
            f"{path}: cannot read as CSV with separator {separator!r}: {first}"
        ) from None
    return Table(path, separator, header, data)


def write_table(
    table: Table,
    out: str | Path,
    keep: np.ndarray,
    replaced: dict[str, tuple[np.ndarray, list[str]]],
) -> int:
    """Write the kept rows, with ``replaced[column] = (codes per row, labels)`` substituted.

    Column names, order and separator are the input's. Returns the number of rows written.
    """
    keep_idx = pa.array(np.flatnonzero(keep))
    columns = []
    for name in table.columns:
        if name in replaced:
            codes, labels = replaced[name]
            columns.append(pc.take(pa.array(labels, pa.string()), pa.array(codes[keep])))
        else:
            columns.append(pc.take(table.data.column(name), keep_idx))
    result = pa.table(columns, names=table.columns)
    with atomic_path(out) as tmp:
        # The header goes through the csv module so that it is quoted exactly like the body
        # (only where needed); arrow would quote every name.
        with tmp.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter=table.separator, lineterminator="\n").writerow(table.columns)
        header_bytes = tmp.stat().st_size
        with tmp.open("ab") as f:
            try:  # unquoted, like most inputs; arrow refuses if a value needs quotes
                _write_body(result, f, table.separator, "none")
            except pa.ArrowInvalid:
                f.seek(0, 2)
                f.truncate(header_bytes)
                _write_body(result, f, table.separator, "needed")
    return result.num_rows


def _write_body(data: pa.Table, f: BinaryIO, separator: str, quoting: str) -> None:
    options = pacsv.WriteOptions(include_header=False, delimiter=separator, quoting_style=quoting)
    pacsv.write_csv(data, f, write_options=options)
