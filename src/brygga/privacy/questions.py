"""The question guard: every feasibility question passes it before it is answered.

Rounding, the cell key method and cached noise protect one answer. A *sequence* of answers can
still give a hidden count away: ask "HbA1c >= x, excluding group T" and "HbA1c >= x, or in
T" for x = 30 .. 99 and the mean difference of the answers converges on the size of T, however
each answer is rounded or perturbed (security property 7). So every feasibility path (the web
page, the JSON API, ``brygga feasibility``) calls ``QuestionGuard.admit`` first and
``QuestionGuard.answered`` after disclosure. The guard

* refuses a question past the rate limit (per asker), the asker's budget or the study's
  budget (``config.QuestionSettings``; rows in ``feasibility_question``, so the limits hold
  across processes and server workers);
* refuses a *sweep*: one more distinct question that resembles at least ``sweep_limit``
  questions the same asker, or anyone on the same study, had answered in the sweep window.
  Two questions resemble each other when their *atoms* (every setting of every rule, with
  numbers replaced by ``#`` and without the include/exclude/any_of nesting; see ``atoms``)
  are the same, or their Jaccard similarity reaches ``similarity``. Rearranging the same rules
  (the include/exclude vs. any_of pair above) or moving a threshold does not make a new
  question. A refused sweep is reported to the research office (``question_flag``, listed by
  ``flags``) and audited;
* audits every question (``feasibility.question``, or ``feasibility.refused``) with who asked,
  the study, the criteria fingerprint (a hash of the canonical criteria) and the result class
  (``shown``, ``suppressed``, ``zero``, ``refused``). Never the criteria text, a count or
  personal data.

Asking the same question again (same fingerprint) is never a sweep: it gets the same answer.
It still counts against the rate limit and the budgets.

A refusal must be recorded even though the request then fails, so ``admit`` commits the
caller's session before it raises ``QuestionRefused`` (the web's request transaction: a
feasibility request has written nothing else by then; on submission the study's submission is
committed with it, and the route keeps it).
"""

from __future__ import annotations

__all__ = [
    "ASKED",
    "REASONS",
    "REFUSED",
    "STRUCTURE",
    "Asker",
    "QuestionGuard",
    "QuestionRefused",
    "Ticket",
    "atom_hashes",
    "atoms",
    "classify",
    "flags",
    "review_flag",
    "similarity",
]

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from brygga import audit, clock
from brygga.config import QuestionSettings, get_settings
from brygga.errors import NotFoundError, PermissionDenied
from brygga.util import lazy_module

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Imported on first use, for start-up time: a command-line question on the SQLite database
# goes through ``_SqliteQuestions`` (the standard library's sqlite3) and needs no SQLAlchemy.
sa = lazy_module("sqlalchemy")
models = lazy_module("brygga.privacy.models")

# The nesting of rules; atoms leave it out, so rearranged rules keep their atoms.
STRUCTURE = frozenset({"include", "exclude", "any_of", "all_of"})
ASKED = "asked"  # admitted, not (yet) answered: the computation failed or is running
REFUSED = "refused"
REASONS = ("rate", "user_budget", "study_budget", "sweep")


class QuestionRefused(PermissionDenied):
    """A feasibility question the guard refused (HTTP 429, exit code 2).

    ``key`` and ``params`` name the message in the message catalogues (``brygga/messages.py``), so the
    page says it in the reader's language; ``message`` is the English text."""

    http_status = 429

    def __init__(self, message: str, *, reason: str, params: dict[str, Any]) -> None:
        super().__init__(message)
        self.reason = reason
        self.key = f"question_refused_{reason}"
        self.params = params


@dataclass(frozen=True)
class Asker:
    """Who asks (``staff:<id>`` on the web, ``cli:<user>`` on the command line) and for which
    study (None outside a study)."""

    actor: str
    study_id: int | None = None

    def for_study(self, study_id: int | None) -> Asker:
        return Asker(self.actor, study_id)


@dataclass(frozen=True)
class Ticket:
    """An admitted question, to be closed with ``QuestionGuard.answered``."""

    question_id: int
    asker: Asker
    fingerprint: str


def atoms(criteria: Any) -> frozenset[str]:
    """What a question asks, as a set of ``path=value`` strings: every setting the asker gave
    (defaults left out), numbers as ``#``, codes and other words kept, the include/exclude/
    any_of/all_of nesting and list positions dropped. The index date is left out too (moving
    it a day is no new question)."""
    document = criteria.model_dump(
        mode="json", exclude={"name", "description", "index_date"}, exclude_defaults=True
    )
    return frozenset(_atoms(document, ()))


def _atoms(node: Any, path: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _atoms(value, path if key in STRUCTURE else (*path, str(key)))
    elif isinstance(node, list):
        for item in node:
            yield from _atoms(item, path)
    elif node is not None:
        if isinstance(node, bool):
            value = str(node).lower()
        elif isinstance(node, int | float):
            value = "#"
        else:
            value = str(node)
        yield ".".join(path) + "=" + value


def atom_hashes(found: frozenset[str]) -> list[str]:
    """Atoms as short hashes: enough to compare questions, without storing the criteria."""
    return sorted(hashlib.sha256(a.encode("utf-8")).hexdigest()[:16] for a in found)


def similarity(a: set[str] | frozenset[str], b: set[str] | frozenset[str]) -> float:
    """Jaccard similarity; two questions without any atoms (the whole region) are the same."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def classify(count: Mapping[str, Any]) -> str:
    """The result class of a disclosed count: ``zero``, ``suppressed`` or ``shown``."""
    if count.get("value") is None:
        return "suppressed"
    return "zero" if count["value"] == 0 else "shown"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite: naive UTC


class QuestionGuard:
    """Budgets, rate limit, sweep detection and audit for feasibility questions.

    ``enforce=False`` only audits (the data owner's CLI on a local synthetic region).

    ``admit`` and ``answered`` take the caller's transaction: an ORM ``Session`` (the web, any
    database) or a ``sqlite3.Connection`` from ``db.direct.write_transaction`` (a command-line
    process on the SQLite database, without SQLAlchemy). Both are read and written through
    ``_Questions``, so the limits and the records are the same on either."""

    def __init__(
        self,
        settings: QuestionSettings | None = None,
        *,
        enforce: bool = True,
        audit_path: Any = None,
    ) -> None:
        self.settings = settings or get_settings().questions
        self.enforce = enforce
        self.audit_path = audit_path

    def admit(
        self,
        session: Session | sqlite3.Connection,
        asker: Asker,
        criteria: Any,
        index_date: date | None = None,
    ) -> Ticket:
        """Record the question, or refuse it (recorded, committed, audited, and for a sweep
        reported) with ``QuestionRefused``."""
        store = _questions(session)
        now = clock.now()
        fingerprint = criteria.fingerprint(index_date)
        found = atom_hashes(atoms(criteria))
        if self.enforce:
            refusal = self._refusal(store, asker, fingerprint, set(found), now)
            if refusal is not None:
                self._refuse(store, asker, fingerprint, found, now, refusal)
        question_id = store.add(now, asker, fingerprint, found, ASKED)
        return Ticket(question_id, asker, fingerprint)

    def answered(
        self,
        session: Session | sqlite3.Connection,
        ticket: Ticket,
        count: Mapping[str, Any],
        **details: Any,
    ) -> str:
        """Close an admitted question with the class of its disclosed headline count; audited.
        ``details``: more non-personal facts for the audit record (region, disclosure)."""
        result = classify(count)
        _questions(session).set_result(ticket.question_id, result)
        self._audit("feasibility.question", ticket.asker, ticket.fingerprint, result, details)
        return result

    # --- Limits ---------------------------------------------------------------------------

    def _refusal(
        self, store: _Questions, asker: Asker, fingerprint: str, found: set[str], now: datetime
    ) -> QuestionRefused | None:
        s = self.settings
        recent = store.count(asker.actor, None, now - timedelta(minutes=s.rate_window_minutes))
        if recent >= s.rate_limit:
            return QuestionRefused(
                f"too many feasibility questions: at most {s.rate_limit} per "
                f"{s.rate_window_minutes} minutes per user; wait a while and ask again",
                reason="rate",
                params={"limit": s.rate_limit, "minutes": s.rate_window_minutes},
            )
        budget_since = now - timedelta(days=s.budget_window_days)
        if store.count(asker.actor, None, budget_since, answered=True) >= s.user_budget:
            return QuestionRefused(
                f"your feasibility budget is used up: at most {s.user_budget} questions per "
                f"{s.budget_window_days} days per user; the research office can help",
                reason="user_budget",
                params={"limit": s.user_budget, "days": s.budget_window_days},
            )
        if asker.study_id is not None:
            used = store.count(None, asker.study_id, budget_since, answered=True)
            if used >= s.study_budget:
                return QuestionRefused(
                    f"this study's feasibility budget is used up: at most {s.study_budget} "
                    f"questions per {s.budget_window_days} days per study; the research "
                    "office can help",
                    reason="study_budget",
                    params={"limit": s.study_budget, "days": s.budget_window_days},
                )
        resembling = self._resembling(store, asker, fingerprint, found, now)
        if resembling is not None and resembling >= s.sweep_limit:
            return QuestionRefused(
                f"refused: this question is nearly the same as {resembling} other feasibility "
                f"questions asked in the last {s.sweep_window_days} days (only numbers, codes "
                "or the order of rules differ). Series of near-identical questions can reveal "
                "counts that are hidden, so this has been reported to the research office",
                reason="sweep",
                params={"count": resembling, "days": s.sweep_window_days},
            )
        return None

    def _resembling(
        self, store: _Questions, asker: Asker, fingerprint: str, found: set[str], now: datetime
    ) -> int | None:
        """How many distinct answered questions of this asker or study resemble this one;
        None when this very question was answered before (a repeat is no sweep)."""
        since = now - timedelta(days=self.settings.sweep_window_days)
        seen: dict[str, set[str]] = {fp: set(a) for fp, a in store.answered(asker, since)}
        if fingerprint in seen:
            return None
        threshold = self.settings.similarity
        return sum(1 for other in seen.values() if similarity(found, other) >= threshold)

    def _refuse(
        self,
        store: _Questions,
        asker: Asker,
        fingerprint: str,
        found: list[str],
        now: datetime,
        refusal: QuestionRefused,
    ) -> NoReturn:
        store.add(now, asker, fingerprint, found, f"{REFUSED}:{refusal.reason}")
        details: dict[str, Any] = {"reason": refusal.reason}
        if refusal.reason == "sweep":
            # The research office's flag for this asker: one open flag per asker (a sweep
            # spans many draft studies), counting refusals and naming the latest study.
            details["flag"] = store.report(asker, "sweep", now)
        self._audit("feasibility.refused", asker, fingerprint, REFUSED, details)
        # The refusal, its flag and the rate-limit row must outlive the failed request.
        store.commit()
        raise refusal

    def _audit(
        self, action: str, asker: Asker, fingerprint: str, result: str, details: dict[str, Any]
    ) -> None:
        body = {"study": asker.study_id, "fingerprint": fingerprint, "result": result}
        audit.append(action, actor=asker.actor, details=body | details, path=self.audit_path)


class _Questions:
    """The guard's reads and writes of ``feasibility_question`` and ``question_flag`` (the
    tables ``privacy/models.py`` defines; ``_SqliteQuestions`` writes the same rows)."""

    def count(
        self, actor: str | None, study_id: int | None, since: datetime, *, answered: bool = False
    ) -> int:
        """Questions of ``actor`` (or on ``study_id``) after ``since``; ``answered``: not refused."""
        raise NotImplementedError

    def answered(self, asker: Asker, since: datetime) -> list[tuple[str, list[str]]]:
        """(fingerprint, atoms) of the questions of the asker, or on its study, not refused."""
        raise NotImplementedError

    def add(
        self, at: datetime, asker: Asker, fingerprint: str, atoms: list[str], result: str
    ) -> int:
        raise NotImplementedError

    def set_result(self, question_id: int, result: str) -> None:
        raise NotImplementedError

    def report(self, asker: Asker, reason: str, now: datetime) -> int:
        """Open (or count one more refusal on) the asker's flag; its id."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError


def _questions(transaction: Any) -> _Questions:
    if isinstance(transaction, sqlite3.Connection):
        return _SqliteQuestions(transaction)
    return _OrmQuestions(transaction)


class _OrmQuestions(_Questions):
    def __init__(self, session: Session) -> None:
        self.session = session

    def count(
        self, actor: str | None, study_id: int | None, since: datetime, *, answered: bool = False
    ) -> int:
        q = models.FeasibilityQuestion
        query = sa.select(sa.func.count()).where(q.at > since)
        query = query.where(q.asker == actor) if actor is not None else query
        query = query.where(q.study_id == study_id) if study_id is not None else query
        if answered:
            query = query.where(q.result.not_like(f"{REFUSED}%"))
        return self.session.scalar(query) or 0

    def answered(self, asker: Asker, since: datetime) -> list[tuple[str, list[str]]]:
        q = models.FeasibilityQuestion
        whose = q.asker == asker.actor
        if asker.study_id is not None:
            whose = sa.or_(whose, q.study_id == asker.study_id)
        query = sa.select(q.fingerprint, q.atoms).where(
            whose, q.at > since, q.result.not_like(f"{REFUSED}%")
        )
        return [(fp, a) for fp, a in self.session.execute(query).all()]

    def add(
        self, at: datetime, asker: Asker, fingerprint: str, atoms: list[str], result: str
    ) -> int:
        question = models.FeasibilityQuestion(
            at=at, asker=asker.actor, study_id=asker.study_id, fingerprint=fingerprint,
            atoms=atoms, result=result,
        )  # fmt: skip
        self.session.add(question)
        self.session.flush()
        return question.id

    def set_result(self, question_id: int, result: str) -> None:
        question = self.session.get(models.FeasibilityQuestion, question_id)
        if question is not None:
            question.result = result

    def report(self, asker: Asker, reason: str, now: datetime) -> int:
        f = models.QuestionFlag
        flag = self.session.execute(
            sa.select(f).where(f.asker == asker.actor, f.reason == reason, f.reviewed_by.is_(None))
        ).scalar_one_or_none()
        if flag is None:
            flag = f(
                at=now, last_at=now, asker=asker.actor, study_id=asker.study_id,
                reason=reason, refusals=1,
            )  # fmt: skip
            self.session.add(flag)
        else:
            flag.refusals += 1
            flag.last_at = now
            flag.study_id = asker.study_id
        self.session.flush()
        return flag.id

    def commit(self) -> None:
        self.session.commit()


def _stamp(at: datetime) -> str:
    """A time as SQLAlchemy's SQLite ``DateTime`` stores it (naive UTC, microseconds), so
    rows written either way compare and sort alike."""
    at = at.astimezone(UTC) if at.tzinfo is not None else at
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


class _SqliteQuestions(_Questions):
    """The same reads and writes in SQL over a ``sqlite3`` connection (``db.direct``); a test
    runs the guard's cases through both and compares the rows."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def count(
        self, actor: str | None, study_id: int | None, since: datetime, *, answered: bool = False
    ) -> int:
        sql = "SELECT count(*) FROM feasibility_question WHERE at > ?"
        params: list[Any] = [_stamp(since)]
        if actor is not None:
            sql, params = sql + " AND asker = ?", [*params, actor]
        if study_id is not None:
            sql, params = sql + " AND study_id = ?", [*params, study_id]
        if answered:
            sql, params = sql + " AND result NOT LIKE ?", [*params, f"{REFUSED}%"]
        return int(self.connection.execute(sql, params).fetchone()[0])

    def answered(self, asker: Asker, since: datetime) -> list[tuple[str, list[str]]]:
        whose, params = "asker = ?", [asker.actor]
        if asker.study_id is not None:
            whose, params = "(asker = ? OR study_id = ?)", [asker.actor, asker.study_id]
        rows = self.connection.execute(
            f"SELECT fingerprint, atoms FROM feasibility_question WHERE {whose} AND at > ? "
            "AND result NOT LIKE ?",
            [*params, _stamp(since), f"{REFUSED}%"],
        )
        return [(fp, json.loads(a)) for fp, a in rows]

    def add(
        self, at: datetime, asker: Asker, fingerprint: str, atoms: list[str], result: str
    ) -> int:
        cursor = self.connection.execute(
            "INSERT INTO feasibility_question (at, asker, study_id, fingerprint, atoms, result) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [_stamp(at), asker.actor, asker.study_id, fingerprint, json.dumps(atoms), result],
        )
        return int(cursor.lastrowid or 0)

    def set_result(self, question_id: int, result: str) -> None:
        self.connection.execute(
            "UPDATE feasibility_question SET result = ? WHERE id = ?", [result, question_id]
        )

    def report(self, asker: Asker, reason: str, now: datetime) -> int:
        row = self.connection.execute(
            "SELECT id FROM question_flag WHERE asker = ? AND reason = ? AND reviewed_by IS NULL",
            [asker.actor, reason],
        ).fetchone()
        if row is None:
            cursor = self.connection.execute(
                "INSERT INTO question_flag (at, last_at, asker, study_id, reason, refusals) "
                "VALUES (?, ?, ?, ?, ?, 1)",
                [_stamp(now), _stamp(now), asker.actor, asker.study_id, reason],
            )
            return int(cursor.lastrowid or 0)
        self.connection.execute(
            "UPDATE question_flag SET refusals = refusals + 1, last_at = ?, study_id = ? "
            "WHERE id = ?",
            [_stamp(now), asker.study_id, row[0]],
        )
        return int(row[0])

    def commit(self) -> None:
        self.connection.execute("COMMIT")
        self.connection.execute("BEGIN IMMEDIATE")  # the caller's transaction goes on


def review_flag(session: Session, flag_id: int, reviewer: str) -> dict[str, Any]:
    """The research office has looked into a reported sweep: the flag is closed (the next
    refused sweep of that asker opens a new one). Audited."""
    flag = session.get(models.QuestionFlag, flag_id)
    if flag is None:
        raise NotFoundError(f"no reported sweep with id {flag_id}")
    if flag.reviewed_by is None:
        flag.reviewed_by = reviewer
        audit.append("feasibility.flag_reviewed", actor=reviewer, details={"flag": flag.id})
    session.flush()
    return {"id": flag.id, "reviewed_by": flag.reviewed_by}


def flags(session: Session, *, include_reviewed: bool = False) -> list[dict[str, Any]]:
    """Reported sweeps for the research office, newest first."""
    flag = models.QuestionFlag
    query = sa.select(flag).order_by(flag.last_at.desc(), flag.id.desc())
    if not include_reviewed:
        query = query.where(flag.reviewed_by.is_(None))
    return [
        {
            "id": f.id,
            "asker": f.asker,
            "study": f.study_id,
            "reason": f.reason,
            "refusals": f.refusals,
            "first": _aware(f.at).isoformat(timespec="seconds"),
            "last": _aware(f.last_at).isoformat(timespec="seconds"),
            "reviewed_by": f.reviewed_by,
        }
        for f in session.execute(query).scalars()
    ]
