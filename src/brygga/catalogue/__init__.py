"""The dataset catalogue: what a region's records hold, in DCAT-AP / HealthDCAT-AP.

Public modules:

* ``dcat`` - a region's datasets described from its manifest and schema (tables, variables,
  temporal coverage, the population as a disclosed count), as an RDF graph (Turtle, JSON-LD).

The SHACL shapes the catalogue is validated against in the tests are in ``shapes/`` with their
provenance. The main names below are re-exported and imported on first use
(``brygga.util.lazy_exports``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.catalogue.dcat import FORMATS, SHAPES, Catalogue, DatasetEntry, build, describe

__all__ = ["FORMATS", "SHAPES", "Catalogue", "DatasetEntry", "build", "describe"]

__getattr__ = lazy_exports(
    __name__,
    {
        "FORMATS": "dcat",
        "SHAPES": "dcat",
        "Catalogue": "dcat",
        "DatasetEntry": "dcat",
        "build": "dcat",
        "describe": "dcat",
    },
)
