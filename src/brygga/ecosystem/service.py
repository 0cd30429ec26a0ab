"""The ecosystem's operations on one operational database: what ``Brygga.ecosystem`` returns.

The platform builds one ``Ecosystem`` per process (``platform.Brygga.ecosystem``); the CLI and
the web call it. It keeps the ranking index of the published directory between calls and
rebuilds it when the directory changes.
"""

from __future__ import annotations

__all__ = ["Ecosystem"]

import threading
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from brygga.clock import today
from brygga.db.session import session, write_session
from brygga.ecosystem import directory, feasibility, inquiries, testbeds
from brygga.ecosystem.feasibility import FeasibilityForm, SiteEstimate
from brygga.ecosystem.inquiries import Actor, Addresses, Sender
from brygga.ecosystem.match import Index, NeedDocument, load_need
from brygga.ecosystem.models import Entry
from brygga.ecosystem.profiles import load_document
from brygga.errors import NotFoundError


class Ecosystem:
    def __init__(self, url: str, *, validity_days: int = 365) -> None:
        self.url = url
        self.validity_days = validity_days
        self._lock = threading.Lock()
        self._index: tuple[tuple[Any, ...], Index] | None = None

    # --- Directory --------------------------------------------------------------------------

    def import_file(
        self, path: str | Path, *, actor: str, reviewer: str | None = None
    ) -> dict[str, int]:
        """``brygga ecosystem import FILE``: validate the whole file first, then write every
        entry in one transaction (nothing half-imported)."""
        document = load_document(path)
        with write_session(self.url) as s:
            result = directory.import_profiles(
                s,
                document,
                actor=actor,
                reviewer=reviewer,
                validity_days=self.validity_days,
                source=str(path),
            )
        return result.as_dict()

    def seed(self, *, actor: str) -> dict[str, int]:
        """The packaged seed (both strategies' actors and the KSS nodes), published: its
        entries were reviewed when they were written into the package."""
        return self.import_file(directory.PACKAGED_SEED, actor=actor, reviewer="brygga-seed")

    def entries(
        self,
        *,
        type: str | None = None,
        area: str | None = None,
        region: str | None = None,
        include_hidden: bool = False,
        lang: str = "sv",
        day: date | None = None,
    ) -> list[dict[str, Any]]:
        with session(self.url) as s:
            found = directory.list_entries(
                s, type=type, area=area, region=region, include_hidden=include_hidden, day=day
            )
            return [directory.entry_document(e, lang=lang, day=day) for e in found]

    def entry(
        self, key: int | str, *, lang: str = "sv", include_hidden: bool = False
    ) -> dict[str, Any]:
        """One entry; a hidden one (draft, withdrawn, expired) only for reviewers."""
        with session(self.url) as s:
            entry = directory.get_entry(s, key)
            if not include_hidden and not directory.is_visible(entry):
                raise NotFoundError(f"no directory entry {key!r}")
            return directory.entry_document(entry, lang=lang)

    def publish(self, key: int | str, *, reviewer: str) -> dict[str, Any]:
        with write_session(self.url) as s:
            entry = directory.publish(s, key, reviewer=reviewer, validity_days=self.validity_days)
            return directory.entry_document(entry)

    def renew(self, key: int | str, *, reviewer: str) -> dict[str, Any]:
        with write_session(self.url) as s:
            entry = directory.renew(s, key, reviewer=reviewer, validity_days=self.validity_days)
            return directory.entry_document(entry)

    def withdraw(self, key: int | str, *, actor: str) -> dict[str, Any]:
        with write_session(self.url) as s:
            return directory.entry_document(directory.withdraw(s, key, actor=actor))

    def assign(self, key: int | str, organization_id: int | None, *, actor: str) -> None:
        with write_session(self.url) as s:
            directory.assign(s, key, organization_id, actor=actor)

    def _directory_stamp(self) -> tuple[Any, ...]:
        """Changes whenever an entry is added, edited, reviewed or withdrawn."""
        with session(self.url) as s:
            return tuple(s.execute(select(func.count(Entry.id), func.max(Entry.updated_at),
                                          func.max(Entry.published_at))).one())  # fmt: skip

    # --- Needs -> offerings -----------------------------------------------------------------

    def index(self) -> Index:
        """The published directory's ranking index, rebuilt when the directory changed."""
        stamp = self._directory_stamp()
        with self._lock:
            if self._index is None or self._index[0] != stamp:
                with session(self.url) as s:
                    entries = s.scalars(select(Entry).where(Entry.status == "published")).all()
                    self._index = (stamp, Index.build(list(entries)))
            return self._index[1]

    def match(
        self,
        need: NeedDocument | str | Path,
        *,
        limit: int = 10,
        lang: str | None = None,
        day: date | None = None,
    ) -> list[dict[str, Any]]:
        """``brygga ecosystem match``: visible offerings for a need, best first, with reasons."""
        if not isinstance(need, NeedDocument):
            need = load_need(need)
        ranked = self.index().rank(need, day=day or today(), limit=limit, lang=lang)
        return [r.as_dict() for r in ranked]

    # --- Needs and inquiries ----------------------------------------------------------------

    def create_need(self, actor: Actor, need: NeedDocument) -> int:
        with write_session(self.url) as s:
            return inquiries.create_need(s, actor, need).id

    def need(self, actor: Actor, need_id: int) -> dict[str, Any]:
        """One of the actor's needs, as a document (its wishes re-validated for matching)."""
        with session(self.url) as s:
            row = inquiries.own_need(s, actor, need_id)
            return {"id": row.id, "title": row.title, "description": row.description,
                    "details": row.details, "asked": sorted(inquiries.asked_entries(s, row.id))}  # fmt: skip

    def need_document(self, actor: Actor, need_id: int) -> NeedDocument:
        doc = self.need(actor, need_id)
        return NeedDocument.model_validate(
            {"title": doc["title"], "description": doc["description"], **doc["details"]}
        )

    def send_inquiry(
        self, actor: Actor, need_id: int, entries: list[int | str], message: str
    ) -> dict[str, Any]:
        with write_session(self.url) as s:
            inquiry = inquiries.send_inquiry(s, actor, need_id, entries, message)
            return inquiries.case_view(inquiry, today())

    def answer(
        self, actor: Actor, recipient_id: int, decision: str, reason: str = ""
    ) -> dict[str, Any]:
        with write_session(self.url) as s:
            r = inquiries.answer(s, actor, recipient_id, decision, reason)
            return {"recipient": r.id, "status": r.status}

    def cases(self, actor: Actor, *, lang: str = "sv") -> list[dict[str, Any]]:
        with session(self.url) as s:
            return inquiries.my_cases(s, actor, lang=lang)

    def inbox(self, actor: Actor, *, lang: str = "sv") -> list[dict[str, Any]]:
        with session(self.url) as s:
            return inquiries.inbox(s, actor, lang=lang)

    def set_outcome(self, actor: Actor, inquiry_id: int, outcome: str | None) -> str | None:
        with write_session(self.url) as s:
            return inquiries.set_outcome(s, actor, inquiry_id, outcome).outcome

    def escalate(self) -> int:
        with write_session(self.url) as s:
            return inquiries.escalate_overdue(s)

    def deliver(
        self,
        sender: Sender,
        addresses: Addresses,
        *,
        url: str,
        errors: tuple[type[BaseException], ...] = (OSError,),
    ) -> dict[str, int]:
        with write_session(self.url) as s:
            return inquiries.deliver(s, sender, addresses, url=url, errors=errors)

    def figures(self, *, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        with session(self.url) as s:
            return inquiries.figures(s, start=start, end=end)

    # --- Site feasibility -------------------------------------------------------------------

    def send_feasibility(
        self,
        actor: Actor,
        need_id: int,
        entries: list[int | str],
        message: str,
        form: FeasibilityForm,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with write_session(self.url) as s:
            inquiry = feasibility.send_feasibility(s, actor, need_id, entries, message, form, data)
            return inquiries.case_view(inquiry, today())

    def answer_site(
        self,
        actor: Actor,
        recipient_id: int,
        decision: str,
        reason: str = "",
        estimate: SiteEstimate | None = None,
    ) -> dict[str, Any]:
        with write_session(self.url) as s:
            r = feasibility.answer_site(s, actor, recipient_id, decision, reason, estimate)
            return {"recipient": r.id, "status": r.status}

    def collated(self, actor: Actor, inquiry_id: int, *, lang: str = "sv") -> dict[str, Any]:
        with session(self.url) as s:
            inquiry = inquiries.own_inquiry(s, actor, inquiry_id)
            return {**inquiries.case_view(inquiry, today(), lang),
                    "collated": feasibility.collate(inquiry, lang)}  # fmt: skip

    def set_milestone(
        self, actor: Actor, inquiry_id: int, name: str, day: date | None
    ) -> dict[str, Any]:
        with write_session(self.url) as s:
            return dict(feasibility.set_milestone(s, actor, inquiry_id, name, day).milestones)

    def suggest_sites(self, therapy_area: str, *, lang: str = "sv") -> list[dict[str, Any]]:
        with session(self.url) as s:
            return [
                directory.entry_document(e, lang=lang)
                for e in feasibility.suggest_sites(s, therapy_area)
            ]

    # --- Testbed slots and bookings ---------------------------------------------------------

    def add_slot(
        self, actor: Actor, key: int | str, starts_on: date, ends_on: date, note: str = ""
    ) -> int:
        with write_session(self.url) as s:
            return testbeds.add_slot(s, actor, key, starts_on, ends_on, note).id

    def slots(self, key: int | str) -> list[dict[str, Any]]:
        with session(self.url) as s:
            return testbeds.open_slots(s, key)

    def request_booking(self, actor: Actor, slot_id: int, message: str) -> int:
        with write_session(self.url) as s:
            return testbeds.request_booking(s, actor, slot_id, message).id

    def answer_booking(self, actor: Actor, booking_id: int, decision: str, reason: str = "") -> str:
        with write_session(self.url) as s:
            return testbeds.answer_booking(s, actor, booking_id, decision, reason).status

    def bookings(
        self, actor: Actor, *, provider: bool = False, lang: str = "sv"
    ) -> list[dict[str, Any]]:
        with session(self.url) as s:
            if provider:
                return testbeds.provider_bookings(s, actor, lang=lang)
            return testbeds.my_bookings(s, actor, lang=lang)
