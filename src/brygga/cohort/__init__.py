"""Eligibility criteria and the cohort engine: language, compilation, engines, feasibility.

Public modules:

* ``criteria`` - the criteria language (pydantic models, YAML/JSON loading);
* ``population`` - the one population definition: who counts on a day, their age and sex;
* ``compile`` - criteria to Ibis expressions, the same on every engine;
* ``reference`` - the reference evaluator (the executable specification);
* ``bitmaps`` - rule person sets as bitmaps (the DuckDB engine);
* ``stored`` - population arrays and rule bitmaps kept on disk (a new process's cold start);
* ``engine`` - the engine interface (``Engine``, ``Evaluation``);
* ``engines`` - DuckDB, Spark and reference behind that interface;
* ``feasibility`` - counts, attrition and breakdowns, disclosed; the eligible persons.

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.cohort`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.cohort.criteria import Criteria, load_criteria, parse_criteria
    from brygga.cohort.engine import Engine, Evaluation
    from brygga.cohort.engines import IbisEngine, open_engine
    from brygga.cohort.feasibility import FeasibilityResult, eligible_persons

__all__ = [
    "Criteria",
    "Engine",
    "Evaluation",
    "FeasibilityResult",
    "IbisEngine",
    "eligible_persons",
    "load_criteria",
    "open_engine",
    "parse_criteria",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Criteria": "criteria",
        "load_criteria": "criteria",
        "parse_criteria": "criteria",
        "Engine": "engine",
        "Evaluation": "engine",
        "IbisEngine": "engines",
        "open_engine": "engines",
        "FeasibilityResult": "feasibility",
        "eligible_persons": "feasibility",
    },
)
