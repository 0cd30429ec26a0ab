"""The regional health-record model (OMOP CDM 5.4 shapes) and a region on disk.

Public modules:

* ``schema`` - every table and column, defined once (also the identities file);
* ``codes`` - code systems (ICD-10, ATC, KVÅ, LOINC ...) and the codes Brygga knows by name;
* ``store`` - a region on disk (``Region``, ``RegionWriter``, ``identities_path``);
* ``optimize`` - a region's query-optimized DuckDB copy.

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.records`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.records.store import Region, RegionWriter, identities_path

__all__ = ["Region", "RegionWriter", "identities_path"]

__getattr__ = lazy_exports(
    __name__, {"Region": "store", "RegionWriter": "store", "identities_path": "store"}
)
