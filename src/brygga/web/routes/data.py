"""The public data catalogue: ``/data`` (the page) and the catalogue in Turtle and JSON-LD.

The catalogue describes the configured region's records (``catalogue.dcat``); its one count,
the population, is disclosed under the same policy as every other count on the web
(``Brygga.policy``, through ``platform.catalogue``). Public: it says what data exist and how to
ask for them, never the data.
"""

from __future__ import annotations

__all__ = ["router"]

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from brygga.catalogue.dcat import FORMATS, Catalogue
from brygga.web.deps import platform, render
from brygga.web.security import allow

router = APIRouter()
public = Depends(allow("public"))


def _catalogue(request: Request) -> Catalogue:
    config = request.app.state.config
    regions = [config.region] if config.region is not None else []
    return platform(request).catalogue(regions, raw=config.raw_counts)


@router.get("/data", dependencies=[public])
def data_page(request: Request) -> Response:
    return render(request, "data.html", {"catalogue": _catalogue(request)})


def _download(request: Request, fmt: str) -> Response:
    media_type, suffix, _ = FORMATS[fmt]
    return Response(
        _catalogue(request).serialize(fmt),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="brygga-catalogue.{suffix}"'},
    )


@router.get("/data/catalogue.ttl", dependencies=[public])
def data_turtle(request: Request) -> Response:
    return _download(request, "turtle")


@router.get("/data/catalogue.jsonld", dependencies=[public])
def data_jsonld(request: Request) -> Response:
    return _download(request, "jsonld")
