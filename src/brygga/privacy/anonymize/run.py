"""``anonymize``: config + CSV in, anonymized CSV out. Checks inputs, builds the problem, searches,
writes. Nothing is written unless a transformation satisfying every criterion was found."""

from __future__ import annotations

__all__ = ["MAX_LATTICE", "Result", "anonymize"]

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brygga.errors import InputError
from brygga.privacy.anonymize.config import AnonymizeConfig, HierarchySpec, Sensitive, load_config
from brygga.privacy.anonymize.engine import Node, Problem, SensitiveModel, evaluate
from brygga.privacy.anonymize.hierarchy import (
    Hierarchy,
    Unmapped,
    arx_label_rows,
    auto_label_rows,
    find_hierarchy_file,
    from_label_rows,
    read_arx_file,
)
from brygga.privacy.anonymize.metrics import Metrics, measure
from brygga.privacy.anonymize.search import Search
from brygga.privacy.anonymize.table import Table, read_table, write_table

MAX_LATTICE = 5_000_000  # nodes; the search keeps a status byte per node


@dataclass
class Result:
    input: Path
    output: Path | None
    config: AnonymizeConfig
    records: int
    transformation: dict[str, dict[str, int]]
    metrics: Metrics
    max_suppressed: int
    lattice_size: int
    evaluated: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def suppressed(self) -> int:
        return self.metrics.suppressed

    def summary(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "input": str(self.input),
            "output": str(self.output) if self.output else None,
            "records": self.records,
            "written": self.records - self.suppressed,
            "suppressed": self.suppressed,
            "suppression_limit": {
                "fraction": cfg.suppression_limit,
                "records": self.max_suppressed,
            },
            "criteria": {
                "k": cfg.k,
                "sensitive": [s.model_dump(exclude_none=True) for s in cfg.sensitive],
            },
            "metric": cfg.metric,
            "transformation": self.transformation,
            "metrics": self.metrics.as_dict(),
            "search": {"lattice_nodes": self.lattice_size, "evaluated_nodes": self.evaluated},
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


def anonymize(
    input_csv: str | Path,
    config: str | Path | AnonymizeConfig,
    out: str | Path | None,
    hierarchies: str | Path | None = None,
    config_dir: str | Path | None = None,
) -> Result:
    """Anonymize ``input_csv`` as ``config`` says; write ``out`` unless it is None."""
    t0 = time.perf_counter()
    if isinstance(config, AnonymizeConfig):
        cfg, source, base = config, "config", Path(config_dir or ".")
    else:
        cfg, source, base = load_config(config), str(config), Path(config).parent
    if hierarchies is not None:
        base = Path(hierarchies)
    input_csv = Path(input_csv)
    if out is not None and Path(out).resolve() == input_csv.resolve():
        raise InputError("the output file must not be the input file")

    table = read_table(input_csv, cfg.separator)
    _check_columns(cfg, table, source)
    n = table.n_rows
    if n == 0:
        raise InputError(f"{input_csv}: no records after the header")
    if cfg.k > n:
        raise InputError(f"{source}: k = {cfg.k} is larger than the data ({n} records)")

    records, hiers = [], []
    for i, qi in enumerate(cfg.quasi_identifiers):
        codes, h = _hierarchy(table, qi.column, qi.hierarchy, base, cfg, f"quasi_identifiers[{i}]")
        records.append(codes)
        hiers.append(h)
    lattice = math.prod(h.height for h in hiers)
    if lattice > MAX_LATTICE:
        raise InputError(
            f"{source}: the hierarchies give {lattice:,} combinations of levels (more than"
            f" {MAX_LATTICE:,}); use fewer quasi-identifiers or fewer hierarchy levels"
        )
    # A sensitive attribute without l or t only documents that it is not a quasi-identifier.
    sensitive = [
        _sensitive(table, s, base, cfg, i)
        for i, s in enumerate(cfg.sensitive)
        if s.l is not None or s.t is not None
    ]
    max_suppressed = math.floor(cfg.suppression_limit * n + 1e-9)
    problem = Problem(
        n=n,
        names=[q.column for q in cfg.quasi_identifiers],
        hierarchies=hiers,
        records=records,
        sensitive=sensitive,
        k=cfg.k,
        max_suppressed=max_suppressed,
    )
    t1 = time.perf_counter()

    bottom, record_rows = problem.bottom()
    outcome = Search(problem, bottom, cfg.metric).run()
    if outcome.node is None:
        raise InputError(
            f"{source}: no generalization satisfies the criteria with at most {max_suppressed}"
            f" suppressed records ({cfg.suppression_limit:.2%} of {n}); raise the suppression"
            " limit, relax k / l / t or add hierarchy levels"
        )
    keep, metrics = _final(problem, bottom, record_rows, outcome.node)
    t2 = time.perf_counter()

    if out is not None:
        replaced = {
            problem.names[q]: (h.codes[level][records[q]], h.labels[level])
            for q, (h, level) in enumerate(zip(hiers, outcome.node, strict=True))
        }
        write_table(table, out, keep, replaced)
    t3 = time.perf_counter()
    return Result(
        input=input_csv,
        output=Path(out) if out is not None else None,
        config=cfg,
        records=n,
        transformation={
            name: {"level": level, "max_level": h.height - 1}
            for name, h, level in zip(problem.names, hiers, outcome.node, strict=True)
        },
        metrics=metrics,
        max_suppressed=max_suppressed,
        lattice_size=outcome.lattice_size,
        evaluated=outcome.evaluated,
        seconds={"read": t1 - t0, "search": t2 - t1, "write": t3 - t2, "total": t3 - t0},
    )


def _final(
    problem: Problem, bottom: Any, record_rows: np.ndarray, node: Node
) -> tuple[np.ndarray, Metrics]:
    """Which records are kept at ``node``, evaluated afresh from the bottom."""
    ev = evaluate(problem, bottom, node)
    keep = ev.ok[ev.source_class[record_rows]]
    if not ev.anonymous or problem.n - int(keep.sum()) != ev.suppressed:
        raise AssertionError(f"final evaluation of {node} disagrees with the search")
    return keep, measure(problem, ev)


def _check_columns(cfg: AnonymizeConfig, table: Table, source: str) -> None:
    roles = [(f"quasi_identifiers[{i}]", q.column) for i, q in enumerate(cfg.quasi_identifiers)]
    roles += [(f"sensitive[{i}]", s.column) for i, s in enumerate(cfg.sensitive)]
    for where, column in roles:
        if column not in table.columns:
            raise InputError(
                f"{source}: {where}.column: {column!r} is not a column of {table.path}"
                f" (columns: {', '.join(table.columns)})"
            )


def _hierarchy(
    table: Table,
    column: str,
    spec: HierarchySpec | None,
    base: Path,
    cfg: AnonymizeConfig,
    where: str,
) -> tuple[np.ndarray, Hierarchy]:
    """The column's codes and its hierarchy over the values that occur."""
    codes, values = table.encode(column)
    try:
        if spec is None or isinstance(spec, str):
            path = find_hierarchy_file(column, spec, base, f"{where}.hierarchy")
            source = str(path)
            rows = arx_label_rows(values, read_arx_file(path, cfg.hierarchy_separator), source)
        else:
            source = f"{where}.hierarchy ({spec.type})"
            rows = auto_label_rows(spec, values)
    except Unmapped as exc:
        raise _unmapped_error(table, column, codes, values, exc) from None
    return codes, from_label_rows(column, source, rows)


def _unmapped_error(
    table: Table, column: str, codes: np.ndarray, values: list[str], exc: Unmapped
) -> InputError:
    row = int(np.flatnonzero(codes == exc.value_index)[0])
    line = table.line_of_row(row)
    value = values[exc.value_index]
    return InputError(f"{table.path} line {line}, column {column!r}: value {value!r} {exc.why}")


def _sensitive(
    table: Table, s: Sensitive, base: Path, cfg: AnonymizeConfig, i: int
) -> SensitiveModel:
    where = f"sensitive[{i}]"
    codes, values = table.encode(s.column)
    model = SensitiveModel(
        column=s.column,
        codes=codes,
        n_values=len(values),
        l=s.l,
        diversity=s.diversity,
        t=s.t,
        distance=s.distance,
    )
    if s.distance == "ordered":
        model.rank = _ranks(table, s, codes, values, where)
    elif s.distance == "hierarchical":
        _, h = _hierarchy(table, s.column, s.hierarchy, base, cfg, where)
        model.tree = h.codes
    return model


def _ranks(
    table: Table, s: Sensitive, codes: np.ndarray, values: list[str], where: str
) -> np.ndarray:
    """Position of each value in the order: the config's list, or numeric order."""
    keys: list[float] = []
    position = {v: p for p, v in enumerate(s.order or [])}
    for v_index, v in enumerate(values):
        if s.order is not None:
            if v not in position:
                why = f"is not in {where}.order"
                raise _unmapped_error(table, s.column, codes, values, Unmapped(v_index, why))
            keys.append(position[v])
            continue
        try:
            keys.append(float(v))
        except ValueError:
            why = f"is not a number; give {where}.order to rank non-numeric values"
            raise _unmapped_error(table, s.column, codes, values, Unmapped(v_index, why)) from None
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(keys, kind="stable")] = np.arange(len(values))
    return rank
