"""Synthetic regions: a calibrated population, its life course and its care records.

Public modules:

* ``generator`` - ``brygga synth``, chunk by chunk in parallel;
* ``care`` - care events of a life course;
* ``identity`` - synthetic personnummer, names and contact details (the identities file);
* ``targets`` - targets from ``region-facts.md``;
* ``calibration`` - the calibration report.

Private modules, used only inside the package: ``_lifecourse``, ``_outcome``, ``_params`` (people
and their life course, cardiovascular outcomes, model parameters).

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.synth`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.synth.generator import SynthResult, generate, identities_path

__all__ = ["SynthResult", "generate", "identities_path"]

__getattr__ = lazy_exports(
    __name__, {"SynthResult": "generator", "generate": "generator", "identities_path": "generator"}
)
