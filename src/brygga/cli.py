"""The ``brygga`` command line: parse, call one core function, print.

User errors (``BryggaError``) are printed without a traceback and exit with code 2; anything else
is a bug and shows its traceback. ``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

__all__ = ["app", "main"]

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import ClickException

from brygga.errors import BryggaError

if TYPE_CHECKING:
    from brygga.platform import Brygga

app = typer.Typer(
    name="brygga",
    help="Brygga: regional health data for research, feasibility, privacy and prevention.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

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
    table = Table(title=title, title_justify="left")
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
    from brygga.synth.calibration import calibration_report, render_report

    region = core().region(region_dir)
    rows = calibration_report(region)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    out.print(render_report(region, rows))


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
        print_json({"path": str(region.path), **region.manifest, "tables": region.tables()})
        return
    facts = {k: v for k, v in region.manifest.items() if isinstance(v, str | int | float)}
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
    """Anonymize a CSV extract: k-anonymity, l-diversity, t-closeness by global recoding."""
    from brygga.privacy.anonymize import anonymize as run_anonymize

    result = run_anonymize(input_csv, config, out_file, hierarchies=hierarchies)
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    out.print(f"Anonymized extract written to {summary['output']}")
    print_table(
        "Transformation",
        ["quasi-identifier", "level", "of"],
        [[k, v["level"], v["max_level"]] for k, v in summary["transformation"].items()],
    )
    m = summary["metrics"]
    limit = summary["suppression_limit"]
    print_table(
        f"Result ({summary['metric']} minimized)",
        ["measure", "value"],
        [
            ["records in", f"{summary['records']:,}"],
            ["records written", f"{summary['written']:,}"],
            ["suppressed", f"{summary['suppressed']:,} (limit {limit['records']:,})"],
            ["equivalence classes", f"{m['classes']:,}"],
            ["precision loss", f"{m['precision']:.4f}"],
            ["discernibility", f"{m['discernibility']:,.0f}"],
            ["average class size", f"{m['aecs']:.1f}"],
            [
                "lattice nodes evaluated",
                f"{summary['search']['evaluated_nodes']:,} of {summary['search']['lattice_nodes']:,}",
            ],
            ["seconds", f"{summary['seconds']['total']:.2f}"],
        ],
    )


@app.command()
def feasibility(
    criteria_file: Annotated[Path, typer.Argument(help="Eligibility criteria (YAML or JSON).")],
    region_dir: RegionOption,
    engine: Annotated[str, typer.Option(help="duckdb (default), spark or reference.")] = "duckdb",
    index_date: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD; default: the criteria's, else today.")
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
    if as_json:
        print_json(result.as_dict())
        return
    for warning in result.warnings:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
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


criteria_app = typer.Typer(help="Eligibility criteria documents.", no_args_is_help=True)
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


audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)
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
        ["care unit", "capacity", "eligible", "invited"],
        [
            [u, c["capacity"], c["eligible"]["display"], c["invited"]["display"]]
            for u, c in doc["units"].items()
        ],
    )


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
        corr = doc["gradient"][dim]["correlation"]
        print_table(
            f"By {dim.replace('_', ' ')} (need-reach correlation: {corr})",
            [dim.replace("_", " "), "target", "reached", "reach", "need", "flag"],
            rows,
        )
    for path in doc.get("charts", []):
        out.print(f"Chart: {path}")


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

budget_app = typer.Typer(help="Differential-privacy budgets of approved data projects.")
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
    from brygga.studies.seed import seed_demo

    summary = seed_demo(region, database_url(), volunteers=volunteers, ctgov_file=ctgov).summary()
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


@app.command()
def match(
    region: Annotated[
        Path | None, typer.Option(help="Region for records matching (else self-reports only).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The scheduled matching run: expire old invitations, invite new candidates, and deliver
    queued notifications (demo file sender: <data dir>/outbox/messages.jsonl)."""
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
def optimize(
    region_dir: Annotated[Path, typer.Argument(help="A region folder.")],
    threads: Annotated[int | None, typer.Option(help="DuckDB threads (default: all).")] = None,
    memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit.")] = "3GB",
    as_json: JsonFlag = False,
) -> None:
    """Build the region's optimized DuckDB database (sorted native tables, population table,
    dense person index), used by every DuckDB query on the region until the region changes."""
    from brygga.records import optimize as optimized

    region = core().region(region_dir)
    if as_json:
        report = optimized.build(region, threads=threads, memory_limit=memory_limit)
    else:
        # Tables take from seconds to many minutes each at scale 1.0: say which one is running.
        with err.status("Optimizing") as status:

            def progress(table: str) -> None:
                status.update(f"Optimizing {region.name}: {table}")

            report = optimized.build(
                region, threads=threads, memory_limit=memory_limit, progress=progress
            )
    doc = {
        "path": str(report.path),
        "seconds": round(report.seconds, 1),
        "bytes": report.bytes,
        "population": report.population,
        "rows": report.tables,
    }
    if as_json:
        print_json(doc)
        return
    print_table(
        f"Optimized {report.path} in {doc['seconds']} s ({report.bytes / 1e9:.2f} GB)",
        ["table", "rows"],
        [[k, f"{v:,}"] for k, v in report.tables.items()],
    )


# --- Entry point -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
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
