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

import csv
import json
import secrets
import shutil
import threading
import time
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brygga import audit, catalogue, clock
from brygga.cohort.criteria import Criteria, load_criteria
from brygga.cohort.engine import Engine
from brygga.cohort.engines import engine_for
from brygga.cohort.feasibility import FeasibilityResult, asked_feasibility, eligible_persons
from brygga.config import Settings, get_settings
from brygga.db.direct import database_url
from brygga.db.migrate import ensure_current
from brygga.errors import DocumentError, InputError, NotFoundError, PermissionDenied
from brygga.forms import validate
from brygga.privacy.disclosure import (
    TeamPolicy,
    configured_policy,
    region_policy,
)
from brygga.privacy.gate import single
from brygga.privacy.noise import current_user
from brygga.privacy.people import people_counter
from brygga.privacy.questions import Asker, QuestionGuard
from brygga.records.store import Region
from brygga.util import lazy_module

if TYPE_CHECKING:  # the catalogue (and rdflib) loads on first use: a third of startup
    from brygga.access.applications import Actor
    from brygga.access.models import AccessOutput
    from brygga.access.people import People
    from brygga.access.statistics import RequestSpec
    from brygga.agenda.strategy import Strategy
    from brygga.catalogue.dcat import Catalogue, DatasetEntry
    from brygga.ecosystem.service import Ecosystem
    from brygga.prevention.programs import Program, ProgramPlan
    from brygga.prevention.worklist import WorkItem
    from brygga.studies.senders import Sender

# Imported on first use, for start-up time (issue 18): a feasibility question from the command
# line needs none of the database, access, agenda, ecosystem, prevention or studies code.
access_applications = lazy_module("brygga.access.applications")
access_checking = lazy_module("brygga.access.checking")
access_donors = lazy_module("brygga.access.donors")
access_extracts = lazy_module("brygga.access.extracts")
access_models = lazy_module("brygga.access.models")
access_people = lazy_module("brygga.access.people")
access_review = lazy_module("brygga.access.review")
access_statistics = lazy_module("brygga.access.statistics")
access_views = lazy_module("brygga.access.views")
agenda_halsolaget = lazy_module("brygga.agenda.halsolaget")
agenda_kpis = lazy_module("brygga.agenda.kpis")
agenda_snapshot = lazy_module("brygga.agenda.snapshot")
agenda_strategy = lazy_module("brygga.agenda.strategy")
cohort_explain = lazy_module("brygga.cohort.explain")
db_session = lazy_module("brygga.db.session")
ecosystem_feasibility = lazy_module("brygga.ecosystem.feasibility")
ecosystem_inquiries = lazy_module("brygga.ecosystem.inquiries")
ecosystem_service = lazy_module("brygga.ecosystem.service")
invitations = lazy_module("brygga.studies.invitations")
kpi_catalogue = lazy_module("brygga.agenda.catalogue")
kpi_imports = lazy_module("brygga.agenda.imported")
matching = lazy_module("brygga.studies.matching")
outbox = lazy_module("brygga.studies.outbox")
prevention_equity = lazy_module("brygga.prevention.equity")
prevention_evaluation = lazy_module("brygga.prevention.evaluation")
prevention_programs = lazy_module("brygga.prevention.programs")
prevention_stratify = lazy_module("brygga.prevention.stratify")
prevention_worklist = lazy_module("brygga.prevention.worklist")
privacy_budget = lazy_module("brygga.privacy.budget")
registry_consent = lazy_module("brygga.registry.consent")
sa = lazy_module("sqlalchemy")
studies_models = lazy_module("brygga.studies.models")
studies_registration = lazy_module("brygga.studies.registration")
studies_senders = lazy_module("brygga.studies.senders")

__all__ = ["PAGE_CACHE_SECONDS", "Brygga"]

# The public agenda and Hälsoläget pages are recomputed at most this often (figures by year and
# quarter do not change from one minute to the next; the computation reads whole tables).
PAGE_CACHE_SECONDS = 300


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
        self._page_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._refreshing: set[tuple[Any, ...]] = set()
        self._computing: dict[tuple[Any, ...], threading.Event] = {}

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

    @cached_property
    def ecosystem(self) -> Ecosystem:
        """The ecosystem front door on the operational database (directory, matching,
        inquiries): one per process, so the directory's ranking index is built once."""
        return ecosystem_service.Ecosystem(
            self.database, validity_days=self.settings.ecosystem.validity_days
        )

    def ecosystem_round(self) -> dict[str, Any]:
        """The ecosystem's scheduled run: escalate overdue inquiries to the coordinating
        office, then send the queued e-mails through the outbox's sender, to the addresses of
        staff accounts looked up now (a closed account gets nothing)."""
        escalated = self.ecosystem.escalate()
        sender = self.sender()
        try:
            delivered = self.ecosystem.deliver(
                sender,
                self._staff_addresses,
                url=self.settings.notify.public_url,
                errors=(OSError, studies_senders.DeliveryError),
            )
        finally:
            sender.close()
        return {"escalated": escalated, **delivered}

    def ecosystem_figures(
        self, *, start: date | None = None, end: date | None = None
    ) -> dict[str, Any]:
        """The agenda follow-up's figures for inquiries sent in [start, end]: counts through
        the release gate (they are counts of inquiries, not people, but every count that
        leaves passes it), and the shares and the median from the released counts only."""
        raw = self.ecosystem.figures(start=start, end=end)
        policy = self.policy()
        keys = ("inquiries", "answered", "answered_within_five_working_days",
                "with_positive_answer", "became_studies", "became_collaborations")  # fmt: skip
        counts = {k: single(policy, raw[k]) for k in keys}
        total = counts["inquiries"]["value"]

        def share(key: str) -> float | None:
            part = counts[key]["value"]
            return round(part / total, 3) if total and part is not None else None

        answered = counts["answered"]["value"]
        return {
            **counts,
            "share_answered_within_five_working_days": share("answered_within_five_working_days"),
            "share_with_positive_answer": share("with_positive_answer"),
            "median_working_days_to_first_answer": (
                raw["median_working_days_to_first_answer"] if answered else None
            ),
            "disclosure": policy.description,
        }

    def feasibility_data(
        self,
        criteria_yaml: str,
        therapy_area: str,
        region: str | Path | Region | None,
        *,
        user: str,
        database: str | None = None,
    ) -> dict[str, Any]:
        """The region's figures attached to a site-feasibility inquiry, every count through
        the release gate: the eligible count (a feasibility question: guarded and audited as
        ``user``), the registered volunteers who would match (open to the area, and eligible
        on their records when they consent to that, else on their self-report), and each
        recruiting study's overlap with the eligible set. Empty without criteria or region."""
        if not criteria_yaml.strip() or region is None:
            return {}
        try:
            criteria = studies_registration.criteria_from_yaml(criteria_yaml)
        except ValueError as exc:
            raise DocumentError(f"criteria_yaml: {exc}") from None
        region = self.region(region)
        policy = self.policy(region)
        result = self.feasibility(criteria, region, user=user, asker=Asker(user))
        eligible = np.asarray(
            eligible_persons(criteria, region, engine=self.settings.engine), dtype=np.int64
        )
        trial = studies_models.Study(
            id=0, area=therapy_area, healthy_volunteers=False, criteria_yaml=criteria_yaml
        )
        overlaps: list[tuple[int, np.ndarray]] = []
        titles: dict[int, tuple[str, str]] = {}
        with db_session.session(database or self.database) as s:  # the web app's own database
            people = matching.volunteers(s)
            cache = matching.RunCache(people)
            wants = cache.area(therapy_area) if len(people) else np.zeros(0, dtype=bool)
            on_records = cache.on_records(eligible) if len(people) else wants
            on_report = cache.self_report(trial, None, False) if len(people) else wants
            volunteers = int((wants & (on_records | on_report)).sum())
            studies = s.scalars(
                sa.select(studies_models.Study).where(studies_models.Study.status == "approved")
            ).all()
            records = matching.RecordsEligibility(region, self.settings.engine)
            for study in studies:
                if matching.recruiting(study):
                    overlaps.append((study.id, records(study)))
                    titles[study.id] = (study.title_sv, study.title_en)
        # The 2 + N figures leave together, as one table (an overlap must not be subtracted
        # from the eligible count to give away a small number of people left out).
        counter = people_counter(policy, region, eligible)
        _, shown_volunteers, by_study = ecosystem_feasibility.disclose_figures(
            counter, eligible, overlaps, volunteers
        )
        return {
            "region": region.name,
            "eligible": result.count,
            "volunteers": shown_volunteers,
            "overlapping_studies": [
                {
                    "study": sid,
                    "title_sv": titles[sid][0],
                    "title_en": titles[sid][1],
                    "overlap": by_study[sid],
                }
                for sid, _ in overlaps
            ],
            "disclosure": policy.description,
        }

    def _staff_addresses(self, kind: str, key: int | None) -> list[str]:
        """E-mail addresses of a staff account, an organization's staff (else the office) or
        the coordinating office (every active research-office account)."""
        with db_session.session(self.database) as s:
            query = sa.select(studies_models.StaffAccount.email).where(
                studies_models.StaffAccount.active.is_(True)
            )
            if kind == "staff":
                return list(s.scalars(query.where(studies_models.StaffAccount.id == key)))
            if kind == "organization":
                found = list(
                    s.scalars(query.where(studies_models.StaffAccount.organization_id == key))
                )
                if found:
                    return found
                # An organization with no active staff: the coordinating office is told, so an
                # inquiry is never sent into the void.
            return list(
                s.scalars(
                    query.where(studies_models.StaffAccount.role == ecosystem_inquiries.OFFICE_ROLE)
                )
            )

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
        return studies_senders.senders_from_settings(self.settings.notify, default)

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

    def check_criteria(self, path: str | Path, *, lang: str = "sv") -> list[str]:
        """Validate a criteria file without a region and say in words what it asks
        (``brygga criteria check``); a mistake raises ``DocumentError`` naming the field."""
        return cohort_explain.explain(load_criteria(path), lang, str(path))

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
        return prevention_stratify.risk_report(region, self.policy(region, raw=raw), **options)

    def plan(
        self,
        program: str | Path,
        region: str | Path | Region,
        *,
        index_date: date | None = None,
        engine: str | None = None,
    ) -> ProgramPlan:
        """A prevention program's plan (exact, in-process only: disclose with ``program``)."""
        return prevention_programs.plan_program(
            prevention_programs.load_program(program),
            self.region(region),
            index_date=index_date,
            engine=engine,
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
        return {
            slug: prevention_programs.load_program(path)
            for slug, path in prevention_worklist.program_files(self.programs_dir).items()
        }

    def program_plan(self, slug: str, region: str | Path | Region) -> ProgramPlan:
        """The plan of one of ``programs()``, computed once per program file and region
        version (a plan holds the region's risk inputs: two are kept)."""
        path = prevention_worklist.program_files(self.programs_dir).get(slug)
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
        path = prevention_worklist.program_files(self.programs_dir).get(slug)
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
        actor: str, asked_first: bool = False, only_asked: bool = False,
    ) -> list[WorkItem]:  # fmt: skip
        """One care unit's invited people with why (identifiable; audited first), those who
        asked to be invited (``prevention_invite`` standing now) marked, first or alone."""
        plan = self.program_plan(slug, region)
        with db_session.session(self.database) as s:
            asked = registry_consent.consenting_people(s, "prevention_invite")
        return prevention_worklist.worklist(
            plan, care_unit=care_unit, legal_basis=legal_basis, actor=actor,
            audit_log=self.audit_log, asked=asked, asked_first=asked_first,
            only_asked=only_asked,
        )  # fmt: skip

    def equity(
        self, region: str | Path | Region, *, raw: bool = False, **options: Any
    ) -> dict[str, Any]:
        """``brygga equity``: need and reach by deprivation and municipality, disclosed."""
        region = self.region(region)
        return prevention_equity.equity_report(region, self.policy(region, raw=raw), **options)

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
        rules = prevention_programs.load_program(program).reimbursement if program else None
        return prevention_evaluation.evaluate(
            region,
            prevention_evaluation.read_invitations(Path(invitations_file)),
            policy,
            reimbursement=rules,
            **options,
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
        with db_session.write_session(self.database) as s:  # one UPDATE: a short write of its own
            expired = invitations.expire_due(s)
        # Reads without a lock, then writes in short batches: a resident's consent change
        # never waits for the whole run (``matching.run``).
        invited = matching.run(self.database, eligible)
        delivered = self.notify()
        policy = self.policy()
        return {
            "expired": single(policy, expired),
            "invited": {k: single(policy, v) for k, v in invited.items()},
            "notifications": {k: single(policy, v) for k, v in delivered.items()},
            "disclosure": policy.description,
        }

    # --- Health-data access (access/) -------------------------------------------------------

    def access_actor(self, who: int | str) -> Actor:
        """The active staff account with id or e-mail ``who``, as ``access`` sees it."""
        with db_session.session(self.database) as s:
            if isinstance(who, int):
                staff = s.get(studies_models.StaffAccount, who)
            else:
                staff = s.scalar(
                    sa.select(studies_models.StaffAccount).where(
                        studies_models.StaffAccount.email == who.lower()
                    )
                )
            if staff is None or not staff.active:
                raise NotFoundError(f"no active staff account {who!r}")
            return access_applications.Actor(
                staff.id,
                staff.role,
                staff.email,
                staff.organization_id,
                staff.organization.name if staff.organization else None,
            )

    def _cohort(
        self,
        actor: Actor,
        criteria: Criteria,
        region: Region,
        *,
        donors_only: bool,
        within: Criteria | None = None,
    ) -> tuple[People, Any]:
        """The people of ``criteria`` (and of ``within``: a permit's cohort), donors only when
        asked, after the question guard admitted the question (audited always; limited on a
        region that is not synthetic). Returns them with the ticket to close."""
        guard = QuestionGuard(enforce=not region.synthetic)
        effective = criteria.effective_index_date()
        with db_session.write_session(self.database) as s:
            ticket = guard.admit(s, Asker(actor.ref), criteria, effective)
        donors = None
        if donors_only:
            with db_session.session(self.database) as s:
                donors = access_donors.donor_ids(
                    s
                )  # read now: a withdrawal counts from this moment
        engine = self.engine(region)
        people = access_people.cohort_people(engine, region, criteria, effective, donors)
        if within is not None:
            allowed = engine.persons(within, within.effective_index_date())
            keep = np.isin(people.person_id, np.asarray(allowed, dtype=np.int64))
            people = access_people.cohort_people(
                engine, region, criteria, effective, people.person_id[keep]
            )
        return people, (guard, ticket)

    def _close(self, question: Any, count: dict[str, Any], region: Region) -> None:
        guard, ticket = question
        with db_session.write_session(self.database) as s:
            guard.answered(s, ticket, count, region=region.name)

    def access_feasibility(
        self, actor: Actor, criteria_yaml: str, region: str | Path | Region, *,
        donors_only: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """How many people the application's cohort finds (donors only for a donation-based
        application), disclosed: what the applicant sees before applying."""
        criteria = access_applications.application_criteria(criteria_yaml)
        region = self.region(region)
        policy = self.policy(region)
        people, question = self._cohort(actor, criteria, region, donors_only=donors_only)
        count = access_statistics.disclosed_total(people, policy, region)
        self._close(question, count, region)
        return {
            "region": region.name,
            "index_date": people.index_date,
            "count": count,
            "disclosure": policy.description,
            "donors_only": donors_only,
        }

    def access_apply(
        self,
        actor: Actor,
        data: dict[str, Any],
        *,
        region: str | Path | Region | None = None,
        submit: bool = False,
    ) -> dict[str, Any]:
        """A new application (a draft, or submitted at once with ``submit`` and a region)."""
        with db_session.write_session(self.database) as s:
            application = access_applications.create_application(s, actor, data)
            application_id = application.id
        if submit:
            if region is None:
                raise InputError("submitting needs a region for the feasibility count")
            return self.access_submit(actor, application_id, region)
        return self.access_show(actor, application_id)

    def access_update(
        self, actor: Actor, application_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        with db_session.write_session(self.database) as s:
            application = access_applications.visible_application(s, actor, application_id)
            access_applications.update_application(s, actor, application, data)
        return self.access_show(actor, application_id)

    def access_submit(
        self, actor: Actor, application_id: int, region: str | Path | Region
    ) -> dict[str, Any]:
        """Submit with the disclosed feasibility count of its cohort."""
        with db_session.session(self.database) as s:
            application = access_applications.visible_application(s, actor, application_id)
            access_applications.check_submit(actor, application)
            criteria_yaml, donors_only = application.criteria_yaml, application.donation_based
        count = self.access_feasibility(actor, criteria_yaml, region, donors_only=donors_only)
        with db_session.write_session(self.database) as s:
            application = access_applications.visible_application(s, actor, application_id)
            access_applications.submit(s, actor, application, json.loads(_dumps(count)))
        return self.access_show(actor, application_id)

    def access_list(self, actor: Actor) -> dict[str, Any]:
        """The applications and permits ``actor`` may see."""
        settings = self.settings.access
        with db_session.session(self.database) as s:
            return {
                "applications": [
                    access_views.application_doc(a, settings)
                    for a in access_applications.applications_for(s, actor)
                ],
                "permits": [
                    access_views.permit_doc(s, p) for p in access_review.permits_for(s, actor)
                ],
            }

    def access_show(self, actor: Actor, application_id: int) -> dict[str, Any]:
        """One application with its decision, permit and the permit's outputs."""
        with db_session.session(self.database) as s:
            application = access_applications.visible_application(s, actor, application_id)
            doc = access_views.application_doc(application, self.settings.access)
            permit = s.scalar(
                sa.select(access_models.Permit).where(
                    access_models.Permit.application_id == application.id
                )
            )
            doc["permit"] = None if permit is None else access_views.permit_doc(s, permit)
            if permit is not None:
                doc["outputs"] = [
                    access_views.output_doc(o) for o in access_checking.outputs_of(s, permit)
                ]
            return doc

    def access_decide(
        self, actor: Actor, application_id: int, decision: access_review.Decision
    ) -> dict[str, Any]:
        """The data steward's decision; an approval makes the permit (and its budget)."""
        with db_session.write_session(self.database) as s:
            application = access_applications.visible_application(s, actor, application_id)
            access_review.decide(s, actor, application, decision, self.settings.access)
        return self.access_show(actor, application_id)

    def access_permit(self, actor: Actor, permit_id: int) -> dict[str, Any]:
        with db_session.session(self.database) as s:
            permit = access_review.visible_permit(s, actor, permit_id)
            doc = access_views.permit_doc(s, permit)
            doc["outputs"] = [
                access_views.output_doc(o) for o in access_checking.outputs_of(s, permit)
            ]
            return doc

    def access_revoke(self, actor: Actor, permit_id: int, reason: str) -> dict[str, Any]:
        """A data steward revokes a permit: nothing is made, released or downloaded under it."""
        with db_session.write_session(self.database) as s:
            access_review.revoke(s, actor, access_review.get_permit(s, permit_id), reason)
        return self.access_permit(actor, permit_id)

    def access_register(self) -> list[dict[str, Any]]:
        """The public register of granted permits."""
        with db_session.session(self.database) as s:
            return access_review.register(s)

    def access_request(
        self,
        actor: Actor,
        criteria: Criteria | str | Path,
        spec: dict[str, Any] | RequestSpec,
        region: str | Path | Region,
        *,
        permit_id: int | None = None,
    ) -> dict[str, Any]:
        """A data request: counts of the cohort by the breakdowns asked, through the release
        gate. Without a permit the answer is returned at once (counts only). Under a permit
        it covers the permit's cohort (donors only if donation-based), is noisy and charged
        to the permit's budget if it has one, and becomes an output that leaves only through
        output checking (``access_release``)."""
        if not isinstance(criteria, Criteria):
            criteria = load_criteria(criteria)
        if not isinstance(spec, access_statistics.RequestSpec):
            spec = validate(access_statistics.RequestSpec, spec)
        region = self.region(region)
        policy = self.policy(region)
        if permit_id is None:
            if spec.measure is not None:
                raise InputError(
                    "measure: sums are only given under a permit, where output checking "
                    "reviews them; ask for counts"
                )
            people, question = self._cohort(actor, criteria, region, donors_only=False)
            stats = access_statistics.gated_statistics(spec, people, policy, region)
            self._close(question, stats.total, region)
            audit.append(
                "access.request.answer",
                actor=actor.ref,
                details={"region": region.name, "fingerprint": criteria.fingerprint(),
                         "tables": len(spec.tables)},
            )  # fmt: skip
            return {"region": region.name, "index_date": people.index_date,
                    "criteria": criteria.name} | stats.as_dict()  # fmt: skip
        with db_session.session(self.database) as s:
            permit = access_review.visible_permit(s, actor, permit_id)
            self._usable(permit)
            within = access_applications.application_criteria(permit.criteria_yaml)
            donation, project = permit.donation_based, permit.budget_project
        people, question = self._cohort(
            actor, criteria, region, donors_only=donation, within=within
        )
        if project is not None:
            queries = privacy_budget.ProjectQueries(project, user=actor.ref, url=self.database)
            stats = access_statistics.dp_statistics(
                spec, people, queries, self.settings.disclosure.threshold
            )
        else:
            visits = (
                access_people.visits_before(region, people.person_id, people.index_date)
                if spec.measure == "visits"
                else None
            )
            stats = access_statistics.gated_statistics(
                spec, people, policy, region, visits=visits,
                dominance_n=self.settings.access.dominance_n,
            )  # fmt: skip
        self._close(question, stats.total, region)
        staged = self._staging()
        files = staged / "files"
        try:
            files.mkdir(parents=True)
            for name, rows in stats.csv_tables().items():
                _write_csv(files / f"{name}.csv", rows)
            doc = {"region": region.name, "index_date": people.index_date,
                   "criteria": criteria.name} | stats.as_dict()  # fmt: skip
            (files / "statistics.json").write_text(_dumps(doc) + "\n")
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        settings = self.settings.access
        checks = access_checking.automatic_checks(
            "statistics",
            sorted(files.iterdir()),
            threshold=self.settings.disclosure.threshold,
            k=settings.extract_k,
            dominance=stats.dominance,
            dominance_n=settings.dominance_n,
            dominance_share=settings.dominance_share,
        )
        summary = {"people": stats.total, "tables": len(spec.tables), "criteria": criteria.name}
        return self._record(actor, permit_id, "statistics", region, "csv", staged, checks,
                            summary, people.person_id)  # fmt: skip

    def _usable(self, permit: Any) -> None:
        state = access_review.permit_state(permit)
        if state != "active":
            raise PermissionDenied(f"permit {permit.id} is {state.replace('_', ' ')}")

    def _staging(self) -> Path:
        staged = self.data_dir / "access" / "staging" / secrets.token_hex(8)
        staged.mkdir(parents=True)
        return staged

    def _record(
        self, actor: Actor, permit_id: int, kind: str, region: Region, fmt: str, staged: Path,
        checks: Any, summary: dict[str, Any], person_ids: np.ndarray,
    ) -> dict[str, Any]:  # fmt: skip
        try:
            with db_session.write_session(self.database) as s:
                permit = access_review.get_permit(s, permit_id)
                output = access_checking.record_output(
                    s, actor, permit, kind=kind, region=region.name, fmt=fmt, staged=staged,
                    checks=checks, summary=json.loads(_dumps(summary)), person_ids=person_ids,
                    data_dir=self.data_dir,
                )  # fmt: skip
                return access_views.output_doc(output)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def access_extract(
        self, actor: Actor, permit_id: int, region: str | Path | Region
    ) -> dict[str, Any]:
        """The permit's extract (made by a data steward): its cohort and variables,
        pseudonymised with the permit's key or anonymised, with automatic checks run; it
        waits for a second person's review (``access_release``)."""
        if actor.role != "data_steward":
            raise PermissionDenied("a data steward makes the extracts of a permit")
        region = self.region(region)
        policy = self.policy(region)
        with db_session.session(self.database) as s:
            permit = access_review.get_permit(s, permit_id)
            self._usable(permit)
            if not permit.extracts:
                raise PermissionDenied(f"permit {permit_id} covers statistics, not extracts")
            criteria = access_applications.application_criteria(permit.criteria_yaml)
            names, form, fmt = list(permit.variables), permit.data_form, permit.output_format
            key, donation = bytes.fromhex(permit.pseudonym_key), permit.donation_based
        people, question = self._cohort(actor, criteria, region, donors_only=donation)
        size = access_statistics.disclosed_total(people, policy, region)
        self._close(question, size, region)
        settings = self.settings.access
        staged = self._staging()
        try:
            extract = access_extracts.write_extract(
                people, region, names, data_form=form, fmt=fmt, key=key,
                folder=staged / "files", k=settings.extract_k,
                suppression=settings.anonymise_suppression,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        checks = access_checking.automatic_checks(
            "extract",
            extract.files,
            threshold=self.settings.disclosure.threshold,
            k=settings.extract_k,
            quasi_identifiers=extract.quasi_identifiers,
        )
        summary = {
            "people": size,
            "rows": {name: single(policy, n) for name, n in extract.rows.items()},
            "index_date": people.index_date,
            "form": form,
            "donors_only": donation,
        }
        if extract.anonymiser is not None:
            anonymiser = dict(extract.anonymiser)
            anonymiser["suppressed"] = single(policy, anonymiser["suppressed"])
            summary["anonymiser"] = anonymiser
        return self._record(actor, permit_id, "extract", region, fmt, staged, checks, summary,
                            people.person_id)  # fmt: skip

    def _void_withdrawn(self, actor: Actor, output_id: int) -> None:
        """Void the output first, in its own transaction, if a donor in it withdrew."""
        with db_session.write_session(self.database) as s:
            output = self._output(s, output_id)
            permit = access_review.get_permit(s, output.permit_id)
            access_checking.void_if_withdrawn(s, output, permit, self.data_dir, actor)

    @staticmethod
    def _output(s: Any, output_id: int) -> AccessOutput:
        output = s.get(access_models.AccessOutput, output_id)
        if output is None:
            raise NotFoundError(f"output {output_id} does not exist")
        return output

    def access_release(
        self, actor: Actor, output_id: int, *, approve: bool = True, reason: str = ""
    ) -> dict[str, Any]:
        """The second person's review of an output: release or refuse it."""
        if actor.role != "data_steward":
            raise PermissionDenied("only a data steward reviews outputs for release")
        self._void_withdrawn(actor, output_id)
        with db_session.write_session(self.database) as s:
            output = self._output(s, output_id)
            access_checking.review_release(
                s, actor, output, approve=approve, reason=reason, data_dir=self.data_dir
            )
            return access_views.output_doc(output)

    def access_output(self, actor: Actor, output_id: int) -> dict[str, Any]:
        with db_session.session(self.database) as s:
            output = self._output(s, output_id)
            access_review.visible_permit(s, actor, output.permit_id)  # or not found
            return access_views.output_doc(output)

    def access_download(self, actor: Actor, output_id: int, name: str) -> Path:
        """A released file of an output, for the permit's holder and named people."""
        self._void_withdrawn(actor, output_id)
        with db_session.write_session(self.database) as s:
            output = self._output(s, output_id)
            return access_checking.downloadable(s, actor, output, name, self.data_dir)

    # --- Agenda -----------------------------------------------------------------------------

    def kpis(self, lang: str | None = None) -> list[dict[str, Any]]:
        """Every KPI of the registry with the priorities that follow it."""
        return [kpi_catalogue.describe(k, lang) for k in kpi_catalogue.registry()]

    def kpi(self, kpi_id: str) -> dict[str, Any]:
        return kpi_catalogue.describe(kpi_catalogue.registry().get(kpi_id))

    def explain_kpi(self, kpi_id: str) -> dict[str, Any]:
        """Definition, the queries a live KPI runs and its inputs."""
        return kpi_catalogue.explain(kpi_catalogue.registry().get(kpi_id))

    def kpi_policy(self, region: str | Path | Region | None = None) -> Any:
        """The release gate's policy for the agenda's figures: the region's when the figures
        include its records, else the deployment's (never raw: the figures are public)."""
        return self.policy(region) if region is not None else self.policy()

    def kpi_series(
        self,
        kpi_id: str,
        *,
        year: int | None = None,
        region: str | Path | Region | None = None,
        area: str | None = None,
    ) -> dict[str, Any]:
        """One KPI's series by year and quarter (the five years ending with ``year``)."""
        kpi = kpi_catalogue.registry().get(kpi_id)
        today = clock.today()
        year = year or today.year
        opened = self.region(region) if region is not None else None
        area = area or (opened.manifest.get("region_key") if opened is not None else None)
        with db_session.session(self.database) as s:
            ctx = agenda_kpis.Context(
                session=s,
                policy=self.kpi_policy(opened),
                periods=agenda_kpis.Periods.ending(year, min(today, date(year, 12, 31))),
                region=opened,
                platform=self,
            )
            series = kpi_catalogue.compute(kpi, ctx, area or "skane")
        return {**kpi_catalogue.describe(kpi), "area": area, "series": series}

    def import_kpis(self, path: str | Path) -> dict[str, Any]:
        """``brygga kpi import``: a CSV of imported series, validated whole, then stored."""
        with db_session.write_session(self.database) as s:
            result = kpi_imports.import_csv(s, path)
        audit.append("agenda.import", actor=f"cli:{current_user()}", details=result.as_dict())
        return result.as_dict()

    def strategy(self, source: str | Path) -> Strategy:
        """A strategy file, or a bundled strategy by id (``skane-firs-2026``)."""
        return agenda_strategy.load_strategy(source)

    def agenda_snapshot(
        self,
        source: str | Path | Strategy,
        year: int,
        *,
        region: str | Path | Region | None = None,
    ) -> dict[str, Any]:
        """A strategy's figures for ``year``, frozen (``agenda.snapshot``)."""
        strategy = source if isinstance(source, agenda_strategy.Strategy) else self.strategy(source)
        opened = self.region(region) if region is not None else None
        with db_session.session(self.database) as s:
            return agenda_snapshot.build(
                strategy,
                session=s,
                policy=self.kpi_policy(opened),
                year=year,
                today=clock.today(),
                region=opened,
                platform=self,
                source="" if isinstance(source, agenda_strategy.Strategy) else str(source),
            )

    def annual_report(
        self,
        source: str | Path,
        year: int,
        out: str | Path,
        *,
        lang: str = "sv",
        region: str | Path | Region | None = None,
        snapshot: str | Path | None = None,
    ) -> dict[str, Any]:
        """``brygga report annual``: DIR/index.html, DIR/report.pdf and DIR/snapshot.json, from
        live figures or (``snapshot``) from a saved snapshot, which renders the same again."""
        # Imported here: Altair, vl-convert and WeasyPrint take a second or two to load, and
        # only the report needs them (not every command that builds the platform).
        from brygga.agenda import report as agenda_report

        started = time.perf_counter()
        if snapshot is not None:
            snap = agenda_snapshot.load(snapshot)
        else:
            snap = self.agenda_snapshot(source, year, region=region)
        computed = time.perf_counter()
        result = agenda_report.write(snap, Path(out), lang)
        result["seconds_snapshot"] = round(computed - started, 2)
        result["seconds"] = round(time.perf_counter() - started, 2)
        return result

    def _cached(self, key: tuple[Any, ...], make: Any) -> Any:
        """A public page's figures, computed at most once per ``PAGE_CACHE_SECONDS`` per key
        (the agenda and Hälsoläget read whole tables; a page view must not). Once computed,
        an expired value is still served while one background thread recomputes it, so only
        the very first view waits for the computation."""
        now = time.monotonic()
        with self._lock:
            hit = self._page_cache.get(key)
            if hit is not None:
                if now - hit[0] >= PAGE_CACHE_SECONDS and key not in self._refreshing:
                    self._refreshing.add(key)
                    threading.Thread(target=self._refresh, args=(key, make), daemon=True).start()
                return hit[1]
            # One computation per key: visitors who come while it runs (or while the server's
            # warm-up runs it, ``warm_public_pages``) wait for it instead of repeating it.
            pending = self._computing.get(key)
            mine = pending is None
            if pending is None:
                pending = self._computing[key] = threading.Event()
        if not mine:
            pending.wait()
            with self._lock:
                hit = self._page_cache.get(key)
            return hit[1] if hit is not None else self._cached(key, make)  # theirs failed
        try:
            value = make()  # outside the lock: seconds on a large region
            with self._lock:
                self._page_cache[key] = (now, value)
            return value
        finally:
            with self._lock:
                self._computing.pop(key, None)
            pending.set()

    def _refresh(self, key: tuple[Any, ...], make: Any) -> None:
        try:
            value = make()
            with self._lock:
                self._page_cache[key] = (time.monotonic(), value)
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def agenda_figures(
        self, strategy_id: str, *, region: str | Path | Region | None = None
    ) -> dict[str, Any]:
        """This year's snapshot of a bundled strategy for the public ``/agenda`` page."""
        strategy = agenda_strategy.bundled_strategy(strategy_id)
        year = clock.today().year
        opened = self.region(region) if region is not None else None
        key = ("agenda", strategy.id, year, getattr(opened, "path", None))
        return self._cached(key, lambda: self.agenda_snapshot(strategy, year, region=opened))

    def halsolaget(self, region: str | Path | Region) -> dict[str, Any]:
        """The region's state of health (``agenda.halsolaget``), disclosed, for ``/halsolaget``."""
        opened = self.region(region)
        key = ("halsolaget", opened.path, opened.manifest.get("created"))
        policy = self.kpi_policy(opened)
        return self._cached(
            key, lambda: agenda_halsolaget.halsolaget(opened, policy, engine=self.settings.engine)
        )

    def agenda_page(
        self, strategy_id: str, lang: str, *, region: str | Path | Region | None = None
    ) -> dict[str, Any]:
        """What ``/agenda`` shows (``agenda.report.view`` of ``agenda_figures``), cached with
        the figures: building the charts' specs takes longer than the page may."""
        from brygga.agenda import report as agenda_report  # Altair: see annual_report

        lang = "en" if lang == "en" else "sv"
        key = ("agenda-view", agenda_strategy.bundled_strategy(strategy_id).id, lang, str(region))
        return self._cached(
            key, lambda: agenda_report.view(self.agenda_figures(strategy_id, region=region), lang)
        )

    def warm_public_pages(self, region: str | Path | Region | None) -> None:
        """Compute what ``/agenda`` (every bundled strategy) and ``/halsolaget`` show, in both
        languages, so that no visitor waits for it: ``brygga serve`` runs this in a background
        thread when it starts (``BRYGGA_WEB_WARM_PUBLIC_PAGES``). On a region of 2.4 million
        people the figures take about a minute; a visitor who comes earlier waits for the
        computation already running instead of starting another (``_cached``)."""
        for lang in ("sv", "en"):
            for strategy in agenda_strategy.bundled():
                self.agenda_page(strategy.id, lang, region=region)
            if region is not None:
                self.halsolaget_page(region, None, lang)

    def halsolaget_page(
        self, region: str | Path | Region, condition: str | None, lang: str
    ) -> dict[str, Any]:
        """What ``/halsolaget`` shows for one condition, cached with the figures."""
        from brygga.agenda import report as agenda_report  # Altair: see annual_report

        # Only known conditions make keys (a request's free text must not grow the cache).
        condition = condition if condition in {c[0] for c in agenda_halsolaget.CONDITIONS} else None
        lang = "en" if lang == "en" else "sv"
        key = ("halsolaget-view", str(region), condition, lang)
        return self._cached(
            key, lambda: agenda_report.health_view(self.halsolaget(region), condition, lang)
        )


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, default=str)


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
