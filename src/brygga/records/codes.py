"""Code systems and the clinical codes Brygga knows by name.

One definition of each code system (its name, format and whether codes are hierarchical, so that
"E11" matches "E11.9") and one catalogue of the codes the synthetic generator emits and the
criteria language accepts by alias (e.g. ``HbA1c`` for NPU27300).

OMOP concept ids are given only where the standard concept is well established; otherwise 0,
as the data model prescribes.
"""

from __future__ import annotations

__all__ = [
    "ALIASES",
    "CONDITIONS",
    "DRUGS",
    "GENDER_FEMALE",
    "GENDER_MALE",
    "GENDER_OF_SEX",
    "LABS",
    "OBSERVATIONS",
    "PROCEDURES",
    "SAFETY_LABS",
    "SEX_OF_GENDER",
    "SWEDISH",
    "TYPE_DISPENSING",
    "TYPE_EHR",
    "VISIT_EMERGENCY",
    "VISIT_INPATIENT",
    "VISIT_OUTPATIENT",
    "VOCABULARIES",
    "Code",
    "Lab",
    "Vocabulary",
    "code_name",
    "normalize_icd10",
    "resolve_alias",
    "resolve_aliases",
    "vocabulary",
]

import re
from dataclasses import dataclass

from brygga.errors import InputError


@dataclass(frozen=True)
class Vocabulary:
    id: str
    name: str
    pattern: re.Pattern[str]
    hierarchical: bool  # codes match by prefix
    example: str

    def validate(self, code: str) -> str:
        """Return the normalized code, or raise InputError naming the problem."""
        normalized = code.strip().upper() if self.id in {"ICD10", "ATC", "KVA"} else code.strip()
        if self.id == "ICD10":
            normalized = normalized.replace(".", "")
        if not self.pattern.fullmatch(normalized):
            raise InputError(
                f"{code!r} is not a valid {self.id} code ({self.name}; e.g. {self.example!r})"
            )
        return normalized


VOCABULARIES: dict[str, Vocabulary] = {
    v.id: v
    for v in (
        Vocabulary(
            "ICD10",
            "ICD-10-SE diagnosis",
            re.compile(r"[A-Z][0-9]{2}[0-9A-Z]{0,4}"),
            True,
            "E11.9",
        ),
        Vocabulary(
            "ATC",
            "Anatomical Therapeutic Chemical drug class",
            re.compile(r"[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?"),
            True,
            "A10BA02",
        ),
        Vocabulary("NPU", "NPU laboratory code", re.compile(r"NPU[0-9]{5}"), False, "NPU27300"),
        Vocabulary("LOINC", "LOINC observation", re.compile(r"[0-9]{1,7}-[0-9]"), False, "8480-6"),
        Vocabulary(
            "KVA",
            "KVÅ procedure (Swedish classification of care measures)",
            re.compile(r"[A-Z]{2,3}[0-9]{2,3}"),
            True,
            "FNG05",
        ),
        Vocabulary("SNOMED", "SNOMED CT concept", re.compile(r"[0-9]{6,18}"), False, "77176002"),
        Vocabulary("OMOP", "OMOP concept id", re.compile(r"[0-9]{1,10}"), False, "201826"),
    )
}


def vocabulary(vocab_id: str) -> Vocabulary:
    try:
        return VOCABULARIES[vocab_id.upper()]
    except KeyError:
        known = ", ".join(VOCABULARIES)
        raise InputError(f"unknown vocabulary {vocab_id!r}; known: {known}") from None


def normalize_icd10(code: str) -> str:
    """ICD-10 codes are stored and compared without the dot, as in Swedish registers:
    'E11.9' and 'E119' are the same code, stored as 'E119'."""
    return code.replace(".", "").upper()


# --- Catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    key: str  # Brygga's short name, used by the generator and as an alias in criteria
    vocabulary: str
    code: str
    label: str
    concept_id: int = 0


@dataclass(frozen=True)
class Lab(Code):
    unit: str = ""
    unit_concept_id: int = 0


# Diagnoses (ICD-10-SE). Concept ids are the OMOP standard SNOMED concepts.
CONDITIONS: dict[str, Code] = {
    c.key: c
    for c in (
        Code("t2d", "ICD10", "E119", "Type 2 diabetes mellitus without complications", 201826),
        Code("t1d", "ICD10", "E109", "Type 1 diabetes mellitus without complications", 201254),
        Code("hypertension", "ICD10", "I109", "Essential hypertension", 320128),
        Code("hyperlipidaemia", "ICD10", "E785", "Hyperlipidaemia, unspecified", 432867),
        Code("mi", "ICD10", "I219", "Acute myocardial infarction, unspecified", 4329847),
        Code("stroke", "ICD10", "I639", "Cerebral infarction, unspecified", 443454),
        Code("af", "ICD10", "I489", "Atrial fibrillation and flutter, unspecified", 313217),
        Code("heart_failure", "ICD10", "I509", "Heart failure, unspecified", 316139),
        Code("ckd", "ICD10", "N183", "Chronic kidney disease, stage 3", 0),
        Code("copd", "ICD10", "J449", "Chronic obstructive pulmonary disease, unspecified", 255573),
        Code("asthma", "ICD10", "J459", "Asthma, unspecified", 317009),
        Code("depression", "ICD10", "F329", "Depressive episode, unspecified", 440383),
        Code("dementia", "ICD10", "F039", "Unspecified dementia", 0),
        Code("alzheimer", "ICD10", "G309", "Alzheimer's disease, unspecified", 0),
        Code("obesity", "ICD10", "E669", "Obesity, unspecified", 433736),
        Code("breast_cancer", "ICD10", "C509", "Malignant neoplasm of breast", 0),
        Code("prostate_cancer", "ICD10", "C619", "Malignant neoplasm of prostate", 0),
        Code("colorectal_cancer", "ICD10", "C189", "Malignant neoplasm of colon", 0),
        Code("lung_cancer", "ICD10", "C349", "Malignant neoplasm of bronchus or lung", 0),
        Code("skin_cancer", "ICD10", "C439", "Malignant melanoma of skin", 0),
        Code("other_cancer", "ICD10", "C809", "Malignant neoplasm, unspecified", 0),
        Code("respiratory_infection", "ICD10", "J069", "Acute upper respiratory infection", 0),
        Code("back_pain", "ICD10", "M545", "Low back pain", 0),
        Code("checkup", "ICD10", "Z000", "General medical examination", 0),
        Code("cardiac_arrest", "ICD10", "I469", "Cardiac arrest, unspecified", 0),
        Code("ill_defined", "ICD10", "R99", "Other ill-defined causes of mortality", 0),
    )
}

DRUGS: dict[str, Code] = {
    c.key: c
    for c in (
        Code("metformin", "ATC", "A10BA02", "metformin"),
        Code("insulin", "ATC", "A10AE04", "insulin glargine"),
        Code("sglt2", "ATC", "A10BK01", "dapagliflozin"),
        Code("glp1", "ATC", "A10BJ06", "semaglutide"),
        Code("atorvastatin", "ATC", "C10AA05", "atorvastatin"),
        Code("simvastatin", "ATC", "C10AA01", "simvastatin"),
        Code("ramipril", "ATC", "C09AA05", "ramipril"),
        Code("losartan", "ATC", "C09CA01", "losartan"),
        Code("amlodipine", "ATC", "C08CA01", "amlodipine"),
        Code("hydrochlorothiazide", "ATC", "C03AA03", "hydrochlorothiazide"),
        Code("metoprolol", "ATC", "C07AB02", "metoprolol"),
        Code("furosemide", "ATC", "C03CA01", "furosemide"),
        Code("asa", "ATC", "B01AC06", "acetylsalicylic acid"),
        Code("ticagrelor", "ATC", "B01AC24", "ticagrelor"),
        Code("apixaban", "ATC", "B01AF02", "apixaban"),
        Code("salbutamol", "ATC", "R03AC02", "salbutamol"),
        Code("budesonide_formoterol", "ATC", "R03AK07", "formoterol and budesonide"),
        Code("tiotropium", "ATC", "R03BB04", "tiotropium bromide"),
        Code("sertraline", "ATC", "N06AB06", "sertraline"),
        Code("donepezil", "ATC", "N06DA02", "donepezil"),
        Code("levothyroxine", "ATC", "H03AA01", "levothyroxine"),
        Code("paracetamol", "ATC", "N02BE01", "paracetamol"),
        Code("phenoxymethylpenicillin", "ATC", "J01CE02", "phenoxymethylpenicillin"),
    )
}

# Laboratory tests carry NPU codes (as in Swedish laboratories); clinical measurements carry
# LOINC codes. Concept ids are the OMOP LOINC concepts of the equivalent test.
LABS: dict[str, Lab] = {
    c.key: c
    for c in (
        Lab("HbA1c", "NPU", "NPU27300", "B-Haemoglobin A1c (IFCC)", 3004410, "mmol/mol"),
        Lab("TC", "NPU", "NPU01566", "P-Cholesterol", 3027114, "mmol/L", 8753),
        Lab("HDL", "NPU", "NPU01567", "P-HDL cholesterol", 3007070, "mmol/L", 8753),
        Lab("LDL", "NPU", "NPU01568", "P-LDL cholesterol", 0, "mmol/L", 8753),
        Lab("creatinine", "NPU", "NPU04998", "P-Creatinine", 3016723, "µmol/L", 8749),
        Lab("SBP", "LOINC", "8480-6", "Systolic blood pressure", 3004249, "mmHg", 8876),
        Lab("DBP", "LOINC", "8462-4", "Diastolic blood pressure", 3012888, "mmHg", 8876),
        Lab("BMI", "LOINC", "39156-5", "Body mass index", 3038553, "kg/m2"),
        Lab("weight", "LOINC", "29463-7", "Body weight", 3025315, "kg", 9529),
        Lab("height", "LOINC", "8302-2", "Body height", 3036277, "cm", 8582),
    )
}

PROCEDURES: dict[str, Code] = {
    c.key: c
    for c in (
        Code("pci", "KVA", "FNG05", "Percutaneous coronary intervention with stent"),
        Code("cabg", "KVA", "FNC10", "Coronary artery bypass graft"),
        Code("colonoscopy", "KVA", "UJF32", "Colonoscopy"),
    )
}

# Smoking status as SNOMED CT findings.
OBSERVATIONS: dict[str, Code] = {
    c.key: c
    for c in (
        Code("never_smoker", "SNOMED", "266919005", "Never smoked tobacco"),
        Code("ex_smoker", "SNOMED", "8517006", "Ex-smoker"),
        Code("smoker", "SNOMED", "77176002", "Smoker"),
    )
}

# The catalogue's codes in Swedish, by key: what a Swedish reader sees and searches for (the
# labels above are the code systems' English titles). Generic drug names in their Swedish
# spelling (FASS).
SWEDISH: dict[str, str] = {
    # Diagnoses
    "t2d": "Typ 2-diabetes",
    "t1d": "Typ 1-diabetes",
    "hypertension": "Högt blodtryck",
    "hyperlipidaemia": "Höga blodfetter",
    "mi": "Hjärtinfarkt",
    "stroke": "Stroke",
    "af": "Förmaksflimmer",
    "heart_failure": "Hjärtsvikt",
    "ckd": "Kronisk njursjukdom",
    "copd": "KOL",
    "asthma": "Astma",
    "depression": "Depression",
    "dementia": "Demens",
    "alzheimer": "Alzheimers sjukdom",
    "obesity": "Fetma",
    "breast_cancer": "Bröstcancer",
    "prostate_cancer": "Prostatacancer",
    "colorectal_cancer": "Tjocktarmscancer",
    "lung_cancer": "Lungcancer",
    "skin_cancer": "Malignt melanom",
    "other_cancer": "Cancer utan angiven lokalisation",
    "respiratory_infection": "Akut övre luftvägsinfektion",
    "back_pain": "Ländryggssmärta",
    "checkup": "Allmän hälsokontroll",
    "cardiac_arrest": "Hjärtstopp",
    "ill_defined": "Andra ofullständigt angivna dödsorsaker",
    # Drugs
    "metformin": "metformin",
    "insulin": "insulin glargin",
    "sglt2": "dapagliflozin",
    "glp1": "semaglutid",
    "atorvastatin": "atorvastatin",
    "simvastatin": "simvastatin",
    "ramipril": "ramipril",
    "losartan": "losartan",
    "amlodipine": "amlodipin",
    "hydrochlorothiazide": "hydroklortiazid",
    "metoprolol": "metoprolol",
    "furosemide": "furosemid",
    "asa": "acetylsalicylsyra",
    "ticagrelor": "tikagrelor",
    "apixaban": "apixaban",
    "salbutamol": "salbutamol",
    "budesonide_formoterol": "formoterol och budesonid",
    "tiotropium": "tiotropiumbromid",
    "sertraline": "sertralin",
    "donepezil": "donepezil",
    "levothyroxine": "levotyroxin",
    "paracetamol": "paracetamol",
    "phenoxymethylpenicillin": "fenoximetylpenicillin",
    # Laboratory tests and measurements
    "HbA1c": "B-HbA1c (IFCC)",
    "TC": "P-Kolesterol",
    "HDL": "P-HDL-kolesterol",
    "LDL": "P-LDL-kolesterol",
    "creatinine": "P-Kreatinin",
    "SBP": "Systoliskt blodtryck",
    "DBP": "Diastoliskt blodtryck",
    "BMI": "Kroppsmasseindex (BMI)",
    "weight": "Kroppsvikt",
    "height": "Kroppslängd",
    # Procedures (KVÅ)
    "pci": "Perkutan koronar intervention (PCI) med stent",
    "cabg": "Kranskärlsoperation med bypass",
    "colonoscopy": "Koloskopi",
}


def code_name(code: Code, lang: str) -> str:
    """``code``'s name in ``lang`` (``sv`` or ``en``)."""
    return SWEDISH.get(code.key, code.label) if lang == "sv" else code.label


# Aliases usable in criteria (case-insensitive): name -> (vocabulary, code).
ALIASES: dict[str, Code] = {
    c.key.lower(): c for group in (LABS, OBSERVATIONS) for c in group.values()
}


# The common safety labs of trial protocols, each under its NPU code (Swedish laboratories)
# and its LOINC code (regions imported from OMOP): an alias in criteria matches both. eGFR
# has no national NPU code in Sweden (laboratories report it under local codes), so it maps
# to the LOINC codes of the creatinine-based equations only; a region with local eGFR codes
# asks for them by vocabulary.
SAFETY_LABS: dict[str, tuple[Code, ...]] = {
    group[0].key.lower(): group
    for group in (
        (
            Code("ALT", "NPU", "NPU19651", "P-Alanine transaminase (ALAT)"),
            Code("ALT", "LOINC", "1742-6", "Alanine aminotransferase, serum/plasma"),
        ),
        (
            Code("AST", "NPU", "NPU19654", "P-Aspartate transaminase (ASAT)"),
            Code("AST", "LOINC", "1920-8", "Aspartate aminotransferase, serum/plasma"),
        ),
        (
            Code("bilirubin", "NPU", "NPU01370", "P-Bilirubin"),
            Code("bilirubin", "LOINC", "1975-2", "Bilirubin total, serum/plasma"),
        ),
        (
            Code("ALP", "NPU", "NPU27783", "P-Alkaline phosphatase (ALP)"),
            Code("ALP", "LOINC", "6768-6", "Alkaline phosphatase, serum/plasma"),
        ),
        (
            Code("WBC", "NPU", "NPU02593", "B-Leukocytes"),
            Code("WBC", "LOINC", "6690-2", "Leukocytes, blood"),
        ),
        (
            Code("platelets", "NPU", "NPU03568", "B-Platelets"),
            Code("platelets", "LOINC", "777-3", "Platelets, blood"),
        ),
        (
            Code("haemoglobin", "NPU", "NPU02319", "B-Haemoglobin"),
            Code("haemoglobin", "LOINC", "718-7", "Haemoglobin, blood"),
        ),
        (
            Code("potassium", "NPU", "NPU03230", "P-Potassium"),
            Code("potassium", "LOINC", "2823-3", "Potassium, serum/plasma"),
        ),
        (
            Code("eGFR", "LOINC", "62238-1", "eGFR, creatinine-based (CKD-EPI)"),
            Code("eGFR", "LOINC", "98979-8", "eGFR, creatinine-based (CKD-EPI 2021)"),
            Code("eGFR", "LOINC", "33914-3", "eGFR, creatinine-based (MDRD)"),
        ),
    )
}


def resolve_alias(name: str) -> Code | None:
    return ALIASES.get(name.lower())


def resolve_aliases(name: str) -> tuple[Code, ...]:
    """Every code an alias in criteria stands for (one for most; NPU and LOINC for the
    safety labs); empty when ``name`` is no alias."""
    single = ALIASES.get(name.lower())
    return (single,) if single is not None else SAFETY_LABS.get(name.lower(), ())


GENDER_MALE = 8507
GENDER_FEMALE = 8532
# The sexes the criteria language, breakdowns and risk scores use; other concepts are unknown.
SEX_OF_GENDER: dict[int, str] = {GENDER_MALE: "male", GENDER_FEMALE: "female"}
GENDER_OF_SEX: dict[str, int] = {sex: concept for concept, sex in SEX_OF_GENDER.items()}
VISIT_OUTPATIENT = 9202
VISIT_INPATIENT = 9201
VISIT_EMERGENCY = 9203
TYPE_EHR = 32817
TYPE_DISPENSING = 32869
