"""Live KPIs of the resident registry: residents registered, consents by kind, data donors.

Stocks at each period's end, from the registration and deletion days and the append-only
consent history (``registry.models.ConsentEvent``): a consent counts from a grant to the next
withdrawal. Every count passes the release gate (``agenda.kpis.stock_series``).
"""

from __future__ import annotations

__all__ = ["consent_spans"]

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import select

from brygga.agenda.kpis import KPI, REGISTRY, Context, Series, stock_series, to_date
from brygga.registry.models import ConsentEvent, Resident

SOURCE = "Brygga (invånarregistret)"
OWNER = "Regionens e-tjänst för deltagande i kliniska studier"


def _residents_query() -> Any:
    return select(Resident.registered_at, Resident.deleted_at).where(
        Resident.registered_at.is_not(None)
    )


def _consents_query(kind: str) -> Any:
    return (
        select(ConsentEvent.resident_id, ConsentEvent.action, ConsentEvent.at)
        .where(ConsentEvent.kind == kind)
        .order_by(ConsentEvent.resident_id, ConsentEvent.at, ConsentEvent.id)
    )


def residents(ctx: Context) -> Series:
    rows = ctx.session.execute(_residents_query()).all()
    return stock_series(ctx, ((to_date(r.registered_at), to_date(r.deleted_at)) for r in rows))


def consent_spans(rows: list[Any]) -> list[tuple[date | None, date | None]]:
    """(granted, withdrawn or None) spans from one kind's history, ordered by resident, time."""
    spans: list[tuple[date | None, date | None]] = []
    open_since: dict[int, date | None] = {}
    for r in rows:
        if r.action == "grant":
            open_since.setdefault(r.resident_id, to_date(r.at))
        elif r.resident_id in open_since:
            spans.append((open_since.pop(r.resident_id), to_date(r.at)))
    spans.extend((start, None) for start in open_since.values())
    return spans


def _consents(kind: str) -> Callable[[Context], Series]:
    def compute(ctx: Context) -> Series:
        return stock_series(ctx, consent_spans(ctx.session.execute(_consents_query(kind)).all()))

    return compute


REGISTRY.add(
    KPI(
        id="residents_registered",
        name_sv="Registrerade invånare",
        name_en="Residents registered",
        definition_sv="Invånare som anmält intresse för att delta i kliniska studier via Brygga "
        "och har kvar sitt konto periodens sista dag.",
        definition_en="Residents who registered their interest in taking part in clinical "
        "studies through Brygga and still have their account on the period's last day.",
        unit="people",
        kind="live",
        source=SOURCE,
        owner=OWNER,
        aggregation="stock",
        inputs=("resident.registered_at", "resident.deleted_at"),
        compute=residents,
        queries=lambda: [_residents_query()],
        method="Registered on or before the day, not deleted by then.",
    )
)
for _kind, _sv, _en, _dsv, _den in (
    ("contact", "Samtycken till kontakt om studier", "Consents to be contacted about studies",
     "kontakt om studier", "being contacted about studies"),
    ("match_records", "Samtycken till matchning mot journaldata",
     "Consents to matching against health records", "matchning mot journaldata",
     "matching against their health records"),
    ("donate_data", "Datadonatorer", "Data donors", "att donera sina hälsodata till forskning",
     "donating their health data to research"),
):  # fmt: skip
    REGISTRY.add(
        KPI(
            id="data_donors" if _kind == "donate_data" else f"consents_{_kind}",
            name_sv=_sv,
            name_en=_en,
            definition_sv=f"Invånare med ett gällande samtycke till {_dsv} periodens sista dag.",
            definition_en=f"Residents with a standing consent to {_den} on the period's last day.",
            unit="people",
            kind="live",
            source=SOURCE,
            owner=OWNER,
            aggregation="stock",
            inputs=(
                "resident_consent_event.kind",
                "resident_consent_event.action",
                "resident_consent_event.at",
            ),
            compute=_consents(_kind),
            queries=lambda k=_kind: [_consents_query(k)],
            method="From each grant to the next withdrawal of the same resident and kind.",
        )
    )
