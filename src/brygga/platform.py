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
from typing import Any

from brygga import audit
from brygga.cohort.criteria import Criteria, load_criteria
from brygga.cohort.engine import Engine
from brygga.cohort.engines import engine_for
from brygga.cohort.explain import explain
from brygga.cohort.feasibility import FeasibilityResult, asked_feasibility
from brygga.config import Settings, get_settings
from brygga.db.migrate import ensure_current
from brygga.db.session import database_url, session
from brygga.errors import InputError
from brygga.prevention.equity import equity_report
from brygga.prevention.evaluation import evaluate as evaluate_program
from brygga.prevention.evaluation import read_invitations
from brygga.prevention.programs import ProgramPlan, load_program, plan_program
from brygga.prevention.stratify import risk_report
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

__all__ = ["Brygga"]


class Brygga:
    """The platform: settings, database, regions, engines, policy, audit and outbox."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._regions: dict[Path, tuple[int, Region]] = {}
        self._lock = threading.Lock()
        self._database: str | None = None

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

    def sender(self) -> outbox.FileSender:
        """Where notifications go: the demo file sender under the data directory."""
        return outbox.FileSender(self.data_dir / "outbox" / "messages.jsonl")

    # --- Operations -------------------------------------------------------------------------

    def check_criteria(self, path: str | Path, *, lang: str = "sv") -> list[str]:
        """Validate a criteria file without a region and say in words what it asks
        (``brygga criteria check``); a mistake raises ``DocumentError`` naming the field."""
        return explain(load_criteria(path), lang, str(path))

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
        return self.plan(program, region, **options).summary(policy)

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
        with session(self.database) as s:
            delivered = outbox.deliver(
                s, self.sender(), limit=100_000, portal_url=self.settings.portal_url
            )
        policy = self.policy()
        return {
            "expired": single(policy, expired),
            "invited": {k: single(policy, v) for k, v in invited.items()},
            "notifications": {k: single(policy, v) for k, v in delivered.items()},
            "disclosure": policy.description,
        }
