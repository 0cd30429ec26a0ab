"""The imported KPI series: one value per KPI, area and period, with its source and licence."""

from __future__ import annotations

__all__ = ["SeriesValue"]

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brygga.db import Base


class SeriesValue(Base):
    """A value of an imported KPI (employees, trial applications, patents ...): a later import
    of the same KPI, area and period replaces it (the statistics are revised)."""

    __tablename__ = "agenda_series_value"
    __table_args__ = (UniqueConstraint("kpi_id", "area", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kpi_id: Mapped[str] = mapped_column(String(64), index=True)
    area: Mapped[str] = mapped_column(String(40))  # skane | stockholm | medicon-valley | sweden
    period: Mapped[str] = mapped_column(String(7))  # 2025 or 2025-Q3
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(300))
    source_date: Mapped[date] = mapped_column(Date)  # when the source published the figure
    licence: Mapped[str] = mapped_column(String(100))
    file: Mapped[str] = mapped_column(String(300))  # the imported file's name (not its path)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
