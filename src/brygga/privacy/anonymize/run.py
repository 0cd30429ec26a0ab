"""``anonymize``: config + CSV in, anonymized CSV out. Checks inputs, builds the problem, searches
(global recoding, ``search.py``) or partitions (local recoding, ``local.py``), checks the result
afresh, measures its utility, warns about columns generalized away, writes. Nothing is written
unless a result satisfying every criterion was found."""

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
from brygga.privacy.anonymize.criteria import Pairs
from brygga.privacy.anonymize.engine import Node, Problem, SensitiveModel, combine, evaluate
from brygga.privacy.anonymize.hierarchy import (
    Hierarchy,
    Unmapped,
    arx_label_rows,
    auto_label_rows,
    find_hierarchy_file,
    from_label_rows,
    read_arx_file,
)
from brygga.privacy.anonymize.local import partition, whole_ok
from brygga.privacy.anonymize.metrics import (
    ColumnUtility,
    Metrics,
    column_utility,
    label_loss,
    measure,
)
from brygga.privacy.anonymize.search import Search
from brygga.privacy.anonymize.table import Table, read_table, write_table

MAX_LATTICE = 5_000_000  # nodes; the search keeps a status byte per node


@dataclass
class Result:
    input: Path
    output: Path | None
    config: AnonymizeConfig
    records: int
    # global: {column: {level, max_level}}; local: {column: {levels: {level: records}, max_level}}
    transformation: dict[str, dict[str, Any]]
    metrics: Metrics
    max_suppressed: int
    lattice_size: int
    evaluated: int
    seconds: dict[str, float] = field(default_factory=dict)
    mode: str = "global"
    columns: list[ColumnUtility] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    partitions: int = 0  # local recoding: classes made by the partitioning

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
            "mode": self.mode,
            "metric": cfg.metric,
            "transformation": self.transformation,
            "metrics": self.metrics.as_dict(),
            "columns": [c.as_dict() for c in self.columns],
            "warnings": self.warnings,
            "search": (
                {"lattice_nodes": self.lattice_size, "evaluated_nodes": self.evaluated}
                if self.mode == "global"
                else {"partitions": self.partitions}
            ),
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

    records, hiers, losses = [], [], []
    for i, qi in enumerate(cfg.quasi_identifiers):
        codes, h, values = _hierarchy(
            table, qi.column, qi.hierarchy, base, cfg, f"quasi_identifiers[{i}]"
        )
        records.append(codes)
        hiers.append(h)
        losses.append(label_loss(h, values))
    lattice = math.prod(h.height for h in hiers)
    if cfg.mode == "global" and lattice > MAX_LATTICE:
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

    if cfg.mode == "local":
        if not whole_ok(problem, np.arange(n)):
            raise InputError(
                f"{source}: the criteria fail even with every quasi-identifier generalized to"
                " its top level (the whole table as one class); relax l / t"
            )
        return _local(cfg, problem, table, losses, input_csv, out, [t0, t1])

    bottom, record_rows = problem.bottom()
    outcome = Search(problem, bottom, cfg.metric).run()
    if outcome.node is None:
        raise InputError(
            f"{source}: no generalization satisfies the criteria with at most {max_suppressed}"
            f" suppressed records ({cfg.suppression_limit:.2%} of {n}); raise the suppression"
            " limit, relax k / l / t, add hierarchy levels or try mode: local"
        )
    keep, metrics = _final(problem, bottom, record_rows, outcome.node)
    levels = np.broadcast_to(np.asarray(outcome.node, dtype=np.int8), (n, len(hiers)))
    columns = _utility(problem, levels, keep, losses)
    metrics.ncp = float(np.mean([c.ncp for c in columns]))
    warnings = _global_warnings(problem, bottom, outcome.node, columns)
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
        columns=columns,
        warnings=warnings,
    )


def _local(
    cfg: AnonymizeConfig,
    problem: Problem,
    table: Table,
    losses: list[list[np.ndarray]],
    input_csv: Path,
    out: str | Path | None,
    times: list[float],
) -> Result:
    """Local recoding: partition, check the published classes afresh, measure, write."""
    t0, t1 = times
    outcome = partition(problem, losses)
    published = [
        _published_codes(h, problem.records[q], outcome.levels[:, q])
        for q, h in enumerate(problem.hierarchies)
    ]
    keep, metrics = _final_local(
        problem, outcome.levels, [p[0] for p in published], [len(p[1]) for p in published]
    )
    columns = _utility(problem, outcome.levels, keep, losses)
    metrics.ncp = float(np.mean([c.ncp for c in columns]))
    warnings = _local_warnings(columns)
    t2 = time.perf_counter()
    if out is not None:
        write_table(
            table, out, keep, {name: p for name, p in zip(problem.names, published, strict=True)}
        )
    t3 = time.perf_counter()
    transformation: dict[str, dict[str, Any]] = {}
    for q, (name, h) in enumerate(zip(problem.names, problem.hierarchies, strict=True)):
        used = np.bincount(outcome.levels[keep, q], minlength=h.height)
        transformation[name] = {
            "levels": {str(lv): int(c) for lv, c in enumerate(used) if c},
            "max_level": h.height - 1,
        }
    return Result(
        input=input_csv,
        output=Path(out) if out is not None else None,
        config=cfg,
        records=problem.n,
        transformation=transformation,
        metrics=metrics,
        max_suppressed=problem.max_suppressed,
        lattice_size=0,
        evaluated=0,
        seconds={"read": t1 - t0, "search": t2 - t1, "write": t3 - t2, "total": t3 - t0},
        mode="local",
        columns=columns,
        warnings=warnings,
        partitions=outcome.partitions,
    )


def _published_codes(
    h: Hierarchy, values: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Each record's published label as a code into one list of the column's distinct labels.

    Equal label texts at different levels get one code: a reader cannot tell them apart, so
    neither may the class count.
    """
    names: dict[str, int] = {}
    by_level = [
        np.fromiter((names.setdefault(x, len(names)) for x in h.labels[lv]), np.int64)
        for lv in range(h.height)
    ]
    codes = np.zeros(len(values), dtype=np.int64)
    for lv in range(h.height):
        at = levels == lv
        codes[at] = by_level[lv][h.codes[lv][values[at]]]
    return codes, list(names)


def _final_local(
    problem: Problem, levels: np.ndarray, published: list[np.ndarray], cards: list[int]
) -> tuple[np.ndarray, Metrics]:
    """The classes as published, checked afresh: >= k and the l / t criteria."""
    n = problem.n
    cls, c = combine(published, cards)
    sizes = np.bincount(cls, minlength=c)
    ok = sizes >= problem.k
    for s in problem.sensitive:
        pair, counts = np.unique(cls * s.n_values + s.codes, return_counts=True)
        pairs = Pairs(pair // s.n_values, pair % s.n_values, counts, sizes)
        ok &= s.monotone_ok(pairs, without_suppression=True)
    keep = ok[cls]
    suppressed = int(n - keep.sum())
    if suppressed > problem.max_suppressed:
        raise AssertionError(f"local recoding left {suppressed} records in failing classes")
    heights = np.array([h.height - 1 for h in problem.hierarchies], dtype=np.float64)
    intensity = (levels[keep] / np.maximum(heights, 1)).sum()
    kept = sizes[ok]
    m = len(problem.hierarchies)
    metrics = Metrics(
        precision=float((intensity + suppressed * m) / (n * m)),
        discernibility=float(np.square(kept, dtype=np.float64).sum()) + float(suppressed) * n,
        aecs=n / (len(kept) + (1 if suppressed else 0)),
        classes=len(kept),
        suppressed=suppressed,
    )
    return keep, metrics


def _utility(
    problem: Problem, levels: np.ndarray, keep: np.ndarray, losses: list[list[np.ndarray]]
) -> list[ColumnUtility]:
    return [
        column_utility(name, h, problem.records[q], np.asarray(levels[:, q]), keep, losses[q])
        for q, (name, h) in enumerate(zip(problem.names, problem.hierarchies, strict=True))
    ]


def _global_warnings(
    problem: Problem, bottom: Any, node: Node, columns: list[ColumnUtility]
) -> list[str]:
    """Name the quasi-identifiers generalized away to the top level, costliest first.

    The cost is the information lost (bits per record); for each, how many records one level
    finer would cost in suppression shows the steward what keeping it would take.
    """
    removed = [(c, q) for q, c in enumerate(columns) if c.max_level > 0 and node[q] == c.max_level]
    removed.sort(key=lambda x: -x[0].bits_lost)
    out = []
    for rank, (c, q) in enumerate(removed):
        finer = (*node[:q], node[q] - 1, *node[q + 1 :])
        needed = evaluate(problem, bottom, finer).suppressed
        label = problem.hierarchies[q].labels[node[q]][0]
        costliest = " - the costliest quasi-identifier" if rank == 0 else ""
        out.append(
            f"{c.column} is generalized away to {label!r} for every record{costliest}"
            f" ({c.bits_lost:.2f} bits of information lost per record); keeping it one level"
            f" finer (level {node[q] - 1}) would leave {needed:,} records in classes that fail"
            f" the criteria (the limit is {problem.max_suppressed:,})"
        )
    if removed:
        out.append(
            "to keep more of "
            + ", ".join(c.column for c, _ in removed)
            + ": use mode: local (each class its own levels), raise the suppression limit,"
            " or give the column a finer hierarchy"
        )
    return out


def _local_warnings(columns: list[ColumnUtility]) -> list[str]:
    """Columns local recoding still had to remove for most records, costliest first."""
    heavy = sorted((c for c in columns if c.removed >= 0.5), key=lambda c: -c.bits_lost)
    return [
        f"{c.column} is generalized away to its top level for {c.removed:.0%} of the written"
        f" records ({c.bits_lost:.2f} bits of information lost per record)"
        for c in heavy
    ]


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
) -> tuple[np.ndarray, Hierarchy, list[str]]:
    """The column's codes, its hierarchy over the values that occur, and those values."""
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
    return codes, from_label_rows(column, source, rows), values


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
        _, h, _ = _hierarchy(table, s.column, s.hierarchy, base, cfg, where)
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
