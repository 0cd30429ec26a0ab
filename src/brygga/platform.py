"""The core object: one ``Brygga`` per process, built once from the settings.

Datasette's model: the command line, the web app, the demo and the benchmarks each build one
``Brygga`` and call its operations; nothing else assembles settings, database, regions, engines
and the disclosure policy. It owns

* the settings tree (``config.Settings``) and the data directory;
* the operational database URL (migrated to the newest schema on first use);
* the regions it has opened (one ``Region`` per folder, reopened when its manifest changes) and
  their shared cohort engines (``cohort.engines.engine_for``);
* the disclosure policy, chosen here and only here (``policy``): the deployment's policy from
  the settings, raw counts only for a synthetic region that asks for them, and the cell key
  method only for a region that carries record keys;
* the audit log and the outbox's sender.

Operations return documents (dicts) that already passed the policy; the callers print or
render them.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brygga import audit, catalogue
from brygga.cohort.criteria import Criteria, load_criteria
from brygga.cohort.engine import Engine
from brygga.cohort.engines import engine_for
from brygga.cohort.feasibility import FeasibilityResult, asked_feasibility
from brygga.config import Settings, get_settings
from brygga.db.migrate import ensure_current
from brygga.db.session import database_url, session
from brygga.errors import InputError, NotFoundError
from brygga.prevention.equity import equity_report
from brygga.prevention.evaluation import evaluate as evaluate_program
from brygga.prevention.evaluation import read_invitations
from brygga.prevention.programs import Program, ProgramPlan, load_program, plan_program
from brygga.prevention.stratify import risk_report
from brygga.prevention.worklist import WorkItem, program_files, worklist
from brygga.privacy.disclosure import (
    TeamPolicy,
    configured_policy,
    region_policy,
)
from brygga.privacy.gate import single
from brygga.privacy.noise import current_user
from brygga.privacy.questions import Asker
from brygga.records.store import Region
from brygga.studies import invitations, matching, outbox
from brygga.studies.senders import Sender, senders_from_settings

if TYPE_CHECKING:  # the catalogue (and rdflib) loads on first use: a third of startup
    from brygga.catalogue.dcat import Catalogue, DatasetEntry

__all__ = ["Brygga"]


class Brygga:
    """The platform: settings, database, regions, engines, policy, audit and outbox."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._regions: dict[Path, tuple[int, Region]] = {}
        self._lock = threading.Lock()
        self._database: str | None = None
        self._plans: dict[tuple[Any, ...], ProgramPlan] = {}
        self._reports: dict[tuple[Any, ...], dict[str, Any]] = {}  # disclosed, small
        # Catalogue entries per (region folder, manifest stamp, policy): the page is public and
        # must not re-read the person table on every request.
        self._datasets: dict[tuple[Path, int, str, bool], DatasetEntry] = {}

    # --- What it owns -----------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir)

    @property
    def database(self) -> str:
        """The operational database's URL, migrated to the newest schema once per process."""
        if self._database is None:
            self._database = ensure_current(database_url(self.settings))
        return self._database

    @property
    def audit_log(self) -> Path:
        return audit.default_path()

    def region(self, path: str | Path | Region) -> Region:
        """The region in ``path``, opened once and reopened when its manifest changes."""
        if isinstance(path, Region):
            return path
        folder = Path(path).resolve()
        manifest = folder / "manifest.json"
        stamp = manifest.stat().st_mtime_ns if manifest.is_file() else -1
        with self._lock:
            known = self._regions.get(folder)
            if known is not None and known[0] == stamp:
                return known[1]
        region = Region.open(folder)  # outside the lock: it reads the manifest and tables
        with self._lock:
            self._regions[folder] = (stamp, region)
        return region

    def engine(self, region: str | Path | Region, name: str | None = None) -> Engine:
        """The region's shared cohort engine (``BRYGGA_ENGINE`` unless ``name`` says)."""
        return engine_for(name or self.settings.engine, self.region(region))

    def policy(
        self, region: str | Path | Region | None = None, *, raw: bool = False, team: bool = False
    ) -> Any:
        """The disclosure policy for outputs about ``region`` (or the operational database's
        own counts when ``region`` is None): the one place the policy is chosen. ``raw`` is
        refused unless the region is synthetic; ``team`` is a study team looking at its own
        recruitment (exact, ``TeamPolicy``)."""
        if team:
            return TeamPolicy()
        if region is None:
            if raw:
                raise InputError("raw counts are only for a synthetic region's outputs")
            return configured_policy(self.settings.disclosure)
        return region_policy(self.region(region), raw=raw, settings=self.settings.disclosure)

    def catalogue(
        self, regions: list[str | Path | Region] | None = None, *, raw: bool = False
    ) -> Catalogue:
        """The dataset catalogue (DCAT-AP / HealthDCAT-AP) of ``regions``; each region's
        population is disclosed under ``policy(region)`` like any other count."""
        entries = []
        for r in regions or []:
            region = self.region(r)
            policy = self.policy(region, raw=raw)
            manifest = region.path / "manifest.json"
            stamp = manifest.stat().st_mtime_ns if manifest.is_file() else -1
            key = (region.path.resolve(), stamp, policy.description, raw)
            with self._lock:
                entry = self._datasets.get(key)
            if entry is None:
                entry = catalogue.describe(region, policy)  # outside the lock: it reads the tables
                with self._lock:
                    self._datasets[key] = entry
            entries.append(entry)
        return catalogue.build(entries, self.settings.catalogue, self.settings.notify.public_url)

    def sender(self, file: Path | None = None) -> Sender:
        """Where notifications go, as the settings choose (``BRYGGA_NOTIFY_SENDER``): e-mail
        through SMTP or to the file of JSON lines, SMS to the file (no SMS gateway yet).
        ``file``: that file when ``BRYGGA_NOTIFY_FILE`` is unset (default: under the data
        directory). A new one per flush: an SMTP sender holds one connection."""
        default = file or self.data_dir / "outbox" / "messages.jsonl"
        return senders_from_settings(self.settings.notify, default)

    def notify(
        self,
        url: str | None = None,
        *,
        file: Path | None = None,
        limit: int | None = None,
        stop: threading.Event | None = None,
    ) -> dict[str, int]:
        """Deliver the queued notifications that are due, from the database at ``url``
        (default: the platform's), through ``sender(file)``. Exact counts by outcome (sent,
        in_app, retrying, failed): in-process only, disclose them before they leave."""
        return outbox.deliver(
            url or self.database, self.sender(file), self.settings.notify, limit=limit, stop=stop
        )

    def notify_disclosed(self) -> dict[str, Any]:
        """``brygga notify``: deliver now; the counts disclosed."""
        delivered = self.notify()
        policy = self.policy()
        return {
            "notifications": {k: single(policy, v) for k, v in delivered.items()},
            "disclosure": policy.description,
        }

    # --- Operations -------------------------------------------------------------------------

    def feasibility(
        self,
        criteria: Criteria | str | Path,
        region: str | Path | Region,
        *,
        engine: str | None = None,
        index_date: date | None = None,
        raw: bool = False,
        noise: str | None = None,
        user: str | None = None,
        asker: Asker | None = None,
    ) -> FeasibilityResult:
        """Count, attrition and breakdowns for ``criteria`` (a document or a file), disclosed,
        through the question guard (``privacy.questions``: audited always; budgets, rate limit
        and sweep refusal on a region that is not synthetic). ``user``/``asker``: who asks
        (default: ``BRYGGA_USER`` or the OS user, as ``cli:<user>``)."""
        if not isinstance(criteria, Criteria):
            criteria = load_criteria(criteria)
        user = user or current_user()
        region = self.region(region)
        return asked_feasibility(
            criteria,
            region,
            policy=self.policy(region, raw=raw),
            asker=asker or Asker(f"cli:{user}"),
            url=self.database,
            engine=engine or self.settings.engine,
            index_date=index_date,
            raw=raw,
            noise=noise,
            user=user,
        )

    # --- Prevention -------------------------------------------------------------------------

    def risk(
        self, region: str | Path | Region, *, raw: bool = False, **options: Any
    ) -> dict[str, Any]:
        """``brygga risk``: the region's risk categories by group, disclosed."""
        region = self.region(region)
        return risk_report(region, self.policy(region, raw=raw), **options)

    def plan(
        self,
        program: str | Path,
        region: str | Path | Region,
        *,
        index_date: date | None = None,
        engine: str | None = None,
    ) -> ProgramPlan:
        """A prevention program's plan (exact, in-process only: disclose with ``program``)."""
        return plan_program(
            load_program(program), self.region(region), index_date=index_date, engine=engine
        )

    def program(
        self, program: str | Path, region: str | Path | Region, *, raw: bool = False, **options: Any
    ) -> dict[str, Any]:
        """``brygga program``: eligible and invited per care unit, disclosed."""
        policy = self.policy(region, raw=raw)  # refuse --raw before any work
        plan = self.plan(program, region, **options)
        return plan.summary(policy, names=plan.unit_names())

    @property
    def programs_dir(self) -> Path:
        """Where the region's prevention programs (YAML) are kept for the care units."""
        return self.settings.programs_dir or self.data_dir / "programs"

    def programs(self) -> dict[str, Program]:
        """slug -> program, every program file in ``programs_dir`` (a bad file is an error
        naming it: the care units' page must not silently drop a program)."""
        return {slug: load_program(path) for slug, path in program_files(self.programs_dir).items()}

    def program_plan(self, slug: str, region: str | Path | Region) -> ProgramPlan:
        """The plan of one of ``programs()``, computed once per program file and region
        version (a plan holds the region's risk inputs: two are kept)."""
        path = program_files(self.programs_dir).get(slug)
        if path is None:
            raise NotFoundError(f"no prevention program {slug!r}")
        region = self.region(region)
        key = (str(path), path.stat().st_mtime_ns, str(region.path), region.manifest.get("created"))
        with self._lock:
            plan = self._plans.get(key)
        if plan is None:
            plan = self.plan(path, region)
            with self._lock:
                self._plans[key] = plan
                while len(self._plans) > 2:
                    self._plans.pop(next(iter(self._plans)))
        return plan

    def program_equity(self, slug: str, region: str | Path | Region) -> dict[str, Any]:
        """``equity`` for one of ``programs()``, disclosed, computed once per program file and
        region version (the care units' page)."""
        path = program_files(self.programs_dir).get(slug)
        if path is None:
            raise NotFoundError(f"no prevention program {slug!r}")
        region = self.region(region)
        key = ("equity", str(path), path.stat().st_mtime_ns, str(region.path),
               region.manifest.get("created"))  # fmt: skip
        with self._lock:
            found = self._reports.get(key)
        if found is None:
            found = self.equity(region, program_file=path)
            with self._lock:
                self._reports[key] = found
                while len(self._reports) > 8:
                    self._reports.pop(next(iter(self._reports)))
        return found

    def worklist(
        self, slug: str, region: str | Path | Region, *, care_unit: int, legal_basis: str,
        actor: str,
    ) -> list[WorkItem]:  # fmt: skip
        """One care unit's invited people with why (identifiable; audited first)."""
        plan = self.program_plan(slug, region)
        return worklist(
            plan, care_unit=care_unit, legal_basis=legal_basis, actor=actor,
            audit_log=self.audit_log,
        )  # fmt: skip

    def equity(
        self, region: str | Path | Region, *, raw: bool = False, **options: Any
    ) -> dict[str, Any]:
        """``brygga equity``: need and reach by deprivation and municipality, disclosed."""
        region = self.region(region)
        return equity_report(region, self.policy(region, raw=raw), **options)

    def evaluate(
        self,
        invitations_file: str | Path,
        region: str | Path | Region,
        *,
        raw: bool = False,
        program: str | Path | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """``brygga evaluate``: invited against matched not-yet-invited people, disclosed."""
        region = self.region(region)
        policy = self.policy(region, raw=raw)
        rules = load_program(program).reimbursement if program else None
        return evaluate_program(
            region, read_invitations(Path(invitations_file)), policy, reimbursement=rules, **options
        )

    # --- Studies ----------------------------------------------------------------------------

    def eligibility(self, region: str | Path | Region | None) -> Any:
        """Who a study's criteria find in the region's records (None: self-reports only)."""
        if region is None:
            return lambda _study: None
        return matching.RecordsEligibility(self.region(region), self.settings.engine)

    def match(self, region: str | Path | Region | None = None) -> dict[str, Any]:
        """The scheduled matching run: expire old invitations, invite new candidates, deliver
        queued notifications. Counts of people leave disclosed; the database keeps exact ones."""
        eligible = self.eligibility(region)
        with session(self.database) as s:
            expired = invitations.expire_due(s)
            invited = matching.match_all(s, eligible)
        delivered = self.notify()
        policy = self.policy()
        return {
            "expired": single(policy, expired),
            "invited": {k: single(policy, v) for k, v in invited.items()},
            "notifications": {k: single(policy, v) for k, v in delivered.items()},
            "disclosure": policy.description,
        }
