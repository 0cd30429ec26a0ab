"""Precision prevention: validated risk scores, kidney function, population stratification.

Public modules:

* ``scores`` - SCORE2, SCORE2-OP, SCORE2-Diabetes, FINDRISC (one person and whole populations);
* ``selfcheck`` - the resident's FINDRISC self-check from a form's answers;
* ``egfr`` - the CKD-EPI 2021 equation;
* ``ranges`` - the plausible input ranges every score checks against;
* ``inputs`` - score inputs from a region's records, for everyone at once (SQL in ``inputs_sql``);
* ``inputs_sql`` - the SQL of those inputs;
* ``stratify`` - risk categories by sex, age band, municipality and deprivation;
* ``programs`` - who to invite in which order within each care unit's capacity;
* ``equity`` - does prevention reach the groups with the most need;
* ``evaluation`` - program evaluation and outcome-based reimbursement;
* ``validation`` - Harrell's C of a score on a region.

Private modules, used only inside the package: ``_charts`` (PNG charts of disclosed figures, for
``stratify`` and ``equity``).

The main names below are re-exported here and imported on first use
(``brygga.util.lazy_exports``): ``import brygga.prevention`` loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from brygga.util import lazy_exports

if TYPE_CHECKING:
    from brygga.prevention.egfr import ckd_epi_2021
    from brygga.prevention.equity import equity_report
    from brygga.prevention.evaluation import evaluate
    from brygga.prevention.inputs import extract_inputs
    from brygga.prevention.programs import load_program, parse_program, plan_program
    from brygga.prevention.stratify import population_risk

__all__ = [
    "ckd_epi_2021",
    "equity_report",
    "evaluate",
    "extract_inputs",
    "load_program",
    "parse_program",
    "plan_program",
    "population_risk",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ckd_epi_2021": "egfr",
        "extract_inputs": "inputs",
        "load_program": "programs",
        "parse_program": "programs",
        "plan_program": "programs",
        "population_risk": "stratify",
        "equity_report": "equity",
        "evaluate": "evaluation",
    },
)
