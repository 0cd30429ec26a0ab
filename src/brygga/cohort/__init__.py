"""Eligibility criteria and the cohort engine: language, compilation, engines, feasibility."""
