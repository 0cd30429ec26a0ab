"""Ingestion: bring a region's own health records into Brygga.

* ``omop`` - import an OMOP CDM v5.4 CSV export into a region (``import_omop``),
  pseudonymizing person ids on request and drawing the record keys of the cell key method.

It sits above ``privacy`` (it calls ``privacy.pseudonym`` and ``privacy.cellkey``) and below the
front ends; ``records`` describes a region, ``ingest`` fills one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.ingest.omop import import_omop

__all__ = ["import_omop"]

__getattr__ = lazy_exports(__name__, {"import_omop": "omop"})
