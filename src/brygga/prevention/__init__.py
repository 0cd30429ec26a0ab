"""Precision prevention: validated risk scores, kidney function, population stratification.

``prevention.scores`` holds the risk scores (SCORE2, SCORE2-OP, SCORE2-Diabetes, FINDRISC),
``prevention.egfr`` the CKD-EPI 2021 equation and ``prevention.ranges`` the plausible input
ranges every score checks against. See docs/prevention.md.
"""
