"""``make demo``: a small synthetic Skåne, its summary and one example count.

Run as ``python -m brygga.demo``. The region is generated once under ``data/demo/`` and reused
on later runs (delete the folder, or pass ``--fresh``, to generate it again).
"""

from __future__ import annotations

__all__ = [
    "CTGOV_SAMPLE",
    "EXAMPLE",
    "HIGHLIGHTS",
    "SCALE",
    "SEED",
    "ctgov_file",
    "demo_region",
    "front_door",
    "main",
    "run",
]

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from brygga.cohort.criteria import parse_criteria
from brygga.config import ContactSettings, get_settings, secret
from brygga.errors import BryggaError, NotFoundError
from brygga.platform import Brygga
from brygga.records.store import Region
from brygga.synth import generate, identities_path
from brygga.synth.calibration import calibration_report
from brygga.synth.generator import GENERATOR_VERSION

SCALE = 0.02
SEED = 1
# The demo's contact addresses on the information pages: examples that reach nobody (the
# reserved .example domain); BRYGGA_CONTACT_* overrides any of them.
DEMO_CONTACT = ContactSettings(
    email="brygga@region.example",
    phone="010-000 00 00",
    postal_address="Regionen, Brygga, Box 0000, 000 00 Exempelstad",
    research_office_email="forskning@region.example",
    support_email="brygga-support@region.example",
    dpo_email="dataskyddsombud@region.example",
    dpo_postal_address="Regionen, Box 0000, 000 00 Exempelstad",
)


def demo_contact(settings: ContactSettings | None = None) -> ContactSettings:
    """The demo's example addresses, with those the settings give instead."""
    given = (settings or get_settings().contact).model_dump(exclude_none=True)
    return DEMO_CONTACT.model_copy(update=given)


HIGHLIGHTS = (
    "residents (total)",
    "share aged 65+",
    "life expectancy at birth, female",
    "diagnosed diabetes (E10-E14), all ages",
    "hypertension (I10-I15), adults",
    "myocardial infarction (I21-I22), new events per 100,000 a year",
    "systolic blood pressure, mean",
    "primary-care visits per person a year",
)

# Type 2 diabetes, 40-75, metformin dispensed in the last year, latest HbA1c >= 53 mmol/mol.
EXAMPLE = {
    "name": "Type 2 diabetes on metformin, latest HbA1c >= 53, age 40-75",
    "demographics": {"age": {"min": 40, "max": 75}},
    "include": [
        {"condition": {"codes": ["E11"], "vocabulary": "ICD10"}},
        {"drug": {"codes": ["A10BA02"], "vocabulary": "ATC", "within": {"days_before": 365}}},
        {
            "measurement": {
                "codes": ["HbA1c"],
                "value": {"min": 53},
                "latest": True,
                "within": {"days_before": 365},
            }
        },
    ],
}


def demo_region(platform: Brygga) -> Path:
    """Where the demo keeps its region: ``demo/skane`` in the data directory (``BRYGGA_DATA_DIR``,
    default ``data``), beside the database every command opens by default."""
    return platform.data_dir / "demo" / "skane"


def _region(out: Path, fresh: bool, console: Console) -> Region:
    if not fresh and (out / "manifest.json").is_file():
        try:
            region = Region.open(out)
            m = region.manifest
            if (m.get("scale"), m.get("seed"), m.get("generator_version")) == (
                SCALE,
                SEED,
                GENERATOR_VERSION,
            ):
                console.print(f"Reusing the demo region in {out} (use --fresh to regenerate).")
                return region
        except BryggaError:
            pass
    console.print(f"Generating a synthetic Skåne at scale {SCALE} (about 28,000 residents) ...")
    return generate(
        region="skane", out=out, scale=SCALE, seed=SEED, force=True, progress=True
    ).region


def run(out: Path, fresh: bool = False) -> Region:
    console = Console()
    region = _region(out, fresh, console)
    rows = calibration_report(region)
    people = Table(
        title=f"Region {region.name}: records {region.manifest['period']['start']} to "
        f"{region.manifest['period']['end']}",
        title_justify="left",
    )
    people.add_column("table")
    people.add_column("rows", justify="right")
    for name, count in region.row_counts.items():
        people.add_row(name, f"{count:,}")
    console.print(people)
    by_name = {r.measure: r for r in rows}
    cal = Table(title="Calibration highlights (targets from region-facts.md)", title_justify="left")
    for col in ("measure", "target", "generated", "within tolerance"):
        cal.add_column(col, justify="left" if col == "measure" else "right")
    for name in HIGHLIGHTS:
        r = by_name[name]
        fmt = (lambda v: f"{v:.1%}") if r.target < 1 else (lambda v: f"{v:,.1f}")
        cal.add_row(name, fmt(r.target), fmt(r.value), "yes" if r.ok else "no")
    console.print(cal)
    within = sum(r.ok for r in rows)
    console.print(
        f"{within} of {len(rows)} targets within tolerance; full report: "
        f"{region.path / 'calibration.md'}"
    )
    end = region.manifest["period"]["end"]
    # Through the platform like every output: raw counts, allowed because the region is
    # synthetic, and the output says so.
    result = Brygga().feasibility(parse_criteria(EXAMPLE | {"index_date": end}), region, raw=True)
    console.print(
        f"\nExample count (DuckDB cohort engine, index date {end}): residents aged 40-75 with "
        f"type 2 diabetes, metformin dispensed in the last year and latest HbA1c >= 53 mmol/mol: "
        f"[bold]{result.count['display']}[/] [dim]({result.disclosure})[/]"
    )
    console.print(
        f"\nThe region is in [bold]{region.path}[/]; identities (kept apart) in "
        f"{identities_path(region.path)}.\nTry: .venv/bin/brygga synth-report {region.path}"
    )
    return region


# The ClinicalTrials.gov sample beside the checkout (``../shared``), as the tests find it.
CTGOV_SAMPLE = (
    Path(__file__).resolve().parents[2].parent / "shared/data/ctgov/ctgov-v2-studies-100.json"
)


# Entries the demo's Lunds universitet answers for (its researcher's inbox); the others are
# answered by the research office, as the coordinating office.
DEMO_PROVIDER_ENTRIES = ("lu-innovation", "lu-pregmp", "lu-business-track", "lunds-universitet")


def seed_ecosystem(url: str) -> None:
    """The packaged directory, published, with the demo university answering for its own."""
    from sqlalchemy import select

    from brygga.db.session import session
    from brygga.ecosystem.service import Ecosystem
    from brygga.studies.models import Organization

    eco = Ecosystem(url)
    eco.seed(actor="demo")
    with session(url) as s:
        org_id = s.scalar(select(Organization.id).where(Organization.name == "Lunds universitet"))
    for slug in DEMO_PROVIDER_ENTRIES:
        eco.assign(slug, org_id, actor="demo")


def ctgov_file(path: Path | None) -> Path:
    """The ClinicalTrials.gov records the demo imports studies from; a missing file stops the
    demo with a message saying where it was looked for and how to give another."""
    path = path or CTGOV_SAMPLE
    if not path.is_file():
        raise NotFoundError(
            f"the ClinicalTrials.gov sample {path} does not exist: the demo imports studies "
            "from it. Give another file with --ctgov FILE (ClinicalTrials.gov API v2 JSON), "
            "or --no-ctgov to seed only Brygga's own example studies."
        )
    return path


# The example prevention programs beside the package (the repository's examples/programs).
EXAMPLE_PROGRAMS = Path(__file__).resolve().parents[2] / "examples" / "programs"


def install_example_programs(directory: Path) -> list[str]:
    """Copy the example programs into an empty programs directory (the care units' pages list
    what is there); a directory that has programs is left alone."""
    if any(directory.glob("*.y*ml")) or not EXAMPLE_PROGRAMS.is_dir():
        return []
    directory.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in sorted(EXAMPLE_PROGRAMS.glob("*.yaml")):
        shutil.copyfile(source, directory / source.name)
        copied.append(source.name)
    return copied


def front_door(
    region: Region,
    console: Console,
    serve: bool,
    port: int,
    *,
    ctgov: Path | None = None,
    platform: Brygga | None = None,
) -> None:
    """Seed the operational database with demo staff, studies and volunteers; serve the web.

    The database is the platform's (``BRYGGA_DATABASE_URL``, else ``brygga.db`` in the data
    directory), the one every ``brygga`` command opens by default: ``brygga match`` after the
    demo sees the demo's studies and volunteers."""
    from brygga.studies.seed import seed_demo

    platform = platform or Brygga()
    url = platform.database
    console.print(
        "\nSeeding the front door: organizations, staff, studies, 3,000 volunteers, matching ..."
    )
    result = seed_demo(region.path, url, volunteers=3000, ctgov_file=ctgov)
    seed_ecosystem(url)
    console.print(
        "The ecosystem directory: /ekosystem (the two strategies' actors, the KSS nodes)."
    )
    logins = Table(title="Demo log-ins (synthetic people only)", title_justify="left")
    for col in ("role", "e-mail", "password"):
        logins.add_column(col)
    for row in result.summary()["logins"]:
        logins.add_row(row["role"], row["email"], row["password"])
    console.print(logins)
    people = result.summary()["demo_people"]
    console.print(
        f"The demo identity provider lists {people['listed']} people: {people['unregistered']} "
        f"not yet registered (try joining), {people['with_invitations']} with invitations.",
        highlight=False,
    )
    console.print(f"Studies: {result.studies}; database: {url}", highlight=False)
    copied = install_example_programs(platform.programs_dir)
    if copied:
        console.print(
            f"Prevention programs for the care units' pages: {', '.join(copied)} in "
            f"{platform.programs_dir}",
            highlight=False,
        )
    if not serve:
        console.print(
            f"Start the web with: .venv/bin/brygga serve --demo --region {region.path}",
            highlight=False,
        )
        return
    import secrets

    import uvicorn

    from brygga.web.app import WebConfig, create_app

    config = WebConfig(
        database_url=url,
        region=region.path,
        demo=True,
        raw_counts=False,
        secret_key=secret(get_settings().secret_key) or secrets.token_hex(32),
        # The server delivers the outbox every BRYGGA_NOTIFY_INTERVAL_SECONDS (web/notifier.py);
        # the demo's e-mail and SMS go to this file unless BRYGGA_NOTIFY_SENDER=smtp.
        outbox_path=region.path.parent / "outbox" / "messages.jsonl",
        contact=demo_contact(),
    )
    notify = get_settings().notify
    where = notify.file or config.outbox_path
    console.print(
        f"\n[bold]Brygga is on http://127.0.0.1:{port}[/] (DEMO identity provider). Ctrl-C stops it.\n"
        + (
            f"Notifications are delivered every {notify.interval_seconds:g} s"
            + (": e-mail through SMTP, SMS" if notify.sender == "smtp" else "")
            + f" to {where}"
            if notify.interval_seconds
            else "Notifications are not delivered by the server (BRYGGA_NOTIFY_INTERVAL_SECONDS=0)."
        )
    )
    uvicorn.run(create_app(config), host="127.0.0.1", port=port, log_level="warning")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brygga.demo", description=__doc__)
    ap.add_argument(
        "--out", type=Path, default=None, help="region folder (default: DATA_DIR/demo/skane)"
    )
    ap.add_argument(
        "--ctgov",
        type=Path,
        default=None,
        help=f"ClinicalTrials.gov API v2 JSON to import studies from (default: {CTGOV_SAMPLE})",
    )
    ap.add_argument(
        "--no-ctgov", action="store_true", help="seed only Brygga's own example studies"
    )
    ap.add_argument("--fresh", action="store_true", help="generate the region again")
    ap.add_argument(
        "--no-serve",
        action="store_true",
        help="seed the front door but do not start the web server",
    )
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    try:
        platform = Brygga()
        ctgov = None if args.no_ctgov else ctgov_file(args.ctgov)  # before any long work
        region = run(args.out or demo_region(platform), args.fresh)
        front_door(
            region, Console(), serve=not args.no_serve, port=args.port, ctgov=ctgov,
            platform=platform,
        )  # fmt: skip
    except BryggaError as exc:
        Console(stderr=True).print(
            f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True
        )
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
