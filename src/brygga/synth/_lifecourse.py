"""Life-course simulation of one chunk of synthetic people, vectorized over people.

Each person gets a birth date, sex, municipality, deprivation quintile and fixed personal
offsets for each risk factor. The simulation then steps through the years from a burn-in start
(``BURN_IN_YEARS`` before the record period, with no deaths: people present at its start were
alive by definition) to the end date. Each year risk factors follow age, sex, deprivation, BMI,
smoking and treatment; chronic conditions start with hazards that depend on them; cardiovascular
events follow the SCORE2 10-year risk (so prevention tools can be validated on the region);
people die (other causes by a Gompertz hazard with multipliers, or from a fatal event) or move
away. Only arrays: no Python loop over people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brygga.synth import _params as P
from brygga.synth._outcome import cvd_yearly_hazard

YEAR = 365.25
NONE = np.iinfo(np.int32).max  # "never happened" for day columns

CHRONIC = (
    "t2d",
    "t1d",
    "hypertension",
    "hyperlipidaemia",
    "af",
    "heart_failure",
    "ckd",
    "copd",
    "asthma",
    "depression",
    "dementia",
    "obesity",
)
CANCERS = (
    "breast_cancer",
    "prostate_cancer",
    "colorectal_cancer",
    "lung_cancer",
    "skin_cancer",
    "other_cancer",
)
DRUG_KEYS = (
    "ramipril",
    "losartan",
    "amlodipine",
    "hydrochlorothiazide",
    "atorvastatin",
    "simvastatin",
    "metformin",
    "sglt2",
    "glp1",
    "insulin",
    "apixaban",
    "asa",
    "metoprolol",
    "ticagrelor",
    "furosemide",
    "tiotropium",
    "budesonide_formoterol",
    "salbutamol",
    "sertraline",
    "donepezil",
    "levothyroxine",
)
RISK_FACTORS = ("bmi", "sbp", "tc", "hdl", "hba1c", "egfr", "smoking")


@dataclass
class Events:
    """Acute events: one row each (person index, day, kind)."""

    person: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)  # index into KINDS

    KINDS = ("mi", "stroke", "cvd_death", *CANCERS)

    def add(self, person: np.ndarray, day: np.ndarray, kind: int | np.ndarray) -> None:
        self.person.append(person.astype(np.int64))
        self.day.append(day.astype(np.int32))
        self.kind.append(np.broadcast_to(np.asarray(kind, np.int8), person.shape).copy())

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.person:
            return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int8)
        return np.concatenate(self.person), np.concatenate(self.day), np.concatenate(self.kind)


@dataclass
class LifeCourse:
    """Everything the care-event generator needs about a chunk of people."""

    male: np.ndarray
    birth: np.ndarray  # day number
    municipality: np.ndarray  # index into the region's municipalities
    deprivation: np.ndarray  # 1..5
    entry: np.ndarray  # first day in the region's records
    exit: np.ndarray  # last day (death, move or end date)
    died: np.ndarray  # bool
    death_cause: np.ndarray  # index into CAUSES, -1 if alive
    onset: dict[str, np.ndarray]  # condition -> day of onset (NONE if never)
    drug_start: dict[str, np.ndarray]
    drug_stop: dict[str, np.ndarray]
    events: Events
    # Yearly snapshots over the record period: shape (years, n).
    yearly: dict[str, np.ndarray]
    record_start: int
    end: int

    CAUSES = ("mi", "stroke", "cvd_death", "cancer", "dementia", "copd", "other")

    def __len__(self) -> int:
        return len(self.birth)

    def take(self, keep: np.ndarray) -> LifeCourse:
        """The same chunk restricted to the people in ``keep`` (a boolean mask)."""
        index = np.flatnonzero(keep)
        remap = np.full(len(self), -1, np.int64)
        remap[index] = np.arange(len(index))
        p, d, k = self.events.arrays()
        sel = keep[p] if len(p) else np.zeros(0, bool)
        events = Events()
        if sel.any():
            events.add(remap[p[sel]], d[sel], k[sel])
        return LifeCourse(
            male=self.male[keep],
            birth=self.birth[keep],
            municipality=self.municipality[keep],
            deprivation=self.deprivation[keep],
            entry=self.entry[keep],
            exit=self.exit[keep],
            died=self.died[keep],
            death_cause=self.death_cause[keep],
            onset={k_: v[keep] for k_, v in self.onset.items()},
            drug_start={k_: v[keep] for k_, v in self.drug_start.items()},
            drug_stop={k_: v[keep] for k_, v in self.drug_stop.items()},
            events=events,
            yearly={k_: v[:, keep] for k_, v in self.yearly.items()},
            record_start=self.record_start,
            end=self.end,
        )


# --- Age structure ------------------------------------------------------------------------


def target_age_density() -> np.ndarray:
    """Share of residents by single year of age 0..104 matching Sweden's age structure."""
    d = np.zeros(105)
    d[0:20] = 0.22 / 20
    d[20:65] = 0.57 / 45
    d[65:80] = 0.15 / 15
    old = np.exp(-0.13 * np.arange(25))
    d[80:105] = 0.055 * old / old.sum()
    return d / d.sum()


def realized_survival(lc: LifeCourse, bin_years: int = 5) -> np.ndarray:
    """Share of simulated people of each age-at-end (0..104) who end up resident at the end.

    Used on a pilot simulation with uniform ages, so that the real run can weight ages by
    target / survival and meet the age structure whatever the mortality parameters are.
    """
    age = np.clip(((lc.end - lc.birth) / YEAR).astype(int), 0, 104)
    resident = (lc.exit >= lc.end) & ~lc.died
    bins = age // bin_years
    total = np.bincount(bins, minlength=105 // bin_years + 1).astype(float)
    kept = np.bincount(bins, weights=resident, minlength=105 // bin_years + 1)
    share = np.where(total > 0, kept / np.maximum(total, 1), 0.0)
    return np.maximum(share[np.arange(105) // bin_years], 0.01)


def age_weights(survival: np.ndarray) -> np.ndarray:
    """Age-at-end weights for simulated people so that survivors match the target structure."""
    w = target_age_density() / survival
    return w / w.sum()


# --- Risk factors ---------------------------------------------------------------------------


def _smoking_prevalence(
    year: float, age: np.ndarray, male: np.ndarray, dep: np.ndarray
) -> np.ndarray:
    base = P.SMOKING_2025 * np.exp(P.SMOKING_TREND * (2025 - year))
    age_f = np.where(age < 16, 0.0, np.where(age < 25, 0.8, np.where(age < 65, 1.15, 0.75)))
    return base * age_f * (0.55 + 0.225 * (dep - 1)) * np.where(male, 1.0, 1.05)


# --- Simulation -----------------------------------------------------------------------------


def _days(date: str) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def draw_people(
    rng: np.random.Generator, n: int, age_weights: np.ndarray, end_date: str = P.END_DATE
) -> tuple[np.ndarray, np.ndarray]:
    """Sex (True = male) and birth day of ``n`` people; ``age_weights`` over ages 0..104 at
    the end date."""
    end = _days(end_date)
    male = rng.random(n) < 0.497
    age_end = rng.choice(105, size=n, p=age_weights) + rng.random(n)
    return male, np.floor(end - age_end * YEAR).astype(np.int32)


def simulate(
    rng: np.random.Generator,
    municipality: np.ndarray,
    male: np.ndarray,
    birth: np.ndarray,
    deprivation_mean: np.ndarray,
    years: int,
    end_date: str = P.END_DATE,
) -> LifeCourse:
    """Simulate one chunk of people (one municipality index, sex and birth day each)."""
    n = len(municipality)
    end = _days(end_date)
    record_start = round(end - years * YEAR)
    dep = np.clip(np.rint(deprivation_mean[municipality] + rng.normal(0, 1.1, n)), 1, 5).astype(
        np.int8
    )

    entry = np.maximum(birth, record_start).astype(np.int32)
    movers = (rng.random(n) < P.MOVE_IN_SHARE) & (birth < end - 2 * YEAR)
    entry[movers] = entry[movers] + (rng.random(movers.sum()) * (end - 30 - entry[movers])).astype(
        np.int32
    )

    state = _State.new(rng, n, male, birth, dep)
    sim_start = record_start - P.BURN_IN_YEARS * YEAR
    steps = P.BURN_IN_YEARS + years
    yearly = {k: np.full((years, n), np.nan, np.float32) for k in RISK_FACTORS}
    exit_ = np.full(n, end, np.int32)
    died = np.zeros(n, bool)
    cause = np.full(n, -1, np.int8)
    events = Events()

    for step in range(steps):
        t0 = sim_start + step * YEAR
        year = 1970 + (t0 + YEAR / 2) / YEAR
        alive = (birth < t0 + YEAR) & (exit_ >= t0) & ~died
        recorded = step >= P.BURN_IN_YEARS
        live = np.flatnonzero(alive)
        age = (t0 + YEAR / 2 - birth[live]) / YEAR
        rf = state.risk_factors(live, age, year)
        day = (t0 + rng.random(len(live)) * YEAR).astype(np.int32)
        state.conditions(live, age, rf, day)
        state.treat(live, age, rf, day)
        fatal = state.cardiovascular(live, age, rf, day, events)
        state.cancers(live, age, day, events)
        if recorded:
            row = step - P.BURN_IN_YEARS
            for k in RISK_FACTORS:
                yearly[k][row, live] = rf[k]
            # Deaths and moves only inside the record period, and only after entry.
            at_risk = entry[live] <= day
            other = state.other_death(live, age, rf, day) & at_risk & ~fatal
            fatal_here = fatal & at_risk
            dead = fatal_here | other
            died[live[dead]] = True
            exit_[live[fatal_here]] = np.minimum(state.fatal_day[live[fatal_here]], end)
            exit_[live[other]] = day[other]
            state.fatal_day[live[fatal & ~at_risk]] = NONE  # before moving in: survived
            cause[live[fatal_here]] = state.fatal_cause[live[fatal_here]]
            cause[live[other]] = state.other_cause(live[other])
            moves = (~dead) & at_risk & (rng.random(len(live)) < _move_out(age))
            exit_[live[moves]] = day[moves]
        else:
            state.fatal_day[live] = NONE  # fatal events before the record period are not deaths
    exit_ = np.minimum(exit_, end)
    for values in yearly.values():
        _forward_fill(values)
    return LifeCourse(
        male=male,
        birth=birth,
        municipality=municipality,
        deprivation=dep,
        entry=entry,
        exit=exit_,
        died=died,
        death_cause=cause,
        onset=state.onset,
        drug_start=state.drug_start,
        drug_stop=state.drug_stop,
        events=events,
        yearly=yearly,
        record_start=record_start,
        end=end,
    )


def _forward_fill(values: np.ndarray) -> None:
    """Carry each person's last yearly value forward (a death a few days into a new year)."""
    rows = np.where(~np.isnan(values), np.arange(values.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    values[:] = np.take_along_axis(values, rows, axis=0)


def _move_out(age: np.ndarray) -> np.ndarray:
    h = np.full(age.shape, P.MOVE_OUT_OTHER)
    for lo, hi, rate in P.MOVE_OUT:
        h[(age >= lo) & (age < hi)] = rate
    return h


def _p(hazard: np.ndarray) -> np.ndarray:
    return -np.expm1(-hazard)


@dataclass
class _State:
    rng: np.random.Generator
    male: np.ndarray
    birth: np.ndarray
    dep: np.ndarray
    offsets: dict[str, np.ndarray]
    smoke_u: np.ndarray
    onset: dict[str, np.ndarray]
    drug_start: dict[str, np.ndarray]
    drug_stop: dict[str, np.ndarray]
    ever_smoked_years: np.ndarray
    cvd_count: np.ndarray
    fatal_day: np.ndarray
    fatal_cause: np.ndarray
    cancer_day: np.ndarray
    cancer_kind: np.ndarray

    @classmethod
    def new(
        cls, rng: np.random.Generator, n: int, male: np.ndarray, birth: np.ndarray, dep: np.ndarray
    ) -> _State:
        offsets = {
            "bmi": rng.normal(0, P.BMI_SD, n),
            "sbp": rng.normal(0, P.SBP_SD, n),
            "tc": rng.normal(0, P.TC_SD, n),
            "hdl": rng.normal(0, P.HDL_SD, n),
            "hba1c": rng.normal(0, P.HBA1C_SD, n),
            "egfr": rng.normal(0, P.EGFR_SD, n),
            "dm_control": rng.normal(0, 9.0, n),
        }
        onset = {k: np.full(n, NONE, np.int32) for k in CHRONIC}
        for key, (share, lo, hi) in P.LIFETIME.items():
            has = rng.random(n) < share
            day = birth + ((lo + rng.random(n) * (hi - lo)) * YEAR).astype(np.int32)
            target = "asthma" if key.startswith("asthma") else key
            onset[target] = np.where(has, np.minimum(onset[target], day), onset[target])
        drugs = {k: np.full(n, NONE, np.int32) for k in DRUG_KEYS}
        stop = {k: np.full(n, NONE, np.int32) for k in DRUG_KEYS}
        # Hypothyroidism treatment: not modelled as a condition, only as a common dispensing.
        thyro = rng.random(n) < np.where(male, 0.012, 0.06)
        drugs["levothyroxine"][thyro] = birth[thyro] + (
            (25 + rng.random(thyro.sum()) * 50) * YEAR
        ).astype(np.int32)
        return cls(
            rng=rng,
            male=male,
            birth=birth,
            dep=dep,
            offsets=offsets,
            smoke_u=rng.random(n),
            onset=onset,
            drug_start=drugs,
            drug_stop=stop,
            ever_smoked_years=np.zeros(n, np.float32),
            cvd_count=np.zeros(n, np.int16),
            fatal_day=np.full(n, NONE, np.int32),
            fatal_cause=np.full(n, -1, np.int8),
            cancer_day=np.full(n, NONE, np.int32),
            cancer_kind=np.full(n, -1, np.int8),
        )

    def has(self, key: str, live: np.ndarray, day: np.ndarray | float) -> np.ndarray:
        return self.onset[key][live] <= day

    def on(self, drug: str, live: np.ndarray, day: np.ndarray | float) -> np.ndarray:
        return (self.drug_start[drug][live] <= day) & (self.drug_stop[drug][live] > day)

    def risk_factors(self, live: np.ndarray, age: np.ndarray, year: float) -> dict[str, np.ndarray]:
        rng, o = self.rng, self.offsets
        male, dep = self.male[live], self.dep[live].astype(float)
        t = (year - 1970) * YEAR
        adult = np.clip(age, 0, 62) - 18
        bmi = np.where(
            age < 18,
            16 + 0.3 * age + 0.4 * o["bmi"][live] / P.BMI_SD,
            P.BMI_BASE
            + P.BMI_PER_YEAR * np.maximum(adult, 0)
            + 0.35 * (dep - 3)
            + 0.4 * male
            + o["bmi"][live],
        )
        bmi = np.clip(bmi + rng.normal(0, 0.4, len(live)), 13, 70)
        smoker = self.smoke_u[live] < _smoking_prevalence(year, age, male, dep)
        self.ever_smoked_years[live] += smoker
        ever = self.ever_smoked_years[live] > 0
        smoking = np.where(smoker, 2, np.where(ever, 1, 0)).astype(np.float32)
        bp_treated = self.on("ramipril", live, t) | self.on("losartan", live, t)
        n_bp = bp_treated + self.on("amlodipine", live, t) + self.on("hydrochlorothiazide", live, t)
        sbp_raw = (
            114 + 0.45 * np.maximum(age - 20, 0) + 4 * male + 0.6 * (bmi - 26) + 1.0 * (dep - 3)
        )
        sbp_raw = sbp_raw + o["sbp"][live] + rng.normal(0, 4, len(live))
        sbp = np.where(
            age < 18,
            105 + rng.normal(0, 8, len(live)),
            sbp_raw - P.BP_DRUG_EFFECT * np.minimum(n_bp, 2) * 0.7,
        )
        statin = self.on("atorvastatin", live, t) | self.on("simvastatin", live, t)
        tc = (
            4.55
            + 0.028 * (np.clip(age, 20, 65) - 20)
            + 0.35 * (~male & (age > 50))
            + 0.04 * (bmi - 26)
        )
        tc = np.clip(
            tc + o["tc"][live] + rng.normal(0, 0.2, len(live)) - P.STATIN_EFFECT * statin, 1.5, 15
        )
        hdl = np.where(male, 1.3, 1.6) - 0.02 * (bmi - 26) - 0.08 * smoker + o["hdl"][live]
        hdl = np.clip(hdl + rng.normal(0, 0.05, len(live)), 0.4, 4.0)
        diabetic = self.has("t2d", live, t) | self.has("t1d", live, t)
        dm_years = np.where(
            diabetic, (t - np.minimum(self.onset["t2d"][live], self.onset["t1d"][live])) / YEAR, 0
        )
        a1c_dm = (
            54
            + 0.4 * np.clip(dm_years, 0, 25)
            + o["dm_control"][live]
            - 4 * self.on("metformin", live, t)
        )
        a1c = np.where(
            diabetic,
            a1c_dm,
            35 + 0.06 * np.maximum(age - 40, 0) + 0.25 * (bmi - 26) + o["hba1c"][live],
        )
        a1c = np.clip(a1c + rng.normal(0, 1.5, len(live)), 20, 150)
        egfr = 118 - 0.9 * np.maximum(age - 20, 0) + o["egfr"][live] - 8 * diabetic - 5 * bp_treated
        egfr = np.clip(egfr + rng.normal(0, 3, len(live)), 5, 140)
        return {
            "bmi": bmi,
            "sbp": sbp,
            "sbp_raw": sbp_raw,
            "tc": tc,
            "hdl": hdl,
            "hba1c": a1c,
            "egfr": egfr,
            "smoking": smoking,
            "smoker": smoker,
            "diabetic": diabetic,
        }

    def _start(self, key: str, live: np.ndarray, day: np.ndarray, hazard: np.ndarray) -> np.ndarray:
        """Start condition ``key`` with the given yearly hazard; returns who started now."""
        fresh = (self.onset[key][live] == NONE) & (self.rng.random(len(live)) < _p(hazard))
        self.onset[key][live[fresh]] = day[fresh]
        return fresh

    def conditions(
        self, live: np.ndarray, age: np.ndarray, rf: dict[str, np.ndarray], day: np.ndarray
    ) -> None:
        H, male, dep = P.HAZARD, self.male[live], self.dep[live]
        adult = age >= 25
        self._start(
            "t2d",
            live,
            day,
            adult
            * H["t2d"]
            * np.exp(0.11 * (rf["bmi"] - 27) + 0.045 * (age - 55) + 0.25 * male + 0.12 * (dep - 3)),
        )
        self._start(
            "hypertension",
            live,
            day,
            adult * H["hypertension"] * np.exp(0.05 * (rf["sbp_raw"] - 140) + 0.02 * (age - 60)),
        )
        self._start(
            "hyperlipidaemia",
            live,
            day,
            (age >= 30) * H["hyperlipidaemia"] * np.exp(0.9 * (rf["tc"] - 6)),
        )
        ht = self.has("hypertension", live, day)
        self._start(
            "af",
            live,
            day,
            (age >= 30)
            * H["af"]
            * np.exp(0.075 * (age - 70) + 0.3 * ht + 0.03 * (rf["bmi"] - 27) + 0.3 * male),
        )
        prior = self.cvd_count[live] > 0
        af = self.has("af", live, day)
        self._start(
            "heart_failure",
            live,
            day,
            (age >= 30)
            * H["heart_failure"]
            * np.exp(0.08 * (age - 70) + 1.0 * prior + 0.4 * ht + 0.4 * rf["diabetic"] + 0.3 * af),
        )
        pack = np.minimum(self.ever_smoked_years[live], 40) / 40
        self._start(
            "copd", live, day, (age >= 40) * H["copd"] * np.exp(0.06 * (age - 60)) * (1 + 14 * pack)
        )
        self._start(
            "dementia",
            live,
            day,
            (age >= 60)
            * H["dementia"]
            * np.exp(0.14 * (age - 80) + 0.2 * rf["diabetic"] + 0.15 * ht),
        )
        self._start("obesity", live, day, (age >= 18) * (rf["bmi"] >= 30) * H["obesity_dx"])
        self._start("ckd", live, day, (rf["egfr"] < 60) * H["ckd_dx"])

    def _begin(
        self,
        drug: str,
        who: np.ndarray,
        day: np.ndarray,
        share: float,
        stop_after: float | None = None,
    ) -> None:
        """Start ``drug`` for a ``share`` of ``who`` (global indices) not already on it."""
        pick = (self.rng.random(len(who)) < share) & (self.drug_start[drug][who] == NONE)
        idx = who[pick]
        self.drug_start[drug][idx] = day[pick]
        if stop_after is not None:
            self.drug_stop[drug][idx] = day[pick] + int(stop_after * YEAR)

    def treat(
        self, live: np.ndarray, age: np.ndarray, rf: dict[str, np.ndarray], day: np.ndarray
    ) -> None:
        T, rng = P.TREAT, self.rng
        new = {
            k: (self.onset[k][live] <= day) & (self.onset[k][live] > day - YEAR) for k in CHRONIC
        }
        ht = new["hypertension"]
        first = np.where(rng.random(len(live)) < 0.55, 0, 1)
        who = live[ht]
        self._begin(
            "ramipril", who[first[ht] == 0], day[ht][first[ht] == 0], T["bp_drug_if_hypertension"]
        )
        self._begin(
            "losartan", who[first[ht] == 1], day[ht][first[ht] == 1], T["bp_drug_if_hypertension"]
        )
        uncontrolled = self.has("hypertension", live, day) & (rf["sbp"] > 150)
        self._begin("amlodipine", live[uncontrolled], day[uncontrolled], 0.3)
        self._begin("hydrochlorothiazide", live[uncontrolled], day[uncontrolled], 0.12)
        dm = new["t2d"]
        self._begin("metformin", live[dm], day[dm], T["metformin_if_t2d"])
        poor = self.has("t2d", live, day) & (rf["hba1c"] > 60)
        for drug, share in (("sglt2", 0.12), ("glp1", 0.08), ("insulin", 0.05)):
            self._begin(drug, live[poor], day[poor], share)
        self._begin("insulin", live[new["t1d"]], day[new["t1d"]], 1.0)
        dm40 = (self.has("t2d", live, day)) & (age >= 40)
        self._begin("atorvastatin", live[dm40], day[dm40], T["statin_if_diabetes_40"] * 0.3)
        hl = new["hyperlipidaemia"]
        self._begin("simvastatin", live[hl], day[hl], T["statin_if_hyperlipidaemia"])
        self._begin("apixaban", live[new["af"]], day[new["af"]], T["anticoagulant_if_af"])
        hf = new["heart_failure"]
        for drug in ("furosemide", "metoprolol", "ramipril"):
            self._begin(drug, live[hf], day[hf], T["hf_drugs"])
        self._begin("tiotropium", live[new["copd"]], day[new["copd"]], T["copd_inhaler"])
        asthma = new["asthma"]
        self._begin("budesonide_formoterol", live[asthma], day[asthma], T["asthma_inhaler"])
        self._begin("salbutamol", live[asthma], day[asthma], 0.6)
        dep_new = new["depression"]
        self._begin("sertraline", live[dep_new], day[dep_new], T["antidepressant"], stop_after=1.5)
        self._begin("donepezil", live[new["dementia"]], day[new["dementia"]], T["dementia_drug"])

    def cardiovascular(
        self,
        live: np.ndarray,
        age: np.ndarray,
        rf: dict[str, np.ndarray],
        day: np.ndarray,
        events: Events,
    ) -> np.ndarray:
        """Draw MI / stroke / other CVD death from the SCORE2 hazard; returns who died of it."""
        rng = self.rng
        fatal = np.zeros(len(live), bool)
        eligible = np.flatnonzero(age >= 30)
        if not len(eligible):
            return fatal
        e = eligible
        hazard = P.CVD_MULTIPLIER * cvd_yearly_hazard(
            age[e],
            self.male[live[e]],
            rf["smoker"][e],
            np.clip(rf["sbp"][e], 80, 250),
            np.clip(rf["tc"][e], 2, 12),
            np.clip(rf["hdl"][e], 0.5, 3.5),
            rf["diabetic"][e],
        )
        hazard *= np.where(self.cvd_count[live[e]] > 0, P.CVD_PRIOR_EVENT_HR, 1.0)
        hazard *= np.exp(-P.CVD_OLD_AGE_SLOPE * np.maximum(age[e] - 70, 0))
        hit = rng.random(len(e)) < _p(hazard)
        who = e[hit]
        if not len(who):
            return fatal
        kinds = ("mi", "stroke", "cvd_death")
        split = np.where(
            self.male[live[who], None], P.CVD_SPLIT["male"], P.CVD_SPLIT["female"]
        ).cumsum(axis=1)
        k = (rng.random(len(who))[:, None] > split).sum(axis=1).clip(0, 2)
        events.add(live[who], day[who], k)
        g = live[who]
        self.cvd_count[g] += 1
        for i, name in enumerate(kinds):
            sel = k == i
            dies = sel & (rng.random(len(who)) < P.CASE_FATALITY[name])
            fatal[who[dies]] = True
            self.fatal_day[g[dies]] = day[who[dies]] + (rng.random(dies.sum()) * 27).astype(
                np.int32
            )
            self.fatal_cause[g[dies]] = i
        survivors = who[~fatal[who]]
        gs, ds = live[survivors], day[survivors]
        T = P.TREAT
        self._begin("atorvastatin", gs, ds, T["statin_after_cvd"])
        self._begin("asa", gs, ds, T["asa_after_cvd"])
        mi = survivors[k[~fatal[who]] == 0]
        self._begin("metoprolol", live[mi], day[mi], T["beta_blocker_after_mi"])
        self._begin("ticagrelor", live[mi], day[mi], 0.8, stop_after=1.0)
        return fatal

    def cancers(self, live: np.ndarray, age: np.ndarray, day: np.ndarray, events: Events) -> None:
        rng, male = self.rng, self.male[live]
        smoker_years = self.ever_smoked_years[live]
        hazard = (
            P.HAZARD["cancer"]
            * np.exp(0.065 * (age - 70))
            * (1 + 0.01 * np.minimum(smoker_years, 40))
        )
        hit = np.flatnonzero((age >= 15) & (rng.random(len(live)) < _p(hazard)))
        if not len(hit):
            return
        # Kind by sex: breast, prostate, colorectal, lung, melanoma, other.
        w_f = np.array([0.30, 0.0, 0.12, 0.08, 0.10, 0.40])
        w_m = np.array([0.0, 0.32, 0.12, 0.08, 0.09, 0.39])
        w = np.where(male[hit, None], w_m, w_f)
        w[:, 3] *= 1 + 0.12 * np.minimum(smoker_years[hit], 40)
        w /= w.sum(axis=1, keepdims=True)
        kind = (rng.random(len(hit))[:, None] > np.cumsum(w, axis=1)).sum(axis=1)
        g = live[hit]
        first = self.cancer_day[g] == NONE
        self.cancer_day[g[first]] = day[hit][first]
        self.cancer_kind[g[first]] = kind[first]
        events.add(g, day[hit], 3 + kind)

    def other_death(
        self, live: np.ndarray, age: np.ndarray, rf: dict[str, np.ndarray], day: np.ndarray
    ) -> np.ndarray:
        male = self.male[live]
        a = np.where(male, P.GOMPERTZ_A["male"], P.GOMPERTZ_A["female"])
        h = P.CHILD_MORTALITY + np.exp(a + P.GOMPERTZ_B * (age - 80))
        M = P.MORTALITY_MULT
        h = h * np.where(
            rf["smoking"] == 2, M["smoker"], np.where(rf["smoking"] == 1, M["ex_smoker"], 1.0)
        )
        h = h * np.where(rf["diabetic"], M["diabetes"], 1.0)
        for key in ("copd", "dementia", "heart_failure", "ckd"):
            h = h * np.where(self.has(key, live, day), M[key], 1.0)
        since = (day - self.cancer_day[live]) / YEAR
        recent = (since >= 0) & (since < P.CANCER_EXCESS_YEARS)
        kinds = np.array([P.CANCER_EXCESS.get(c, P.CANCER_EXCESS_DEFAULT) for c in CANCERS])
        h = h + np.where(recent, kinds[np.maximum(self.cancer_kind[live], 0)], 0.0)
        return self.rng.random(len(live)) < _p(h)

    def other_cause(self, who: np.ndarray) -> np.ndarray:
        """Underlying cause for other-cause deaths, index into LifeCourse.CAUSES."""
        cause = np.full(len(who), 6, np.int8)
        cause[self.onset["copd"][who] != NONE] = 5
        cause[self.onset["dementia"][who] != NONE] = 4
        cause[self.cancer_day[who] != NONE] = 3
        return cause
