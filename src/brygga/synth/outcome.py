"""TEMPORARY: SCORE2 / SCORE2-OP without range checks for the generator's outcome model.

To be replaced by brygga.prevention.scores once that lands (same formulas).
"""

from __future__ import annotations

import numpy as np

_S2 = {  # cage smoke csbp dm ctc chdl cage*smoke cage*csbp cage*ctc cage*chdl cage*dm S0
    True: (
        0.3742,
        0.6012,
        0.2777,
        0.6457,
        0.1458,
        -0.2698,
        -0.0755,
        -0.0255,
        -0.0281,
        0.0426,
        -0.0983,
        0.9605,
    ),
    False: (
        0.4648,
        0.7744,
        0.3131,
        0.8096,
        0.1002,
        -0.2606,
        -0.1088,
        -0.0277,
        -0.0226,
        0.0613,
        -0.1272,
        0.9776,
    ),
}
_S2_CAL = {True: (-0.1565, 0.8009), False: (-0.3143, 0.7701)}
_OP = {  # a dm smoke s t h a*dm a*smoke a*s a*t a*h meanLP S0
    True: (
        0.0634,
        0.4245,
        0.3524,
        0.0094,
        0.0850,
        -0.3564,
        -0.0174,
        -0.0247,
        -0.0005,
        0.0073,
        0.0091,
        0.0929,
        0.7576,
    ),
    False: (
        0.0789,
        0.6010,
        0.4921,
        0.0102,
        0.0605,
        -0.3040,
        -0.0107,
        -0.0255,
        -0.0004,
        -0.0009,
        0.0154,
        0.2290,
        0.8082,
    ),
}
_OP_CAL = {True: (0.01, 1.25), False: (-0.10, 1.10)}


def _calibrate(p0: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    p0 = np.clip(p0, 1e-12, 1 - 1e-12)
    return 1 - np.exp(-np.exp(s1 + s2 * np.log(-np.log(1 - p0))))


def _coef(table: dict[bool, tuple[float, ...]], male: np.ndarray) -> list[np.ndarray]:
    m, f = np.array(table[True]), np.array(table[False])
    return list(np.where(male[None, :], m[:, None], f[:, None]))


def score2_unchecked(age, male, smoker, sbp, tc, hdl, dm) -> np.ndarray:
    male = np.asarray(male, bool)
    smoke = np.asarray(smoker, float)
    dm = np.asarray(dm, float)
    out = np.empty(len(age))
    young = age < 70
    if young.any():
        y = young
        c = [v[y] for v in _coef(_S2, male)]
        cage, csbp, ctc, chdl = (
            (age[y] - 60) / 5,
            (sbp[y] - 120) / 20,
            tc[y] - 6,
            (hdl[y] - 1.3) / 0.5,
        )
        lp = (
            c[0] * cage
            + c[1] * smoke[y]
            + c[2] * csbp
            + c[3] * dm[y]
            + c[4] * ctc
            + c[5] * chdl
            + c[6] * cage * smoke[y]
            + c[7] * cage * csbp
            + c[8] * cage * ctc
            + c[9] * cage * chdl
            + c[10] * cage * dm[y]
        )
        p0 = 1 - c[11] ** np.exp(lp)
        cal = _coef(_S2_CAL, male[y])
        out[y] = _calibrate(p0, cal[0], cal[1])
    old = ~young
    if old.any():
        o = old
        c = [v[o] for v in _coef(_OP, male)]
        a, s, t, h = age[o] - 73, sbp[o] - 150, tc[o] - 6, hdl[o] - 1.4
        lp = (
            c[0] * a
            + c[1] * dm[o]
            + c[2] * smoke[o]
            + c[3] * s
            + c[4] * t
            + c[5] * h
            + c[6] * a * dm[o]
            + c[7] * a * smoke[o]
            + c[8] * a * s
            + c[9] * a * t
            + c[10] * a * h
        )
        p0 = 1 - c[12] ** np.exp(lp - c[11])
        cal = _coef(_OP_CAL, male[o])
        out[o] = _calibrate(p0, cal[0], cal[1])
    return out
