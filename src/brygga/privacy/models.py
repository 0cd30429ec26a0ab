"""Operational-database tables of the privacy layer.

* ``privacy_budget`` / ``privacy_spend``: each approved data project's privacy-loss budget
  (epsilon, delta) and the ledger of every differentially private query charged to it;
* ``noisy_answer``: the noisy feasibility answer given for a (criteria, cell, true count), so
  that asking again returns the same answer. The key is a hash: the true count is not stored;
* ``feasibility_request``: one row per noisy feasibility request, for the per-user rate limit;
* ``feasibility_question`` / ``question_flag``: every feasibility question the question guard
  saw (budgets, rate limit, sweep detection) and the sweeps it refused and reported.
"""

from __future__ import annotations

__all__ = [
    "FeasibilityQuestion",
    "FeasibilityRequest",
    "NoisyAnswer",
    "PrivacyBudget",
    "PrivacySpend",
    "QuestionFlag",
]

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from brygga.db.base import Base, utcnow


class PrivacyBudget(Base):
    __tablename__ = "privacy_budget"

    project_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    epsilon_total: Mapped[float] = mapped_column(Float)
    delta_total: Mapped[float] = mapped_column(Float, default=0.0)
    epsilon_spent: Mapped[float] = mapped_column(Float, default=0.0)
    delta_spent: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PrivacySpend(Base):
    __tablename__ = "privacy_spend"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("privacy_budget.project_id"), index=True)
    query: Mapped[str] = mapped_column(String(200))
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float, default=0.0)
    user: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NoisyAnswer(Base):
    __tablename__ = "noisy_answer"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeasibilityRequest(Base):
    __tablename__ = "feasibility_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utcnow)


class FeasibilityQuestion(Base):
    """One feasibility question as the question guard saw it (``privacy.questions``): who
    asked, for which study, a hash of the canonical criteria and hashes of their atoms (for
    sweep detection), and the result class. Never the criteria text, a count or personal data."""

    __tablename__ = "feasibility_question"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utcnow)
    asker: Mapped[str] = mapped_column(String(100), index=True)
    study_id: Mapped[int | None] = mapped_column(Integer, index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    atoms: Mapped[list[str]] = mapped_column(JSON)
    result: Mapped[str] = mapped_column(String(40))


class QuestionFlag(Base):
    """A refused sweep, reported to the research office: one open flag per asker and reason,
    counting its refusals (``study_id``: the latest study asked about) until someone in the
    research office marks it reviewed."""

    __tablename__ = "question_flag"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    asker: Mapped[str] = mapped_column(String(100), index=True)
    study_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    refusals: Mapped[int] = mapped_column(Integer, default=1)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
