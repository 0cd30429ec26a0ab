"""Notifications through an outbox: messages are queued in the database in the same
transaction as what they announce, and ``deliver`` sends them later (at-least-once).

A matching run queues one message per resident, a digest of that run's new invitations ("Du
har 3 nya studieinbjudningar"), however many studies invited them: a resident matched by five
studies gets one e-mail or SMS, not five, and a full run writes one row per resident instead
of one per invitation. A volunteer's "interested" queues a message to the study team
(``queue_team_interest``): which study, how many volunteers, and the link to the team's
contacts page; answers arriving while it waits are counted into it.

The message rows hold no personal data; the address is looked up when sending, so a resident
who deleted their account in between is never contacted. Texts come from the message
catalogue (``locale/*/LC_MESSAGES/notify.po``): a resident's say only how many new invitations
wait in the portal, with a link to it (no study or health details travel by e-mail or SMS);
a team's name the study and no volunteer.

Delivery (``deliver``), safe with several server workers and ``brygga notify`` at once:

1. claim a batch in a short write (``claimed_by``/``claimed_at`` on rows nobody holds, or whose
   claim is older than the lease: a worker died), so each message has one sender;
2. read the addresses and compose the texts (one audited identity read per batch);
3. send outside any transaction (no lock is held while the mail server answers);
4. mark each message in a short write as soon as its send returned: sent; or failed with the
   attempt counted and the next attempt backed off; or given up (a permanent refusal, or
   ``max_attempts``). A crash between 3 and 4 sends that one message again after the lease:
   at-least-once, never lost.
"""

from __future__ import annotations

__all__ = [
    "DIGEST",
    "LANGUAGES",
    "TEAM_INTEREST",
    "Links",
    "Text",
    "backoff",
    "deliver",
    "digest",
    "digest_text",
    "discard_queued",
    "invitations_notified",
    "queue_digest",
    "queue_team_interest",
    "team_interest",
]

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, selectinload

from brygga import audit
from brygga.clock import now
from brygga.config import NotifySettings
from brygga.db.session import session as read_session
from brygga.db.session import write_session
from brygga.messages import translate
from brygga.registry.models import Profile, Resident
from brygga.studies.models import Invitation, OutboxMessage, StaffAccount, Study
from brygga.studies.senders import DeliveryError, Sender

DIGEST = "invitations"  # a resident's digest of one run's new invitations
TEAM_INTEREST = "team_interest"  # a study team told that volunteers are interested
LANGUAGES = ("sv", "en")  # Swedish first: any other or missing language gets Swedish
OUTCOMES = ("sent", "in_app", "retrying", "failed")


@dataclass(frozen=True)
class Links:
    """The links in messages, made from the service's public address
    (``BRYGGA_NOTIFY_PUBLIC_URL``)."""

    public_url: str = NotifySettings().public_url

    @property
    def portal(self) -> str:
        return f"{self.public_url}/portal"

    def contacts(self, study_id: int) -> str:
        return f"{self.public_url}/studies/{study_id}/contacts"


@dataclass(frozen=True)
class Text:
    subject: str
    body: str


def digest_text(count: int, lang: str, portal_url: str) -> str:
    """The digest's one line (the whole SMS): only the number of new invitations and where to
    read them (no study, area or health detail: an e-mail or SMS may be read by others)."""
    lang = lang if lang in LANGUAGES else LANGUAGES[0]
    if count == 1:
        return translate("notify_digest_one", lang).format(url=portal_url)
    return translate("notify_digest_many", lang).format(count=count, url=portal_url)


def digest(count: int, lang: str, channel: str, links: Links) -> Text:
    """A resident's digest: the line, and in an e-mail why it came and what they can change."""
    lang = lang if lang in LANGUAGES else LANGUAGES[0]
    line = digest_text(count, lang, links.portal)
    subject_key = "notify_digest_subject_one" if count == 1 else "notify_digest_subject_many"
    subject = translate(subject_key, lang)
    if channel != "email":
        return Text(subject, line)
    return Text(subject, f"{line}\n\n{translate('notify_resident_footer', lang)}\n")


def team_interest(count: int, study: Study, links: Links) -> Text:
    """The study team's message, Swedish then English (staff choose no language): the study,
    how many volunteers answered "interested", the link to the contacts page; no volunteer."""
    parts = []
    for lang, title in (("sv", study.title_sv), ("en", study.title_en)):
        if count == 1:
            news = translate("notify_team_one", lang).format(title=title)
        else:
            news = translate("notify_team_many", lang).format(count=count, title=title)
        action = translate("notify_team_action", lang).format(url=links.contacts(study.id))
        parts.append(f"{news}\n\n{action}")
    subject = f"{translate('notify_team_subject', 'sv')} / {translate('notify_team_subject', 'en')}"
    return Text(subject, "\n\n----\n\n".join(parts) + "\n")


def queue_digest(
    session: Session,
    created_at: datetime,
    resident_ids: list[int] | None = None,
    *,
    after_id: int = 0,
) -> int:
    """Queue one digest per resident that one matching run invited (the invitations created
    at ``created_at``, with ids above ``after_id``), on the resident's chosen channel; its
    payload is the number of new invitations. Returns the messages queued.

    One INSERT ... SELECT ... GROUP BY in the matching transaction: a full run invites over a
    million times, which as ORM objects or per-invitation rows would cost minutes."""
    count = func.count(Invitation.id)
    build = func.json_build_object if session.get_bind().dialect.name == "postgresql" else None
    payload = (build or func.json_object)("count", count)
    made = (
        select(Invitation.resident_id, null(), Profile.contact_channel, literal(DIGEST), payload,
               literal(created_at, DateTime(timezone=True)), literal(0))
        .join(Profile, Profile.resident_id == Invitation.resident_id)
        .where(
            Invitation.id > after_id,
            Invitation.created_at == created_at,
            Invitation.status == "sent",
        )
        .group_by(Invitation.resident_id, Profile.contact_channel)
    )  # fmt: skip
    if resident_ids is not None:
        made = made.where(Invitation.resident_id.in_(resident_ids))
    columns = ["resident_id", "invitation_id", "channel", "template", "payload", "created_at",
               "attempts"]  # fmt: skip
    result = session.execute(insert(OutboxMessage.__table__).from_select(columns, made))
    return result.rowcount or 0


def discard_queued(session: Session, resident: Resident) -> int:
    """Drop the resident's undelivered messages (account deletion); returns how many."""
    result = session.execute(delete(OutboxMessage).where(OutboxMessage.resident_id == resident.id))
    return result.rowcount or 0


def invitations_notified(invitation: Any) -> Any:
    """SQL condition: ``invitation`` (the Invitation entity or an alias) was notified, i.e.
    the digest of the run that made it was delivered without error (for the funnel's
    "invited"). A digest and its invitations share the resident and the run's timestamp;
    messages queued per invitation before digests name it directly."""
    sent = and_(OutboxMessage.sent_at.is_not(None), OutboxMessage.error.is_(None))
    return exists().where(
        sent,
        or_(
            OutboxMessage.invitation_id == invitation.id,
            and_(
                OutboxMessage.template == DIGEST,
                OutboxMessage.resident_id == invitation.resident_id,
                OutboxMessage.created_at == invitation.created_at,
            ),
        ),
    )


def queue_team_interest(session: Session, study: Study) -> None:
    """Tell the study team that a volunteer answered "interested" (in the answer's own
    transaction). While an earlier message to the team about this study waits unclaimed, the
    answer is counted into it ("3 volunteers ...") instead of queueing another."""
    staff_id = _team_contact(session, study)
    if staff_id is None:
        return  # no active researcher left to tell; the contacts page still lists the volunteer
    waiting = session.execute(
        select(OutboxMessage.id, OutboxMessage.payload)
        .where(
            OutboxMessage.template == TEAM_INTEREST,
            OutboxMessage.staff_id == staff_id,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.claimed_at.is_(None),
        )
        .order_by(OutboxMessage.id)
        .with_for_update()  # PostgreSQL: a sender claiming it waits for this transaction
    ).all()
    for message_id, payload in waiting:
        if (payload or {}).get("study") != study.id:
            continue
        counted = {"study": study.id, "count": int(payload.get("count", 1)) + 1}
        # Only while still unclaimed: a sender that claimed it has read the old count.
        done = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.claimed_at.is_(None))
            .values(payload=counted)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount:
            return
    session.add(
        OutboxMessage(
            staff_id=staff_id, channel="email", template=TEAM_INTEREST,
            payload={"study": study.id, "count": 1}, created_at=now(), attempts=0,
        )
    )  # fmt: skip
    session.flush()


def _team_contact(session: Session, study: Study) -> int | None:
    """Who hears of a study's volunteers: the researcher who registered it while active in
    the study's organization, else the organization's first active researcher."""
    owner = session.get(StaffAccount, study.created_by)
    if owner is not None and owner.active and owner.organization_id == study.organization_id:
        return owner.id
    return session.scalar(
        select(StaffAccount.id)
        .where(
            StaffAccount.organization_id == study.organization_id,
            StaffAccount.role == "researcher",
            StaffAccount.active.is_(True),
        )
        .order_by(StaffAccount.id)
        .limit(1)
    )


def backoff(attempts: int, settings: NotifySettings) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones: doubling from
    ``retry_seconds`` up to ``retry_max_seconds``."""
    seconds = settings.retry_seconds * 2 ** min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


@dataclass
class _Outgoing:
    """One claimed message, ready: an address and a text, or why it closes unsent."""

    id: int
    attempts: int
    channel: str
    address: str | None = None
    text: Text | None = None
    in_app: bool = False
    closed: str | None = None  # the reason it is given up without a send


def deliver(
    url: str,
    sender: Sender,
    settings: NotifySettings | None = None,
    *,
    limit: int | None = None,
    stop: threading.Event | None = None,
) -> dict[str, int]:
    """Send the queued messages that are due (up to ``limit``), batch by batch, until none is
    left, ``stop`` is set or the channel fails; returns how many were sent, delivered in the
    app, left for a retry and given up. Exact counts: disclose them before they leave."""
    settings = settings or NotifySettings()
    links = Links(settings.public_url)
    token = secrets.token_hex(8)  # this run's claims
    counts = dict.fromkeys(OUTCOMES, 0)
    claimed = 0
    try:
        while limit is None or claimed < limit:
            if stop is not None and stop.is_set():
                break
            size = settings.batch if limit is None else min(settings.batch, limit - claimed)
            ids = _claim(url, token, size, settings.lease_seconds)
            if not ids:
                break
            claimed += len(ids)
            if not _send_batch(url, token, _prepare(url, ids, links), sender, settings, counts,
                               stop):  # fmt: skip
                break
    finally:
        sender.close()
    return counts


def _due(at: datetime, lease_seconds: int) -> Any:
    return and_(
        OutboxMessage.sent_at.is_(None),
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= at),
        or_(
            OutboxMessage.claimed_at.is_(None),
            OutboxMessage.claimed_at < at - timedelta(seconds=lease_seconds),
        ),
    )


def _claim(url: str, token: str, size: int, lease_seconds: int) -> list[int]:
    """Claim up to ``size`` due messages for ``token``, in one short write. On SQLite the write
    lock orders claimers; on PostgreSQL they skip each other's locked rows, and the UPDATE
    checks again that nobody claimed a row in between."""
    at = now()
    due = _due(at, lease_seconds)
    with write_session(url) as s:
        ids = s.scalars(
            select(OutboxMessage.id)
            .where(due)
            .order_by(OutboxMessage.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), due)
            .values(claimed_at=at, claimed_by=token)
            .execution_options(synchronize_session=False)
        )
        return list(
            s.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == token)
                .order_by(OutboxMessage.id)
            )
        )


def _prepare(url: str, ids: list[int], links: Links) -> list[_Outgoing]:
    """Addresses and texts of the claimed messages (a read transaction; one audit record for
    the residents' addresses read)."""
    out: list[_Outgoing] = []
    read = 0
    with read_session(url) as s:
        messages = s.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
        ).all()
        # The batch's residents with their profiles in two queries, not two per message.
        wanted = {m.resident_id for m in messages if m.resident_id is not None}
        if wanted:
            s.scalars(
                select(Resident)
                .where(Resident.id.in_(wanted))
                .options(selectinload(Resident.profile))
            ).all()  # now in the session's identity map: s.get below does not query
        for m in messages:
            item = _Outgoing(m.id, m.attempts, m.channel)
            out.append(item)
            payload = m.payload or {}
            if m.staff_id is not None:
                staff = s.get(StaffAccount, m.staff_id)
                study = s.get(Study, payload.get("study"))
                if staff is None or not staff.active or study is None:
                    item.closed = "no active recipient"
                    continue
                item.address = staff.email
                item.text = team_interest(int(payload.get("count", 1)), study, links)
                continue
            resident = s.get(Resident, m.resident_id) if m.resident_id is not None else None
            if resident is None or resident.deleted_at is not None:
                item.closed = "account deleted"
                continue
            if m.channel == "in_app":
                item.in_app = True
                continue
            item.address = {"email": resident.email, "sms": resident.phone}.get(m.channel)
            if not item.address:
                item.closed = f"no {m.channel} address"
                continue
            read += 1
            lang = resident.profile.language if resident.profile else LANGUAGES[0]
            # A per-invitation message queued before digests existed reads as a digest of one.
            count = int(payload.get("count", 1)) if m.template == DIGEST else 1
            item.text = digest(count, lang, m.channel, links)
    if read:
        audit.append(
            "identity.read",
            actor="system:outbox",
            details={"purpose": "notification", "count": read},
        )
    return out


def _send_batch(
    url: str,
    token: str,
    batch: list[_Outgoing],
    sender: Sender,
    settings: NotifySettings,
    counts: dict[str, int],
    stop: threading.Event | None,
) -> bool:
    """Send one claimed batch; False when the channel failed or ``stop`` was set (the rest of
    the batch is released for the next run)."""
    quiet: dict[str | None, list[int]] = {}  # nothing to send (in-app, or given up): by reason
    for m in batch:
        if m.in_app or m.closed:
            quiet.setdefault(m.closed, []).append(m.id)
            counts["in_app" if m.in_app else "failed"] += 1
    if quiet:  # closed together in one write
        at = now()
        with write_session(url) as s:
            for reason, ids in quiet.items():
                s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == token)
                    .values(sent_at=at, error=reason, attempts=OutboxMessage.attempts + 1,
                            claimed_at=None, claimed_by=None, next_attempt_at=None)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
    loud = [m for m in batch if not (m.in_app or m.closed)]
    # A slow relay must not outlast the claim (another worker would take the rest over and
    # send it too): past half the lease, the rest is given back and claimed afresh.
    renew = time.monotonic() + settings.lease_seconds / 2
    for i, m in enumerate(loud):
        if (stop is not None and stop.is_set()) or time.monotonic() > renew:
            _release(url, token, [x.id for x in loud[i:]])
            return not (stop is not None and stop.is_set())
        assert m.address is not None and m.text is not None
        try:
            sender.send(m.channel, m.address, m.text.subject, m.text.body)
        except DeliveryError as exc:
            _failed(url, token, m, exc.reason, exc.permanent, settings, counts)
            if exc.stop:
                _release(url, token, [x.id for x in loud[i + 1 :]])
                return False
            continue
        except Exception as exc:  # a failing sender must not stop the queue or lose the message
            _failed(url, token, m, type(exc).__name__, False, settings, counts)
            continue
        with write_session(url) as s:
            # Whoever holds the claim now: the message went out, so it is done.
            s.execute(_mark(m.id).values(
                sent_at=now(), error=None, attempts=m.attempts + 1, claimed_at=None,
                claimed_by=None, next_attempt_at=None,
            ))  # fmt: skip
        counts["sent"] += 1
    return True


def _mark(message_id: int, token: str | None = None) -> Any:
    where = [OutboxMessage.id == message_id, OutboxMessage.sent_at.is_(None)]
    if token is not None:
        where.append(OutboxMessage.claimed_by == token)
    return update(OutboxMessage).where(*where).execution_options(synchronize_session=False)


def _failed(
    url: str,
    token: str,
    m: _Outgoing,
    reason: str,
    permanent: bool,
    settings: NotifySettings,
    counts: dict[str, int],
) -> None:
    attempts = m.attempts + 1
    at = now()
    with write_session(url) as s:
        if permanent or attempts >= settings.max_attempts:
            s.execute(_mark(m.id, token).values(
                sent_at=at, error=reason, attempts=attempts, claimed_at=None, claimed_by=None,
                next_attempt_at=None,
            ))  # fmt: skip
            counts["failed"] += 1
        else:
            s.execute(_mark(m.id, token).values(
                error=reason, attempts=attempts, next_attempt_at=at + backoff(attempts, settings),
                claimed_at=None, claimed_by=None,
            ))  # fmt: skip
            counts["retrying"] += 1


def _release(url: str, token: str, ids: list[int]) -> None:
    """Give back claimed messages untried (the next run takes them, without a back-off)."""
    if not ids:
        return
    with write_session(url) as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == token)
            .values(claimed_at=None, claimed_by=None)
            .execution_options(synchronize_session=False)
        )
