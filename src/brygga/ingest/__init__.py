"""Ingestion: bring a region's own health records into Brygga.

* ``omop`` - import an OMOP CDM v5.4 CSV export into a region (``import_omop``),
  pseudonymizing person ids on request and drawing the record keys of the cell key method.

It sits above ``privacy`` (it calls ``privacy.pseudonym`` and ``privacy.cellkey``) and below the
front ends; ``records`` describes a region, ``ingest`` fills one.
"""

__all__ = ["omop"]
