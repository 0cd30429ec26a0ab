"""The synthetic region's model parameters, in one place.

Each number is either a public figure (cited in ``shared/reference/region-facts.md``) or a
calibration constant tuned so that the generated region meets those figures; the calibration
report (``calibration.md`` in every region) shows how close it comes. Rates are per person-year.
"""

from __future__ import annotations

# Time ---------------------------------------------------------------------------------------
END_DATE = "2026-06-30"  # the day the regional extract is taken
BURN_IN_YEARS = 25  # latent life course simulated before the record period (no deaths)

# Population dynamics -----------------------------------------------------------------------
PILOT_SIZE = 30_000  # people in the pilot run that measures survival by age
OVERSAMPLE = 1.04  # simulate this much more than needed; exact quotas are kept per municipality
MOVE_IN_SHARE = 0.22  # share of residents who moved into the region during the record period
MOVE_OUT = ((18, 35, 0.018), (35, 65, 0.005))  # (age from, age to, hazard); else 0.0015
MOVE_OUT_OTHER = 0.0015

# Other-cause mortality: Gompertz h(a) = exp(A + B * (a - 80)) + child term, times multipliers.
GOMPERTZ_A = {"male": -4.35, "female": -4.75}
GOMPERTZ_B = 0.105
CHILD_MORTALITY = 0.0002
MORTALITY_MULT = {
    "smoker": 1.8,
    "ex_smoker": 1.25,
    "diabetes": 1.4,
    "copd": 1.8,
    "dementia": 2.2,
    "heart_failure": 1.9,
    "ckd": 1.3,
}
CANCER_EXCESS = {"lung_cancer": 0.35, "colorectal_cancer": 0.10, "other_cancer": 0.12}
CANCER_EXCESS_DEFAULT = 0.04
CANCER_EXCESS_YEARS = 5

# Risk factors (adults) ---------------------------------------------------------------------
BMI_BASE = 22.3
BMI_PER_YEAR = 0.085  # from age 18, up to age 62
BMI_SD = 4.5
SBP_SD = 15.0
TC_SD = 0.85
HDL_SD = 0.28
HBA1C_SD = 2.4
EGFR_SD = 11.0
BP_DRUG_EFFECT = 12.0  # mmHg
STATIN_EFFECT = 1.6  # mmol/L total cholesterol

# Smoking: daily smoking prevalence among adults by calendar year; persistent propensity.
SMOKING_2025 = 0.06
SMOKING_TREND = 0.041  # per year back in time (log scale): about 20 % in 1996

# Chronic conditions: yearly hazard = BASE * exp(linear predictor); see lifecourse.py.
HAZARD = {
    "t2d": 0.0031,
    "hypertension": 0.023,
    "hyperlipidaemia": 0.006,
    "af": 0.0034,
    "heart_failure": 0.0025,
    "copd": 0.00068,
    "dementia": 0.0105,
    "cancer": 0.0122,
    "obesity_dx": 0.06,
    "ckd_dx": 0.25,
}
LIFETIME = {  # share with onset drawn at birth, onset age range
    "t1d": (0.0075, 1, 30),
    "asthma_child": (0.065, 2, 15),
    "asthma_adult": (0.05, 16, 70),
    "depression": (0.14, 15, 75),
}

# Cardiovascular events: SCORE2 (moderate region) 10-year risk -> yearly hazard, times this.
CVD_MULTIPLIER = 0.9
# Hazard x exp(-slope * (age - 70)) above 70, where SCORE2-OP overstates first events in Sweden.
CVD_OLD_AGE_SLOPE = 0.03
CVD_PRIOR_EVENT_HR = 2.0
CVD_SPLIT = {  # share of events by sex: MI, stroke, other CVD death
    "male": (0.52, 0.39, 0.09),
    "female": (0.40, 0.49, 0.11),
}
CASE_FATALITY = {"mi": 0.12, "stroke": 0.14, "cvd_death": 1.0}

# Treatment ----------------------------------------------------------------------------------
TREAT = {
    "bp_drug_if_hypertension": 0.85,
    "statin_after_cvd": 0.85,
    "statin_if_diabetes_40": 0.4,
    "statin_if_hyperlipidaemia": 0.2,
    "metformin_if_t2d": 0.5,
    "second_diabetes_drug": 0.35,
    "anticoagulant_if_af": 0.75,
    "asa_after_cvd": 0.6,
    "beta_blocker_after_mi": 0.6,
    "hf_drugs": 0.8,
    "copd_inhaler": 0.85,
    "asthma_inhaler": 0.8,
    "antidepressant": 0.55,
    "dementia_drug": 0.5,
    "pci_after_mi": 0.6,
    "cabg_after_mi": 0.07,
}

# Care utilisation ---------------------------------------------------------------------------
PRIMARY_BASE = 1.45  # visits a year, adults 18-40 without chronic conditions
PRIMARY_CHILD = 1.6
PRIMARY_PER_AGE_YEAR = 0.02  # from 40
PRIMARY_PER_CONDITION = 0.55
HOSPITAL_BASE = 0.085  # stays a year besides acute events, rising with age
RECODE_CHRONIC = 0.35  # chance a chronic diagnosis is recorded again at a visit
DISPENSINGS_PER_YEAR = 4
DAYS_SUPPLY = 90
