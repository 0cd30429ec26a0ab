"""The ``brygga`` command line: parse, call one core function, print.

User errors (``BryggaError``) are printed without a traceback and exit with code 2; anything else
is a bug and shows its traceback. ``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

__all__ = ["app", "main"]

import contextlib
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click.exceptions import ClickException

from brygga.errors import BryggaError, InputError
from brygga.util import lazy_module

if TYPE_CHECKING:
    from brygga.platform import Brygga

app = typer.Typer(
    name="brygga",
    help="Brygga: regional health data for research, feasibility, privacy and prevention.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Typer's Rich help formatter costs a third of start-up
)

# Rich is imported on first output, for start-up time: ``--json`` and ``--help`` never need it.
rich_console = lazy_module("rich.console")
rich_markup = lazy_module("rich.markup")
rich_table = lazy_module("rich.table")


class _Console:
    """A ``rich.console.Console`` (on stdout, or stderr) made when first written to."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = rich_console.Console(stderr=self._stderr)
        return getattr(self._console, name)


out = _Console()
err = _Console(stderr=True)


def escape(text: str) -> str:
    """``rich.markup.escape``: a message's own brackets are not Rich markup."""
    return rich_markup.escape(text)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
RawFlag = Annotated[bool, typer.Option("--raw", help="Exact counts (synthetic regions only).")]
RegionOption = Annotated[Path, typer.Option("--region", help="The region folder.")]


def core() -> Brygga:
    """The process's platform (``platform.Brygga``): every command's operations go through it.
    Imported here, not at the top: ``brygga --help`` and light commands start without loading
    the engines (the same reason as every command's own imports)."""
    from brygga.platform import Brygga

    return Brygga()


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = rich_table.Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[str(v) for v in row])
    out.print(table)


@app.command()
def synth(
    region: Annotated[str, typer.Option(help="Which region to model: skane or stockholm.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the region to.")],
    scale: Annotated[
        float, typer.Option(help="Fraction of the real population (1.0 = all).")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Random seed; same seed and scale, same region.")] = 1,
    years: Annotated[int, typer.Option(help="Years of recorded history.")] = 30,
    workers: Annotated[int, typer.Option(help="Worker processes (default: cores).")] = 0,
    force: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate a synthetic region (health records + a separate identities file)."""
    from brygga.synth import generate

    result = generate(
        region=region,
        out=out_dir,
        scale=scale,
        seed=seed,
        years=years,
        workers=workers or None,
        force=force,
        progress=not (quiet or as_json),
    )
    if as_json:
        print_json(result.summary())
        return
    summary = result.summary()
    print_table(
        f"Region {summary['region']} written to {summary['path']}",
        ["table", "rows"],
        [[k, f"{v:,}"] for k, v in summary["row_counts"].items()],
    )
    out.print(f"Identities (kept apart from the region): {summary['identities']}")
    out.print(f"Calibration report: {summary['calibration_report']}")
    out.print(
        f"Calibration: {summary['calibration']['within']} of {summary['calibration']['total']}"
        " targets within tolerance"
    )


@app.command(name="synth-report")
def synth_report(
    region_dir: Annotated[Path, typer.Argument(help="A synthetic region folder.")],
    as_json: JsonFlag = False,
) -> None:
    """Compare a region with the calibration targets (region-facts.md)."""
    from brygga.synth.calibration import calibration_report, report_document

    region = core().region(region_dir)
    rows = calibration_report(region)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    doc = report_document(region, rows)
    out.print(f"[bold]{doc['title']}[/]", highlight=False)
    out.print(doc["about"], highlight=False)
    table = rich_table.Table(title=doc["summary"], title_justify="left")
    # The group heads its rows (a column of its own leaves the measure no room at 80 columns);
    # single numbers never wrap (a target range may), the measure takes the width left.
    for i, column in enumerate(doc["columns"][1:]):
        table.add_column(
            {"tolerance": "tol."}.get(column, column),
            justify="right" if i else "left",
            no_wrap=i > 1,
            min_width=None if i else 20,
        )
    group = None
    for group_name, *cells, ok in doc["rows"]:
        if group_name != group:
            if group is not None:
                table.add_section()
            table.add_row(f"[bold]{escape(group_name)}[/]", *[""] * (len(cells) - 1), "")
            group = group_name
        table.add_row(*map(escape, cells), "yes" if ok else "[bold red]no[/]")
    out.print(table)


@app.command(name="import-omop")
def import_omop(
    source: Annotated[Path, typer.Argument(help="Folder of OMOP CDM v5.4 CSV files.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the region to.")],
    name: Annotated[str | None, typer.Option(help="Region name (default: folder name).")] = None,
    force: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    pseudonymize: Annotated[
        bool,
        typer.Option(
            help="Derive person_ids from personnummer in person_source_value (key: "
            "BRYGGA_PSEUDONYM_KEY_FILE)."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import an OMOP CDM v5.4 CSV export into a region."""
    from brygga.ingest.omop import import_omop as run_import

    region = run_import(source, out_dir, name=name, force=force, pseudonymize=pseudonymize)
    if as_json:
        print_json({"path": str(region.path), "row_counts": region.row_counts})
        return
    print_table(
        f"Imported {source} into {region.path}",
        ["table", "rows"],
        [[k, f"{v:,}"] for k, v in region.row_counts.items()],
    )


@app.command(name="schema-docs")
def schema_docs(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Generate the data-model documentation from records/schema.py."""
    from brygga.records.schema import render_markdown
    from brygga.util import atomic_write_text

    text = render_markdown()
    if out_file is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out_file, text)
        out.print(f"Wrote {out_file}")


@app.command(name="risk-calc")
def risk_calc(
    age: Annotated[float, typer.Option(help="Age in years.")],
    sex: Annotated[str, typer.Option(help="male or female.")],
    sbp: Annotated[float, typer.Option(help="Systolic blood pressure, mmHg.")],
    total_chol: Annotated[float, typer.Option("--total-chol", help="Total cholesterol, mmol/L.")],
    hdl: Annotated[float, typer.Option(help="HDL cholesterol, mmol/L.")],
    model: Annotated[
        str | None,
        typer.Option(help="score2, score2-op or score2-diabetes (default: chosen by ESC 2021)."),
    ] = None,
    risk_region: Annotated[
        str,
        typer.Option(
            "--risk-region", help="ESC risk region: low, moderate (Sweden), high, very-high."
        ),
    ] = "moderate",
    smoker: Annotated[bool, typer.Option("--smoker", help="Current smoker.")] = False,
    diabetes: Annotated[bool, typer.Option("--diabetes", help="Type 2 diabetes.")] = False,
    age_at_diagnosis: Annotated[
        float | None, typer.Option("--age-at-diagnosis", help="Age at diabetes diagnosis.")
    ] = None,
    hba1c: Annotated[float | None, typer.Option(help="HbA1c, mmol/mol (IFCC).")] = None,
    egfr: Annotated[float | None, typer.Option(help="eGFR, mL/min/1.73m².")] = None,
    creatinine: Annotated[
        float | None, typer.Option(help="Serum creatinine, µmol/L (eGFR by CKD-EPI 2021).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """10-year cardiovascular risk for one person: SCORE2, SCORE2-OP or SCORE2-Diabetes."""
    from brygga.prevention.scores import calculate_cvd_risk

    doc = calculate_cvd_risk(
        age=age, sex=sex, sbp=sbp, total_chol=total_chol, hdl=hdl, smoker=smoker, model=model,
        risk_region=risk_region, diabetes=diabetes, age_at_diagnosis=age_at_diagnosis,
        hba1c=hba1c, egfr=egfr, creatinine=creatinine,
    )  # fmt: skip
    if as_json:
        print_json(doc)
        return
    rows = [
        ["model", f"{doc['model_name']} (ages {doc['valid_ages']['min']}-{doc['valid_ages']['max']})"],  # type: ignore[index]
        ["risk region", doc["risk_region"]],
        ["10-year risk", f"{doc['risk_percent']} %"],
        ["category", doc["category"]],
    ]  # fmt: skip
    if "egfr" in doc:
        rows.append(["eGFR (CKD-EPI 2021)", f"{doc['egfr']} mL/min/1.73m²"])
    print_table(str(doc["outcome"]).capitalize(), ["item", "value"], rows)


@app.command(name="findrisc")
def findrisc_cmd(
    age: Annotated[float, typer.Option(help="Age in years.")],
    sex: Annotated[str, typer.Option(help="male or female.")],
    bmi: Annotated[float, typer.Option(help="Body-mass index, kg/m².")],
    waist: Annotated[float, typer.Option(help="Waist circumference at the navel, cm.")],
    active: Annotated[
        bool, typer.Option("--active/--inactive", help="At least 30 minutes of activity daily.")
    ],
    vegetables: Annotated[
        bool,
        typer.Option("--vegetables/--no-vegetables", help="Vegetables, fruit or berries daily."),
    ],
    family_history: Annotated[
        str,
        typer.Option(
            "--family-history", help="Diabetes in family: none, second-degree, first-degree."
        ),
    ],
    bp_medication: Annotated[
        bool, typer.Option("--bp-medication", help="Ever on regular blood-pressure medication.")
    ] = False,
    high_glucose: Annotated[
        bool, typer.Option("--high-glucose", help="Ever found to have high blood glucose.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """FINDRISC: points (0-26) and 10-year risk category for type 2 diabetes."""
    from brygga.prevention.scores import findrisc

    doc = findrisc(
        age=age, sex=sex, bmi=bmi, waist=waist, physically_active=active,
        daily_vegetables=vegetables, bp_medication=bp_medication, high_glucose=high_glucose,
        family_history=family_history,
    ).row(0)  # fmt: skip
    if as_json:
        print_json(doc)
        return
    rows = [[k.replace("_", " "), v] for k, v in doc["components"].items()]  # type: ignore[union-attr]
    rows += [
        ["total", f"{doc['points']} of {doc['max_points']}"],
        ["category", doc["category"]],
        ["10-year risk of type 2 diabetes", doc["risk_10y_type2_diabetes"]],
    ]
    print_table("FINDRISC (Finnish Diabetes Risk Score)", ["item", "points"], rows)


@app.command(name="region-info")
def region_info(
    region_dir: Annotated[Path, typer.Argument(help="A region folder.")],
    as_json: JsonFlag = False,
) -> None:
    """Check a region folder and show its manifest: name, source, schema version, row counts."""
    region = core().region(region_dir)
    if as_json:
        period = region.period
        covered = {"start": period[0].isoformat(), "end": period[1].isoformat()} if period else None
        print_json(
            {"path": str(region.path), **region.manifest, "records_cover": covered,
             "tables": region.tables()}
        )  # fmt: skip
        return
    facts = {k: v for k, v in region.manifest.items() if isinstance(v, str | int | float)}
    period = region.period
    # The period the records cover: the manifest's, or the span of the observation periods.
    facts["records cover"] = (
        f"{period[0].isoformat()} to {period[1].isoformat()}"
        if period
        else "no observation periods"
    )
    print_table(f"Region {region.name} ({region.path})", ["field", "value"], list(facts.items()))
    print_table("Tables", ["table", "rows"], [[k, f"{v:,}"] for k, v in region.row_counts.items()])


@app.command()
def anonymize(
    input_csv: Annotated[Path, typer.Argument(help="The CSV file to anonymize.")],
    config: Annotated[Path, typer.Option("--config", help="Anonymization config (YAML).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the anonymized CSV.")],
    hierarchies: Annotated[
        Path | None,
        typer.Option(help="Folder of hierarchy files (default: the config file's folder)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Anonymize a CSV extract: k-anonymity, l-diversity, t-closeness by global or local recoding."""
    from brygga.privacy.anonymize import anonymize as run_anonymize

    result = run_anonymize(input_csv, config, out_file, hierarchies=hierarchies)
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    out.print(f"Anonymized extract written to {summary['output']}")
    if summary["mode"] == "global":
        print_table(
            "Transformation",
            ["quasi-identifier", "level", "of"],
            [[k, v["level"], v["max_level"]] for k, v in summary["transformation"].items()],
        )
    print_table(
        f"Generalization per column ({summary['mode']} recoding)",
        ["quasi-identifier", "mean level", "of", "generalized", "removed (*)", "NCP", "bits lost"],
        [
            [
                c["column"],
                f"{c['mean_level']:.2f}",
                c["max_level"],
                f"{c['generalized']:.0%}",
                f"{c['removed']:.0%}",
                f"{c['ncp']:.3f}",
                f"{c['bits_lost']:.2f}",
            ]
            for c in summary["columns"]
        ],
    )
    for warning in summary["warnings"]:
        err.print(f"warning: {warning}", highlight=False)
    m = summary["metrics"]
    limit = summary["suppression_limit"]
    print_table(
        f"Result ({summary['metric']} minimized)"
        if summary["mode"] == "global"
        else "Result (local recoding)",
        ["measure", "value"],
        [
            ["records in", f"{summary['records']:,}"],
            ["records written", f"{summary['written']:,}"],
            ["suppressed", f"{summary['suppressed']:,} (limit {limit['records']:,})"],
            ["equivalence classes", f"{m['classes']:,}"],
            ["precision loss", f"{m['precision']:.4f}"],
            ["certainty penalty (NCP)", f"{m['ncp']:.4f}"],
            ["discernibility", f"{m['discernibility']:,.0f}"],
            ["average class size", f"{m['aecs']:.1f}"],
            [
                "lattice nodes evaluated",
                f"{summary['search']['evaluated_nodes']:,} of {summary['search']['lattice_nodes']:,}",
            ]
            if summary["mode"] == "global"
            else ["partitions", f"{summary['search']['partitions']:,}"],
            ["seconds", f"{summary['seconds']['total']:.2f}"],
        ],
    )


@app.command()
def catalogue(
    region_dirs: Annotated[
        list[Path], typer.Option("--region", help="A region folder (repeat for several).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="turtle (default) or jsonld.")] = "turtle",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of to stdout.")
    ] = None,
) -> None:
    """The dataset catalogue (DCAT-AP / HealthDCAT-AP) of regions, populations disclosed."""
    from brygga.catalogue.dcat import FORMATS
    from brygga.util import atomic_write_text

    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    cat = core().catalogue(list(region_dirs))
    text = cat.serialize(fmt)
    if out_file is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    atomic_write_text(out_file, text)
    tables = sum(len(d.tables) for d in cat.datasets)
    err.print(
        f"Catalogue written to {out_file} ({FORMATS[fmt][2]}): {len(cat.datasets)} dataset(s),"
        f" {tables} distributions",
        highlight=False,
    )


@app.command()
def feasibility(
    criteria_file: Annotated[Path, typer.Argument(help="Eligibility criteria (YAML or JSON).")],
    region_dir: RegionOption,
    engine: Annotated[str, typer.Option(help="duckdb (default), spark or reference.")] = "duckdb",
    index_date: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD; default: the criteria's, else today (the region's last day "
            "when today is past the period its records cover)."
        ),
    ] = None,
    raw: RawFlag = False,
    noise: Annotated[
        str | None,
        typer.Option(help="laplace or gaussian: noisy counts, cached, rate-limited per user."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Count the people meeting eligibility criteria, with attrition and breakdowns."""
    from datetime import date

    from brygga.errors import InputError

    when = None
    if index_date is not None:
        try:
            when = date.fromisoformat(index_date)
        except ValueError:
            raise InputError(f"--index-date {index_date!r} is not a date (YYYY-MM-DD)") from None
    result = core().feasibility(
        criteria_file, region_dir, engine=engine, index_date=when, raw=raw, noise=noise
    )
    _done_quickly()  # recorded and audited: nothing is left for the interpreter's exit
    if as_json:
        print_json(result.as_dict())
        return
    for warning in result.warnings:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    for note in result.notes:
        out.print(f"[bold]note:[/] {note}", highlight=False)
    out.print(
        f"[bold]{result.name}[/] on {result.region}, index date {result.index_date}: "
        f"[bold]{result.count['display']}[/] people ({result.disclosure}; {result.engine}, "
        f"{result.elapsed_ms} ms)",
        highlight=False,
    )
    print_table(
        "Attrition",
        ["step", "remaining"],
        [[a["step"], a["count"]["display"]] for a in result.attrition],
    )
    for key, title in (("sex", "Sex"), ("age_band", "Age band"), ("municipality", "Municipality")):
        cells = result.breakdowns[key]
        print_table(title, [title.lower(), "people"], [[k, v["display"]] for k, v in cells.items()])


def _index_date_option(value: str | None) -> Any:
    """Parse --index-date (YYYY-MM-DD) or return None."""
    from datetime import date

    from brygga.errors import InputError

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"--index-date {value!r} is not a date (YYYY-MM-DD)") from None


# Prevention's commands read their inputs through a cohort engine (prevention/inputs_sql.py).
EngineOption = Annotated[
    str | None,
    typer.Option(help="duckdb or spark (default: BRYGGA_ENGINE, else duckdb); same answers."),
]


@app.command()
def risk(
    region_dir: RegionOption,
    model: Annotated[
        str,
        typer.Option(
            help="applicable (ESC choice per person), score2, score2-op, score2-diabetes."
        ),
    ] = "applicable",
    index_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: the region's end date.")
    ] = None,
    risk_region: Annotated[
        str, typer.Option("--risk-region", help="ESC risk region (Sweden: moderate).")
    ] = "moderate",
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Write one PNG chart per dimension here.")
    ] = None,
    impute: Annotated[
        bool, typer.Option("--impute", help="Impute missing inputs (documented; output says so).")
    ] = False,
    engine: EngineOption = None,
    raw: RawFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Risk categories of a region's population by sex, age band, municipality, deprivation."""
    from brygga.prevention.stratify import DIMENSIONS

    doc = core().risk(
        region_dir, model=model, index_date=_index_date_option(index_date),
        risk_region=risk_region, impute=impute, raw=raw, chart_dir=out_dir, engine=engine,
    )  # fmt: skip
    if as_json:
        print_json(doc)
        return
    pop, miss = doc["population"], doc["missing_inputs"]
    out.print(
        f"[bold]{doc['region']}[/], index date {doc['index_date']}, model {doc['model']} "
        f"({doc['risk_region']} risk region); {doc['disclosure']}",
        highlight=False,
    )
    if doc["imputation"]:
        err.print(f"[bold yellow]imputed:[/] {doc['imputation']}", highlight=False)
    facts = [["alive and under observation", pop["alive_and_observed"]["display"]]]
    facts += [["scored population", pop["scored_population"]["display"]]]
    facts += [[f"not scored: {k}", v["display"]] for k, v in pop["not_scored"].items()]
    facts += [[f"missing input: {k}", v["display"]] for k, v in miss.items()]
    print_table("Population", ["", "people"], facts)
    columns = ["people", "complete", *doc["categories"], "missing inputs"]
    for dim in DIMENSIONS:
        rows = [
            [group, c["people"]["display"], c["complete_inputs"]["display"]]
            + [_share(c, label) for label in doc["categories"]]
            + [c["missing_inputs"]["display"]]
            for group, c in doc["breakdowns"][dim].items()
        ]
        print_table(f"By {dim.replace('_', ' ')}", [dim.replace("_", " "), *columns], rows)
    for path in doc.get("charts", []):
        out.print(f"Chart: {path}")


def _share(cell: dict[str, Any], label: str) -> str:
    share = cell["shares"][label]
    return (
        f"{cell['categories'][label]['display']} ({share:.0%})"
        if share is not None
        else cell["categories"][label]["display"]
    )


criteria_app = typer.Typer(
    rich_markup_mode=None, help="Eligibility criteria documents.", no_args_is_help=True
)
app.add_typer(criteria_app, name="criteria")


@criteria_app.command("check")
def criteria_check(
    criteria_file: Annotated[Path, typer.Argument(help="Eligibility criteria (YAML or JSON).")],
    lang: Annotated[str, typer.Option(help="sv (default) or en.")] = "sv",
) -> None:
    """Validate criteria without a region and print what they ask, in Swedish or English."""
    from brygga.errors import InputError

    if lang not in ("sv", "en"):
        raise InputError(f"--lang {lang!r}: give sv or en")
    for line in core().check_criteria(criteria_file, lang=lang):
        out.print(line, highlight=False, markup=False)


audit_app = typer.Typer(
    rich_markup_mode=None, help="The append-only, hash-chained audit log.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    log: Annotated[
        Path | None, typer.Option(help="Audit log file (default: DATA_DIR/audit/audit.jsonl).")
    ] = None,
    anchor: Annotated[
        str | None, typer.Option(help="A record hash kept elsewhere that must still be there.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every record's hash and link; exit 1 if the log was changed."""
    from brygga.audit import AuditLogBroken, verify

    result = verify(log or core().audit_log, anchor=anchor)
    if as_json:
        print_json(result.as_dict())
    elif result.ok:
        out.print(f"audit log {result.path}: {result.records} records, chain intact")
        out.print(f"head: {result.head}")
    if not result.ok:
        where = f" at line {result.line}" if result.line else ""
        raise AuditLogBroken(f"audit log {result.path} is broken{where}: {result.problem}")


@app.command()
def program(
    program_file: Annotated[Path, typer.Argument(help="Prevention program (YAML).")],
    region_dir: RegionOption,
    index_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: the program's, else region end.")
    ] = None,
    engine: EngineOption = None,
    raw: RawFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Plan a prevention program: eligible and invited people per care unit (counts only)."""
    doc = core().program(
        program_file, region_dir, raw=raw, index_date=_index_date_option(index_date),
        engine=engine,
    )  # fmt: skip
    if as_json:
        print_json(doc)
        return
    out.print(
        f"[bold]{doc['program']}[/] on {doc['region']}, index date {doc['index_date']}; "
        f"{doc['disclosure']}",
        highlight=False,
    )
    keys = ("target_criteria_met", "eligible", "invited", "beyond_capacity", "not_listed_at_a_unit")
    print_table("Program", ["", "people"], [[k.replace("_", " "), doc[k]["display"]] for k in keys])
    print_table(
        "Per care unit",
        ["care unit", "id", "capacity", "eligible", "invited"],
        [
            [c.get("name") or "(no name)", u, c["capacity"], c["eligible"]["display"],
             c["invited"]["display"]]
            for u, c in doc["units"].items()
        ],
    )  # fmt: skip


@app.command(name="prevention-list")
def prevention_list(
    program_file: Annotated[Path, typer.Argument(help="Prevention program (YAML).")],
    region_dir: RegionOption,
    care_unit: Annotated[int, typer.Option("--care-unit", help="care_site_id of the unit.")],
    legal_basis: Annotated[
        str, typer.Option("--legal-basis", help="The legal basis for processing (recorded).")
    ],
    actor: Annotated[str, typer.Option(help="Who asks for the list (recorded in the audit log).")],
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write (mode 0600).")],
    index_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: the program's, else region end.")
    ] = None,
    identities: Annotated[
        Path | None, typer.Option(help="Identities file (default: beside the region).")
    ] = None,
    audit_log: Annotated[
        Path | None, typer.Option("--audit-log", help="Default: DATA_DIR/audit/audit.jsonl.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """IDENTIFIABLE: one care unit's prioritized invitation list. Audited; not for research."""
    from brygga.prevention.programs import invitation_list

    plan = core().plan(program_file, region_dir, index_date=_index_date_option(index_date))
    doc = invitation_list(
        plan, care_unit=care_unit, legal_basis=legal_basis, actor=actor, out=out_file,
        identities=identities, audit_log=audit_log, force=force,
    )  # fmt: skip
    if as_json:
        print_json(doc)
        return
    out.print(
        f"Invitation list for {doc['care_unit_name']} ({doc['people']} people, highest risk "
        f"first) written to {doc['out']}; audit record {doc['audit_record'][:16]}",
        highlight=False,
    )


@app.command()
def equity(
    region_dir: RegionOption,
    program_file: Annotated[
        Path | None, typer.Option("--program", help="Reach = invited by this program.")
    ] = None,
    invitations: Annotated[
        Path | None, typer.Option(help="Reach = on this list (CSV with person_id).")
    ] = None,
    index_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: the region's end date.")
    ] = None,
    margin: Annotated[
        float, typer.Option(help="Flag groups whose reach is below this x the region's.")
    ] = 0.8,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Write PNG charts here.")
    ] = None,
    engine: EngineOption = None,
    raw: RawFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Need and reach by deprivation quintile and municipality; flags the inverse care law."""
    from brygga.prevention.equity import EQUITY_DIMENSIONS

    doc = core().equity(
        region_dir, program_file=program_file, invitations_file=invitations,
        index_date=_index_date_option(index_date), raw=raw, margin=margin, chart_dir=out_dir,
        engine=engine,
    )  # fmt: skip
    if as_json:
        print_json(doc)
        return
    out.print(f"[bold]{doc['region']}[/] {doc['index_date']}; {doc['disclosure']}", highlight=False)
    out.print(f"reach: {doc['reach_definition']}; need: {doc['need_definition']}")
    out.print(doc["flag_rule"])
    for dim in EQUITY_DIMENSIONS:
        rows = [
            [g, c["target"]["display"], c["reached"]["display"], _pct(c["reach"]),
             _pct(c["need"]), "UNDER-REACHED" if c["under_reached"] else ""]
            for g, c in doc["breakdowns"][dim].items()
        ]  # fmt: skip
        gradient = doc["gradient"][dim]
        corr = gradient["correlation"]
        print_table(
            f"By {dim.replace('_', ' ')} ("
            + (f"need-reach correlation {corr:+.2f}" if corr is not None else
               f"no need-reach correlation: {gradient['reason']}")
            + ")",
            [EQUITY_GROUP_LABELS.get(dim, dim.replace("_", " ")), "target", "reached", "reach",
             "need", "flag"],
            rows,
        )  # fmt: skip
    for path in doc.get("charts", []):
        out.print(f"Chart: {path}")


# Which end of the deprivation scale is which (records/schema.py: 1 least, 5 most deprived).
EQUITY_GROUP_LABELS = {"deprivation_quintile": "deprivation quintile (1 least, 5 most deprived)"}


def _pct(value: float | None) -> str:
    return "suppressed" if value is None else f"{value:.0%}"


@app.command()
def evaluate(
    invitations: Annotated[Path, typer.Argument(help="CSV: person_id, invitation_date.")],
    region_dir: RegionOption,
    start: Annotated[
        str | None, typer.Option(help="Program start YYYY-MM-DD (default: first invitation).")
    ] = None,
    months: Annotated[int, typer.Option(help="Follow-up in months.")] = 12,
    enrolment_days: Annotated[
        int, typer.Option("--enrolment-days", help="Invited within this many days of start.")
    ] = 90,
    program_file: Annotated[
        Path | None, typer.Option("--program", help="Program YAML (reimbursement parameters).")
    ] = None,
    engine: EngineOption = None,
    raw: RawFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a program: invited vs matched not-yet-invited people; reimbursement."""
    doc = core().evaluate(
        invitations, region_dir, raw=raw, program=program_file, start=_index_date_option(start),
        months=months, enrolment_days=enrolment_days, engine=engine,
    )  # fmt: skip
    if as_json:
        print_json(doc)
        return
    out.print(
        f"[bold]{doc['region']}[/]: start {doc['start']}, follow-up to {doc['follow_up_end']}; "
        f"invited {doc['invited_scored']['display']}, comparison "
        f"{doc['comparison_scored']['display']}; {doc['disclosure']}",
        highlight=False,
    )
    rows = [
        [name.replace("_", " "), r["invited"]["display"], r["comparison"]["display"],
         "withheld" if r["estimate"] is None else r["estimate"],
         "" if r["ci95"] is None else f"{r['ci95'][0]} to {r['ci95'][1]}"]
        for name, r in doc["outcomes"].items()
    ]  # fmt: skip
    print_table(
        f"Effect on the invited ({doc['matching']})",
        ["outcome", "invited", "comparison", "difference", "95% CI"],
        rows,
    )
    pay = doc["reimbursement"]
    print_table(
        f"Reimbursement ({pay['basis']})",
        ["measure", "verified improvements", "beyond comparison", "gross SEK", "attributable SEK"],
        [
            [k, m["verified_improvements"]["display"],
             "" if m["beyond_comparison"] is None else m["beyond_comparison"]["display"],
             *("suppressed" if m[k] is None else m[k] for k in ("gross_sek", "attributable_sek"))]
            for k, m in pay["measures"].items()
        ]
        + [["total", "", "", pay["gross_sek"], pay["attributable_sek"]]],
    )  # fmt: skip


# --- Privacy: operational database and privacy budgets ------------------------------------

budget_app = typer.Typer(
    rich_markup_mode=None, help="Differential-privacy budgets of approved data projects."
)
app.add_typer(budget_app, name="budget")


@app.command(name="db-upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Create or migrate the operational database (BRYGGA_DATABASE_URL) to the newest schema."""
    url = core().database
    if as_json:
        print_json({"database": url, "upgraded": True})
        return
    out.print(f"Database {url} is at the newest schema.", highlight=False)


def _print_budget(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
        return
    e, d = doc["epsilon"], doc["delta"]
    print_table(
        f"Privacy budget of {doc['project']} ({doc['queries']} queries)",
        ["", "total", "spent", "left"],
        [["epsilon", f"{e['total']:g}", f"{e['spent']:g}", f"{e['left']:g}"],
         ["delta", f"{d['total']:g}", f"{d['spent']:g}", f"{d['left']:g}"]],
    )  # fmt: skip


@budget_app.command("create")
def budget_create(
    project: Annotated[str, typer.Argument(help="The approved data project's id.")],
    epsilon: Annotated[float, typer.Option(help="Total privacy-loss budget epsilon.")],
    delta: Annotated[float, typer.Option(help="Total delta (Gaussian noise only).")] = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Give an approved data project its privacy-loss budget."""
    from brygga.privacy.budget import create_budget

    _print_budget(create_budget(project, epsilon, delta, url=core().database).as_dict(), as_json)


@budget_app.command("show")
def budget_show(
    project: Annotated[str, typer.Argument(help="The data project's id.")],
    as_json: JsonFlag = False,
) -> None:
    """What a project has spent of its privacy-loss budget and what is left."""
    from brygga.privacy.budget import budget_status

    _print_budget(budget_status(project, url=core().database).as_dict(), as_json)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    region: Annotated[
        Path | None, typer.Option(help="Region folder for feasibility and records matching.")
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Enable the demo identity provider (synthetic people only).")
    ] = False,
    raw_counts: Annotated[
        bool, typer.Option(help="Exact counts (synthetic regions only; pages say so).")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes sharing the port (one per core).")
    ] = 1,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(help="OIDC issuer URL (docs/login.md).", envvar="BRYGGA_OIDC_ISSUER"),
    ] = None,
    oidc_client_id: Annotated[
        str | None, typer.Option(help="OIDC client id.", envvar="BRYGGA_OIDC_CLIENT_ID")
    ] = None,
    oidc_client_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the OIDC client secret (or BRYGGA_OIDC_CLIENT_SECRET).",
            envvar="BRYGGA_OIDC_CLIENT_SECRET_FILE",
        ),
    ] = None,
    oidc_redirect_uri: Annotated[
        str | None,
        typer.Option(help="Public URL of /login/oidc/callback.", envvar="BRYGGA_OIDC_REDIRECT_URI"),
    ] = None,
    oidc_personnummer_claim: Annotated[
        str | None,
        typer.Option(
            help="Claim with the personnummer (default personal_identity_number).",
            envvar="BRYGGA_OIDC_PERSONNUMMER_CLAIM",
        ),
    ] = None,
    oidc_staff_claim: Annotated[
        str | None,
        typer.Option(
            help="Claim matched to staff e-mail (default email).", envvar="BRYGGA_OIDC_STAFF_CLAIM"
        ),
    ] = None,
    oidc_scope: Annotated[
        str | None,
        typer.Option(help="Scopes (default 'openid profile').", envvar="BRYGGA_OIDC_SCOPE"),
    ] = None,
) -> None:
    """Run the web front door (resident e-service, studies, JSON API) under uvicorn."""
    import secrets

    from brygga.config import get_settings, secret
    from brygga.db import database_url, upgrade
    from brygga.web import server
    from brygga.web.app import WebConfig
    from brygga.web.auth import provider_from_settings

    oidc = provider_from_settings(
        oidc_issuer, oidc_client_id, oidc_redirect_uri, oidc_client_secret_file,
        oidc_personnummer_claim, oidc_staff_claim, oidc_scope,
        client_secret=secret(get_settings().oidc_client_secret),
    )  # fmt: skip
    url = upgrade(database_url())
    # Sessions are signed with this key; set BRYGGA_SECRET_KEY so they survive a restart.
    secret_key = secret(get_settings().secret_key) or secrets.token_hex(32)
    web = get_settings().web  # BRYGGA_WEB_BEHIND_TLS, BRYGGA_WEB_TRUSTED_PROXIES
    config = WebConfig(
        database_url=url, region=region, demo=demo, raw_counts=raw_counts,
        secret_key=secret_key, behind_tls=web.behind_tls, trusted_proxies=web.trusted_proxies,
    )  # fmt: skip
    if demo:  # the demo's example addresses on the information pages, unless set
        from brygga.demo import demo_contact

        config.contact = demo_contact()
    if oidc is not None:
        config.oidc = oidc
        # A public https callback means browsers reach us over TLS: keep cookies off plain http.
        config.secure_cookies |= oidc.redirect_uri.startswith("https://")
    label = " (DEMO identity provider enabled)" if demo else ""
    label += f" (OIDC log-in through {oidc.issuer})" if oidc is not None else ""
    err.print(f"Brygga on http://{host}:{port}{label}", highlight=False)
    server.run(config, host, port, workers)


@app.command(name="demo-seed")
def demo_seed(
    region: Annotated[Path, typer.Option(help="A synthetic region (with its identities file).")],
    volunteers: Annotated[int, typer.Option(help="Volunteers to register.")] = 3000,
    ctgov: Annotated[
        Path | None, typer.Option(help="ClinicalTrials.gov API v2 JSON to import studies from.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Seed the operational database with demo organizations, staff, studies and volunteers."""
    from brygga.db import database_url
    from brygga.demo import seed_ecosystem
    from brygga.studies.seed import seed_demo

    summary = seed_demo(region, database_url(), volunteers=volunteers, ctgov_file=ctgov).summary()
    seed_ecosystem(database_url())  # the directory, so /ekosystem is not empty
    if as_json:
        print_json(summary)
        return
    out.print(
        f"{summary['volunteers']} volunteers, {summary['studies']} studies, "
        f"{summary['invited']} invitations in {summary['database_url']}",
        highlight=False,
    )
    print_table("Demo log-ins", ["role", "e-mail", "password"],
                [[x["role"], x["email"], x["password"]] for x in summary["logins"]])  # fmt: skip
    people = summary["demo_people"]
    out.print(
        f"The demo identity provider lists {people['listed']} people: {people['unregistered']} "
        f"not yet registered, {people['with_invitations']} with invitations.",
        highlight=False,
    )


@app.command()
def match(
    region: Annotated[
        Path | None, typer.Option(help="Region for records matching (else self-reports only).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The scheduled matching run: expire old invitations, invite new candidates, and deliver
    queued notifications (BRYGGA_NOTIFY_SENDER; the file sender writes
    <data dir>/outbox/messages.jsonl)."""
    doc = core().match(region)
    if as_json:
        print_json(doc)
        return
    rows = [[k, v["display"]] for k, v in doc["invited"].items()]
    print_table("Matching", ["study", "new invitations"], rows)
    sent = ", ".join(
        f"{k.replace('_', '-')} {v['display']}" for k, v in doc["notifications"].items()
    )
    out.print(
        f"{doc['expired']['display']} invitations expired; notifications: {sent} "
        f"({doc['disclosure']}).",
        highlight=False,
    )


@app.command()
def notify(as_json: JsonFlag = False) -> None:
    """Deliver the queued notifications now (e-mail through SMTP or to the file, as
    BRYGGA_NOTIFY_SENDER says; SMS to the file). `brygga serve` does this on a schedule."""
    doc = core().notify_disclosed()
    if as_json:
        print_json(doc)
        return
    sent = ", ".join(
        f"{k.replace('_', '-')} {v['display']}" for k, v in doc["notifications"].items()
    )
    out.print(f"Notifications: {sent} ({doc['disclosure']}).", highlight=False)


@app.command()
def optimize(
    region_dir: Annotated[Path, typer.Argument(help="A region folder.")],
    threads: Annotated[int | None, typer.Option(help="DuckDB threads (default: all).")] = None,
    memory_limit: Annotated[
        str, typer.Option(help="DuckDB memory limit (peak memory is about 2 GB more).")
    ] = "5GB",
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Rebuild every table (default: only those whose files changed since the last "
            "build, and what depends on them; a full build also compacts the file).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build the region's optimized DuckDB database (sorted native tables, population table,
    dense person index), used by every DuckDB query on the region until the region changes."""
    from brygga.records import optimize as optimized

    region = core().region(region_dir)
    if as_json:
        report = optimized.build(
            region, threads=threads, memory_limit=memory_limit, incremental=not full
        )
    else:
        # Tables take from seconds to many minutes each at scale 1.0: say which one is running.
        with err.status("Optimizing") as status:

            def progress(table: str) -> None:
                status.update(f"Optimizing {region.name}: {table}")

            report = optimized.build(
                region,
                threads=threads,
                memory_limit=memory_limit,
                progress=progress,
                incremental=not full,
            )
    doc = {
        "path": str(report.path),
        "seconds": round(report.seconds, 1),
        "bytes": report.bytes,
        "population": report.population,
        "rows": report.tables,
        "rebuilt": report.rebuilt,
        "max_rss_mb": report.max_rss_mb,
    }
    if as_json:
        print_json(doc)
        return
    rebuilt = ", ".join(report.rebuilt) or "nothing (the region has not changed)"
    out.print(f"Rebuilt: {rebuilt}", highlight=False)
    print_table(
        f"Optimized {report.path} in {doc['seconds']} s ({report.bytes / 1e9:.2f} GB)",
        ["table", "rows"],
        [[k, f"{v:,}"] for k, v in report.tables.items()],
    )


# --- Health-data access: applications, permits, extracts, output checking ----------------

access_app = typer.Typer(
    rich_markup_mode=None,
    help="Health-data access: applications, permits, data requests, extracts, release.",
    no_args_is_help=True,
)
app.add_typer(access_app, name="access")
AsOption = Annotated[
    str, typer.Option("--as", help="Your staff account's e-mail (recorded in the audit log).")
]


def _application_summary(doc: dict[str, Any]) -> None:
    feasibility = doc.get("feasibility") or {}
    deadline = doc["deadline"]
    due = f"decision due {deadline['due']}" if deadline.get("due") else "not submitted"
    if deadline.get("overdue"):
        due += " (OVERDUE)"
    out.print(f"Application {doc['id']}: {escape(doc['title'])} [{doc['status']}]; {due}",
              highlight=False)  # fmt: skip
    if feasibility:
        out.print(
            f"  cohort: {feasibility['count']['display']} people on {feasibility['index_date']}"
            f" ({feasibility['disclosure']}{'; donors only' if feasibility['donors_only'] else ''})",
            highlight=False,
        )
    permit = doc.get("permit")
    if permit:
        out.print(f"  permit {permit['id']} [{permit['state']}], "
                  f"{permit['period']['start']} to {permit['period']['end']}", highlight=False)  # fmt: skip
    for output in doc.get("outputs", []):
        _output_line(output)


def _output_line(doc: dict[str, Any]) -> None:
    checks = doc["checks"]
    failed = [k for k, v in checks.items() if isinstance(v, dict) and v["status"] == "fail"]
    verdict = "checks passed" if checks.get("passed") else f"checks FAILED: {', '.join(failed)}"
    files = ", ".join(f["name"] for f in doc["files"])
    out.print(f"  output {doc['id']} ({doc['kind']}) [{doc['status']}]; {verdict}; {files}",
              highlight=False)  # fmt: skip


@access_app.command("apply")
def access_apply(
    application_file: Annotated[Path, typer.Argument(help="The application (YAML or JSON).")],
    who: AsOption,
    region: Annotated[
        Path | None, typer.Option(help="Region for the feasibility count; submits at once.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply for record-level data: a draft, or submitted with --region (after a disclosed
    feasibility count of the cohort)."""
    from brygga import documents
    from brygga.forms import FormError

    data = documents.read_file(application_file, "application").data
    if not isinstance(data, dict):
        raise BryggaError(f"{application_file}: the application must be a mapping of fields")
    core_ = core()
    try:
        doc = core_.access_apply(
            core_.access_actor(who), data, region=region, submit=region is not None
        )
    except FormError as exc:
        raise FormError(exc.fields, f"{application_file}: {exc.message}") from None
    if as_json:
        print_json(doc)
        return
    _application_summary(doc)


@access_app.command("submit")
def access_submit(
    application: Annotated[int, typer.Argument(help="The application's number.")],
    who: AsOption,
    region: RegionOption,
    as_json: JsonFlag = False,
) -> None:
    """Submit a draft (or a rejected application) with its disclosed feasibility count."""
    core_ = core()
    doc = core_.access_submit(core_.access_actor(who), application, region)
    print_json(doc) if as_json else _application_summary(doc)


@access_app.command("list")
def access_list(who: AsOption, as_json: JsonFlag = False) -> None:
    """The applications and permits you may see (stewards: every submitted one)."""
    core_ = core()
    doc = core_.access_list(core_.access_actor(who))
    if as_json:
        print_json(doc)
        return
    print_table(
        "Applications",
        ["id", "title", "status", "decision due"],
        [[a["id"], escape(a["title"]), a["status"],
          f"{a['deadline']['due'] or '-'}{' OVERDUE' if a['deadline']['overdue'] else ''}"]
         for a in doc["applications"]],
    )  # fmt: skip
    print_table(
        "Permits",
        ["id", "holder", "state", "period", "data due"],
        [[p["id"], escape(p["organization"]), p["state"],
          f"{p['period']['start']} to {p['period']['end']}",
          f"{p['deadline']['due'] or '-'}{' OVERDUE' if p['deadline']['overdue'] else ''}"]
         for p in doc["permits"]],
    )  # fmt: skip


@access_app.command("show")
def access_show(
    application: Annotated[int, typer.Argument(help="The application's number.")],
    who: AsOption,
    as_json: JsonFlag = False,
) -> None:
    """One application with its decision, permit and outputs."""
    core_ = core()
    doc = core_.access_show(core_.access_actor(who), application)
    print_json(doc) if as_json else _application_summary(doc)


@access_app.command("decide")
def access_decide(
    application: Annotated[int, typer.Argument(help="The application's number.")],
    who: AsOption,
    reasons: Annotated[str, typer.Option(help="The reasons for the decision.")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="The decision.")] = False,
    check: Annotated[
        list[str] | None,
        typer.Option(help="A checklist item confirmed (repeat; see --all-checks)."),
    ] = None,
    all_checks: Annotated[
        bool, typer.Option("--all-checks", help="Confirm every item of the checklist.")
    ] = False,
    conditions: Annotated[str, typer.Option(help="Conditions attached to the permit.")] = "",
    epsilon: Annotated[
        float | None, typer.Option(help="A privacy budget for statistics under the permit.")
    ] = None,
    extracts: Annotated[
        bool, typer.Option("--extracts/--no-extracts", help="Whether the permit covers extracts.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """The data steward's decision: --approve (with the checklist) or --reject, with reasons."""
    from brygga.access.review import CHECKLIST, Decision

    items = list(CHECKLIST) if all_checks else list(check or [])
    decision = Decision(
        approve=approve, reasons=reasons, checklist=dict.fromkeys(items, True),
        conditions=conditions, epsilon=epsilon, extracts=extracts,
    )  # fmt: skip
    core_ = core()
    doc = core_.access_decide(core_.access_actor(who), application, decision)
    print_json(doc) if as_json else _application_summary(doc)


@access_app.command("request")
def access_request(
    criteria_file: Annotated[Path, typer.Argument(help="The cohort (criteria, YAML or JSON).")],
    who: AsOption,
    region: RegionOption,
    table: Annotated[
        list[str], typer.Option(help="A table: dimensions joined by commas (repeat).")
    ],
    permit: Annotated[int | None, typer.Option(help="Answer under this permit.")] = None,
    measure: Annotated[str | None, typer.Option(help="visits: also sum visits.")] = None,
    epsilon: Annotated[float, typer.Option(help="Privacy loss per table (DP budget).")] = 0.1,
    as_json: JsonFlag = False,
) -> None:
    """A data request: counts of a cohort by the breakdowns asked, through the release gate
    (under a permit: an output waiting for output checking)."""
    spec = {"tables": [[d.strip() for d in t.split(",")] for t in table], "measure": measure,
            "epsilon": epsilon}  # fmt: skip
    core_ = core()
    doc = core_.access_request(
        core_.access_actor(who), criteria_file, spec, region, permit_id=permit
    )
    if as_json:
        print_json(doc)
        return
    if "kind" in doc:
        _output_line(doc)
        return
    out.print(f"{escape(doc['criteria'])}: {doc['total']['display']} people "
              f"({doc['disclosure']})", highlight=False)  # fmt: skip
    for t in doc["tables"]:
        dims = t["dimensions"]
        print_table(" by ".join(dims), [*dims, "people"],
                    [[*(r[d] for d in dims), r["people"]["display"]] for r in t["rows"]])  # fmt: skip


@access_app.command("extract")
def access_extract(
    permit: Annotated[int, typer.Argument(help="The permit's number.")],
    who: AsOption,
    region: RegionOption,
    as_json: JsonFlag = False,
) -> None:
    """Make the permit's extract (a data steward); automatic checks run, a second steward
    releases it."""
    core_ = core()
    doc = core_.access_extract(core_.access_actor(who), permit, region)
    print_json(doc) if as_json else _output_line(doc)


@access_app.command("release")
def access_release(
    output: Annotated[int, typer.Argument(help="The output's number.")],
    who: AsOption,
    reject: Annotated[bool, typer.Option("--reject", help="Refuse the release.")] = False,
    reason: Annotated[str, typer.Option(help="Why (required to refuse).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """The second person's review of an output: release it or --reject it."""
    core_ = core()
    doc = core_.access_release(core_.access_actor(who), output, approve=not reject,
                               reason=reason)  # fmt: skip
    print_json(doc) if as_json else _output_line(doc)


@access_app.command("download")
def access_download(
    output: Annotated[int, typer.Argument(help="The output's number.")],
    name: Annotated[str, typer.Argument(help="The file's name.")],
    who: AsOption,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the file.")],
    as_json: JsonFlag = False,
) -> None:
    """Download a released file (the permit's holder and named people)."""
    import shutil

    core_ = core()
    source = core_.access_download(core_.access_actor(who), output, name)
    shutil.copyfile(source, out_file)
    if as_json:
        print_json({"output": output, "file": name, "written": str(out_file)})
        return
    out.print(f"Wrote {out_file}", highlight=False)


@access_app.command("revoke")
def access_revoke(
    permit: Annotated[int, typer.Argument(help="The permit's number.")],
    who: AsOption,
    reason: Annotated[str, typer.Option(help="Why the permit is revoked.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a permit (a data steward): nothing more is made, released or downloaded."""
    core_ = core()
    doc = core_.access_revoke(core_.access_actor(who), permit, reason)
    if as_json:
        print_json(doc)
        return
    out.print(f"Permit {doc['id']} is {doc['state']}.", highlight=False)


@access_app.command("register")
def access_register(as_json: JsonFlag = False) -> None:
    """The public register of granted permits."""
    rows = core().access_register()
    if as_json:
        print_json(rows)
        return
    print_table(
        "Granted permits",
        ["permit", "holder", "title", "data", "period", "state"],
        [[r["permit"], escape(r["holder"]), escape(r["title"]),
          f"{', '.join(r['data']['variables'])} ({r['data']['form']})",
          f"{r['period']['start']} to {r['period']['end']}", r["state"]] for r in rows],
    )  # fmt: skip


# --- Agenda: KPIs and the annual report ------------------------------------------------

kpi_app = typer.Typer(
    rich_markup_mode=None,
    help="The agenda's KPIs: list, show, explain, import.",
    no_args_is_help=True,
)
app.add_typer(kpi_app, name="kpi")
report_app = typer.Typer(rich_markup_mode=None, help="Reports on the agenda.", no_args_is_help=True)
app.add_typer(report_app, name="report")
LangOption = Annotated[str, typer.Option("--lang", help="sv (default) or en.")]


def _lang(lang: str) -> str:
    if lang not in ("sv", "en"):
        raise BryggaError(f"--lang must be sv or en, not {lang!r}")
    return lang


@kpi_app.command("list")
def kpi_list(as_json: JsonFlag = False, lang: LangOption = "sv") -> None:
    """Every KPI: id, name, kind (live or imported), source and the priorities following it."""
    kpis = core().kpis(_lang(lang))
    if as_json:
        print_json(kpis)
        return
    print_table(
        f"{len(kpis)} KPIs (--json for definitions, sources and priorities)",
        ["id", "kind", "unit", "priorities", "name"],
        [[k["id"], k["kind"], k["unit"], len(k["priorities"]), k["name"]] for k in kpis],
    )


@kpi_app.command("show")
def kpi_show(
    kpi_id: Annotated[str, typer.Argument(help="The KPI's id (brygga kpi list).")],
    year: Annotated[
        int | None, typer.Option(help="The series' last year (default: this year).")
    ] = None,
    region_dir: Annotated[
        Path | None, typer.Option("--region", help="Region folder (KPIs on health records).")
    ] = None,
    area: Annotated[str | None, typer.Option(help="Imported series: skane, stockholm ...")] = None,
    as_json: JsonFlag = False,
    lang: LangOption = "sv",
) -> None:
    """A KPI's definition and its series by year and quarter (counts disclosed)."""
    doc = core().kpi_series(kpi_id, year=year, region=region_dir, area=area)
    if as_json:
        print_json(doc)
        return
    lang = _lang(lang)
    series = doc["series"]
    out.print(f"[bold]{escape(doc['name'][lang])}[/] ({doc['id']}, {doc['kind']}, {doc['unit']})")
    out.print(escape(doc["definition"][lang]), highlight=False)
    out.print(f"source: {escape(doc['source'])}; owner: {escape(doc['owner'])}", highlight=False)
    if series.get("unavailable"):
        out.print(f"[yellow]not computed: {escape(series['unavailable'])}[/]")
    rows = [[p["period"], p["display"]] for p in series["years"] + series["quarters"]]
    print_table("series", ["period", "value"], rows)
    out.print(f"disclosure: {escape(series['disclosure'])}", highlight=False)


@kpi_app.command("explain")
def kpi_explain(
    kpi_id: Annotated[str, typer.Argument(help="The KPI's id.")], as_json: JsonFlag = False
) -> None:
    """A KPI's definition, the queries it runs and the inputs it reads."""
    doc = core().explain_kpi(kpi_id)
    if as_json:
        print_json(doc)
        return
    out.print(f"[bold]{doc['id']}[/]: {escape(doc['name']['en'])} ({doc['kind']})")
    out.print(f"definition: {escape(doc['definition']['en'])}", highlight=False)
    out.print(f"source: {escape(doc['source'])}; owner: {escape(doc['owner'])}", highlight=False)
    out.print("inputs: " + escape(", ".join(doc["inputs"]) or "-"), highlight=False)
    if doc["method"]:
        out.print(f"method: {escape(doc['method'])}", highlight=False)
    for q in doc["queries"]:
        out.print("query:", highlight=False)
        out.print(escape(q), highlight=False)


@kpi_app.command("import")
def kpi_import(
    file: Annotated[
        Path, typer.Argument(help="CSV: kpi,area,period,value,source,source_date,licence")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Import KPI series from a CSV file (validated whole; errors name file, line and field)."""
    doc = core().import_kpis(file)
    if as_json:
        print_json(doc)
        return
    out.print(
        f"imported {doc['rows']} values of {', '.join(doc['kpis']) or 'no KPI'} from {doc['file']}"
    )


@report_app.command("annual")
def report_annual(
    agenda: Annotated[str, typer.Option("--agenda", help="Strategy file, or a bundled id.")] = "",
    year: Annotated[int, typer.Option(help="The report's year.")] = 0,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for index.html and report.pdf.")
    ] = Path(),
    lang: LangOption = "sv",
    region_dir: Annotated[
        Path | None, typer.Option("--region", help="Region folder (KPIs on health records).")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="Render from a saved snapshot.json instead of live data.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The annual report: per priority its measures, owners and indicators with their figures."""
    if snapshot is None and (not agenda or not year):
        raise BryggaError("give --agenda and --year (or --snapshot to re-render a saved report)")
    if out_dir == Path():
        raise BryggaError("give --out: the folder to write the report to")
    doc = core().annual_report(
        agenda, year, out_dir, lang=_lang(lang), region=region_dir, snapshot=snapshot
    )
    if as_json:
        print_json(doc)
        return
    out.print(f"wrote {doc['html']}, {doc['pdf']} and {doc['snapshot']} in {doc['seconds']} s")


# --- Ecosystem ---------------------------------------------------------------------------

ecosystem_app = typer.Typer(
    rich_markup_mode=None,
    help="The ecosystem front door: directory, needs -> offerings, inquiries.",
    no_args_is_help=True,
)
app.add_typer(ecosystem_app, name="ecosystem")
LangOption = Annotated[str, typer.Option("--lang", help="sv or en.")]


def _actor() -> str:
    """Who runs a command, for the audit log (BRYGGA_USER or the OS user)."""
    from brygga.privacy.noise import current_user

    return f"cli:{current_user()}"


@ecosystem_app.command("import")
def ecosystem_import(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON file of profiles (entries: [...]).")],
    publish: Annotated[
        bool, typer.Option(help="Publish at once (the file has been reviewed); else drafts.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import directory profiles: the whole file is checked first; nothing half-imported."""
    actor = _actor()
    doc = core().ecosystem.import_file(file, actor=actor, reviewer=actor if publish else None)
    if as_json:
        print_json(doc)
        return
    out.print(
        f"{doc['created']} created, {doc['updated']} updated, {doc['unchanged']} unchanged, "
        f"{doc['published']} published.",
        highlight=False,
    )


@ecosystem_app.command("seed")
def ecosystem_seed(as_json: JsonFlag = False) -> None:
    """Import the packaged directory (the Skåne and Stockholm strategies' actors, the KSS
    nodes), published."""
    doc = core().ecosystem.seed(actor=_actor())
    if as_json:
        print_json(doc)
        return
    out.print(f"{doc['created']} created, {doc['updated']} updated, "
              f"{doc['unchanged']} unchanged.", highlight=False)  # fmt: skip


@ecosystem_app.command("list")
def ecosystem_list(
    type: Annotated[
        str | None,
        typer.Option("--type", help="actor, infrastructure, testbed, support or programme."),
    ] = None,
    area: Annotated[
        str | None,
        typer.Option(
            "--area",
            help="A therapy or technology area or support kind (atmp, diabetes, funding ...).",
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="skane, stockholm, national, denmark, international."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Also drafts, withdrawn and expired entries.")
    ] = False,
    lang: LangOption = "sv",
    as_json: JsonFlag = False,
) -> None:
    """The directory's entries (published and not expired unless --all)."""
    docs = core().ecosystem.entries(
        type=type, area=area, region=region, include_hidden=all_, lang=lang
    )
    if as_json:
        print_json(docs)
        return
    print_table(
        f"Directory ({len(docs)} entries)",
        ["id", "name", "type", "region", "status"],
        [[d["id"], d["name"], d["type"], d["region"], d["status"]] for d in docs],
    )


@ecosystem_app.command("match")
def ecosystem_match(
    need: Annotated[
        Path,
        typer.Argument(
            help="NEED.yaml: title, description, optional areas, types, trl, languages, region, sme."
        ),
    ],
    limit: Annotated[int, typer.Option(min=1, max=50, help="How many offerings.")] = 10,
    lang: Annotated[
        str | None, typer.Option("--lang", help="sv or en (default: the need's).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rank the directory's offerings for a need and say why for each."""
    ranked = core().ecosystem.match(need, limit=limit, lang=lang)
    if as_json:
        print_json(ranked)
        return
    print_table(
        "Offerings",
        ["id", "name", "type", "score", "why"],
        [[r["id"], r["name"], r["type"], r["score"], "; ".join(r["reasons"])] for r in ranked],
    )


@ecosystem_app.command("escalate")
def ecosystem_escalate(as_json: JsonFlag = False) -> None:
    """The scheduled run: escalate inquiries past their promised answer day (Swedish working
    days) to the coordinating office, and send queued e-mails (demo sender: <data
    dir>/outbox/messages.jsonl)."""
    doc = core().ecosystem_round()
    if as_json:
        print_json(doc)
        return
    out.print(f"{doc['escalated']} escalated; {doc['sent']} e-mails sent, "
              f"{doc['failed']} failed.", highlight=False)  # fmt: skip


def _day(value: str | None, option: str) -> Any:
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BryggaError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


@ecosystem_app.command("figures")
def ecosystem_figures(
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Figures for the agenda follow-up: inquiries, answers within five working days, positive
    answers, median working days to the first answer (counts through the disclosure policy)."""
    doc = core().ecosystem_figures(start=_day(start, "--from"), end=_day(end, "--to"))
    if as_json:
        print_json(doc)
        return
    rows = [[k.replace("_", " "), v["display"] if isinstance(v, dict) else v]
            for k, v in doc.items() if k != "disclosure"]  # fmt: skip
    print_table("Ecosystem inquiries", ["figure", "value"], rows)
    out.print(doc["disclosure"], highlight=False)


@ecosystem_app.command("publish")
def ecosystem_publish(
    entry: Annotated[str, typer.Argument(help="The entry's id (slug) or number.")],
    as_json: JsonFlag = False,
) -> None:
    """Publish a reviewed draft (shown for the validity period)."""
    doc = core().ecosystem.publish(entry, reviewer=_actor())
    print_json(doc) if as_json else out.print(f"{doc['id']} published until {doc['expires_at']}.")


@ecosystem_app.command("renew")
def ecosystem_renew(
    entry: Annotated[str, typer.Argument(help="The entry's id (slug) or number.")],
    as_json: JsonFlag = False,
) -> None:
    """Renew a published entry after checking it (another validity period)."""
    doc = core().ecosystem.renew(entry, reviewer=_actor())
    print_json(doc) if as_json else out.print(f"{doc['id']} renewed until {doc['expires_at']}.")


@ecosystem_app.command("withdraw")
def ecosystem_withdraw(
    entry: Annotated[str, typer.Argument(help="The entry's id (slug) or number.")],
    as_json: JsonFlag = False,
) -> None:
    """Withdraw an entry from the directory."""
    doc = core().ecosystem.withdraw(entry, actor=_actor())
    print_json(doc) if as_json else out.print(f"{doc['id']} withdrawn.")


# --- Entry point -------------------------------------------------------------------------


# Set by a command whose work is complete and durable once it returns (``main``'s quick exit).
_quick_exit = False


def _done_quickly() -> None:
    """Let ``main`` end the process at once after this command (see ``_exit``)."""
    global _quick_exit
    _quick_exit = True


def _exit(code: int) -> NoReturn:
    """End the process without the interpreter's tear-down: freeing hundreds of modules,
    NumPy's and PyArrow's state and the memory-mapped arrays took 0.2 s of a ``brygga
    feasibility`` process at scale 1.0 (measured: a fifth of issue 18's one second), after
    its answer was printed and its question recorded and audited (committed, fsynced)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    logging.shutdown()  # what the interpreter's exit would still have flushed
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """The ``brygga`` command (``argv``: its arguments; None: the process's own). Run as the
    process itself (no ``argv``), a command that allows it ends the process on return, when
    no other thread is running and DuckDB was not opened."""
    code = _main(argv)
    # Not after DuckDB was used: its connection's close removes its spill files.
    quick = _quick_exit and threading.active_count() == 1 and "duckdb" not in sys.modules
    if argv is None and quick:
        _exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    try:
        app(args=argv, standalone_mode=False)
    except BryggaError as exc:
        # Escaped: a message's own brackets (``brygga[spark]``) are not Rich markup.
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    except ClickException as exc:  # usage errors (missing or unknown options) are user errors
        exc.show()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
