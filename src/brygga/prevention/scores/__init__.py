"""Validated risk scores: SCORE2, SCORE2-OP, SCORE2-Diabetes and FINDRISC.

Every function takes keyword arguments that are scalars or 1-D arrays (numpy, lists, Arrow)
and computes all rows at once; a scalar call is the same computation on length-1 arrays.
Inputs outside the model's ages or outside plausible ranges raise ``InputError`` naming the
field and range, or, with ``on_invalid="nan"``, give NaN and a reason bit mask per row.

    >>> r = score2(age=50, sex="male", smoker=True, sbp=140, total_chol=6.3, hdl=1.4,
    ...            risk_region="moderate")
    >>> float(r.risk_percent[0]), r.category_labels()[0]
    (8.1, 'high')

See docs/prevention.md for the models, ranges, categories and who gets which score.
"""

from brygga.prevention.ranges import PLAUSIBLE, Invalid, describe_invalid
from brygga.prevention.scores._calculator import calculate_cvd_risk, choose_model
from brygga.prevention.scores._common import (
    DIABETES_CATEGORIES,
    MODELS,
    RISK_REGIONS,
    SCORE2_CATEGORIES,
    SWEDEN_RISK_REGION,
    Model,
    RiskResult,
    round_half_up,
)
from brygga.prevention.scores._findrisc import (
    FAMILY_HISTORY,
    FINDRISC_CATEGORIES,
    FINDRISC_RISK,
    FindriscResult,
    findrisc,
)
from brygga.prevention.scores._population import (
    MODEL_KEYS,
    PopulationScores,
    assign_model,
    score_population,
)
from brygga.prevention.scores._score2 import RECALIBRATION as SCORE2_RECALIBRATION
from brygga.prevention.scores._score2 import score2, score2_diabetes
from brygga.prevention.scores._score2_op import RECALIBRATION_OP as SCORE2_OP_RECALIBRATION
from brygga.prevention.scores._score2_op import score2_op

__all__ = [
    "DIABETES_CATEGORIES",
    "FAMILY_HISTORY",
    "FINDRISC_CATEGORIES",
    "FINDRISC_RISK",
    "MODELS",
    "MODEL_KEYS",
    "PLAUSIBLE",
    "RISK_REGIONS",
    "SCORE2_CATEGORIES",
    "SCORE2_OP_RECALIBRATION",
    "SCORE2_RECALIBRATION",
    "SWEDEN_RISK_REGION",
    "FindriscResult",
    "Invalid",
    "Model",
    "PopulationScores",
    "RiskResult",
    "assign_model",
    "calculate_cvd_risk",
    "choose_model",
    "describe_invalid",
    "findrisc",
    "round_half_up",
    "score2",
    "score2_diabetes",
    "score2_op",
    "score_population",
]
