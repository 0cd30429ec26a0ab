"""The public agenda pages: ``/agenda`` (the strategies' figures and charts, the same as the
annual report's) and ``/halsolaget`` (the state of health by municipality, sex and age).

Both show figures that passed the release gate (the platform computes them, at most every
``platform.PAGE_CACHE_SECONDS``); every chart has its table.
"""

from __future__ import annotations

__all__ = ["router"]

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from brygga.agenda.strategy import bundled
from brygga.errors import NotFoundError
from brygga.web.deps import lang, platform, render
from brygga.web.security import allow

router = APIRouter()
public = Depends(allow("public"))
Id = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_.-]+$")]


def _region_key(request: Request) -> str | None:
    region = request.app.state.config.region
    if region is None:
        return None
    return platform(request).region(region).manifest.get("region_key")


@router.get("/agenda", dependencies=[public])
async def agenda(request: Request, strategy: Id = None) -> Response:
    strategies = {s.id: s for s in bundled()}
    home = next((s.id for s in strategies.values() if s.region == _region_key(request)), None)
    chosen = strategy or home or next(iter(strategies))
    if chosen not in strategies:
        raise NotFoundError(f"no strategy {chosen!r}")  # 404
    region = request.app.state.config.region
    language = lang(request)
    view = await run_in_threadpool(platform(request).agenda_page, chosen, language, region=region)
    return render(request, "agenda.html", {
        "v": view,
        "strategies": [(s.id, s.name.get(language)) for s in strategies.values()],
        "chosen": chosen,
    })  # fmt: skip


@router.get("/halsolaget", dependencies=[public])
async def halsolaget(request: Request, condition: Id = None) -> Response:
    region = request.app.state.config.region
    if region is None:
        return render(request, "halsolaget.html", {"h": None})
    page = platform(request).halsolaget_page
    view = await run_in_threadpool(page, region, condition, lang(request))
    return render(request, "halsolaget.html", {"h": view})
