"""The code table, as data (the README's mapping table says the same): kind → LOINC (or MDC)
coding, UCUM unit, category and vital-signs profile. Mapping code reads this table; it holds no ``if`` per kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.measurement import Coding, Kind

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MDC = "urn:oid:2.16.840.1.113883.6.24"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SNOMED = "http://snomed.info/sct"
MDC_11073 = "urn:iso:std:iso:11073:10101"
PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True)
class CodeSpec:
    codings: tuple[Coding, ...]
    category: str  # observation-category code
    profile: str | None = None  # a vital-signs profile the resource conforms to
    units: tuple[str, ...] = ()  # the UCUM units this code may carry (empty: any)
    text: str | None = None


def _loinc(code: str, display: str) -> Coding:
    return Coding(LOINC, code, display)


CODES: dict[Kind, CodeSpec] = {
    Kind.BLOOD_PRESSURE: CodeSpec(
        (_loinc("85354-9", "Blood pressure panel with all children optional"),),
        "vital-signs",
        "bp",
        ("mm[Hg]",),
        "Blood pressure",
    ),
    Kind.HEART_RATE: CodeSpec((_loinc("8867-4", "Heart rate"),), "vital-signs", "heartrate", ("/min",), "Heart rate"),
    Kind.RESTING_HEART_RATE: CodeSpec(
        (_loinc("40443-4", "Heart rate --resting"),), "vital-signs", "vitalsigns", ("/min",), "Resting heart rate"
    ),
    Kind.HRV_SDNN: CodeSpec(
        (_loinc("80404-7", "R-R interval.standard deviation (Heart rate variability)"),),
        "vital-signs",
        "vitalsigns",
        ("ms",),
        "Heart rate variability (SDNN)",
    ),
    Kind.BODY_WEIGHT: CodeSpec(
        (_loinc("29463-7", "Body weight"),), "vital-signs", "bodyweight", ("kg",), "Body weight"
    ),
    Kind.BODY_HEIGHT: CodeSpec((_loinc("8302-2", "Body height"),), "vital-signs", "bodyheight", ("cm",), "Body height"),
    Kind.BMI: CodeSpec((_loinc("39156-5", "Body mass index (BMI) [Ratio]"),), "vital-signs", "bmi", ("kg/m2",), "BMI"),
    Kind.BODY_FAT_PERCENT: CodeSpec(
        (_loinc("41982-0", "Percentage of body fat Measured"),), "vital-signs", None, ("%",), "Body fat"
    ),
    Kind.OXYGEN_SATURATION: CodeSpec(
        (
            _loinc("2708-6", "Oxygen saturation in Arterial blood"),
            _loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        ),
        "vital-signs",
        "oxygensat",
        ("%",),
        "Oxygen saturation",
    ),
    Kind.RESPIRATORY_RATE: CodeSpec(
        (_loinc("9279-1", "Respiratory rate"),), "vital-signs", "resprate", ("/min",), "Respiratory rate"
    ),
    Kind.BODY_TEMPERATURE: CodeSpec(
        (_loinc("8310-5", "Body temperature"),), "vital-signs", "bodytemp", ("Cel",), "Body temperature"
    ),
    Kind.STEPS: CodeSpec(
        (_loinc("55423-8", "Number of steps in unspecified time Pedometer"),), "activity", None, ("{steps}",), "Steps"
    ),
    Kind.ECG: CodeSpec((Coding(MDC, "131328", "MDC_ECG_ELEC_POTL"),), "procedure", None, (), "Electrocardiogram"),
}

# Glucose: the code depends on the unit (mass or moles) and on how it was measured.
GLUCOSE_CODES: dict[tuple[str, str], Coding] = {
    ("glucometer", "mg/dL"): _loinc("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),
    ("glucometer", "mmol/L"): _loinc("14743-9", "Glucose [Moles/volume] in Capillary blood by Glucometer"),
    ("blood", "mg/dL"): _loinc("2339-0", "Glucose [Mass/volume] in Blood"),
    ("blood", "mmol/L"): _loinc("15074-8", "Glucose [Moles/volume] in Blood"),
}

BLOOD_PRESSURE_COMPONENTS: dict[str, Coding] = {
    "systolic": _loinc("8480-6", "Systolic blood pressure"),
    "diastolic": _loinc("8462-4", "Diastolic blood pressure"),
    "mean": _loinc("8478-0", "Mean blood pressure"),
}
ECG_COMPONENTS: dict[str, Coding] = {
    "lead-I": Coding(MDC, "131329", "MDC_ECG_ELEC_POTL_I"),
    "heart-rate": _loinc("8867-4", "Heart rate"),
}

UCUM_UNITS = frozenset(
    {
        "mm[Hg]",
        "/min",
        "kg",
        "cm",
        "kg/m2",
        "%",
        "Cel",
        "mg/dL",
        "mmol/L",
        "{steps}",
        "ms",
        "uV",
        "m/s",
        "mL/min/kg",
        "a",
        "1",
    }
)
UNIT_DISPLAY = {"mm[Hg]": "mmHg", "/min": "beats/minute", "Cel": "°C", "{steps}": "steps", "uV": "µV"}

# A device's own in-range verdict, as FHIR interpretation (v3 ObservationInterpretation).
IN_RANGE: dict[bool, Coding] = {
    True: Coding(INTERPRETATION_SYSTEM, "N", "Normal"),
    False: Coding(INTERPRETATION_SYSTEM, "A", "Abnormal"),
}
# Glucose meal context (PHD IG: MDC_CTXT_GLU_MEAL with a SNOMED CT timing value).
MEAL_CONTEXT = Coding(MDC_11073, "8417864", "MDC_CTXT_GLU_MEAL")
MEAL_TIMING: dict[str, Coding] = {
    "before-meal": Coding(SNOMED, "307165006", "Before meal"),
    "after-meal": Coding(SNOMED, "24863003", "Postprandial"),
}
# ECG rhythm classifications (HealthKit's, Withings' AFib result) that have a SNOMED CT finding.
ECG_RHYTHMS: dict[str, Coding] = {
    "sinus-rhythm": Coding(SNOMED, "426783006", "Normal sinus rhythm"),
    "atrial-fibrillation": Coding(SNOMED, "49436004", "Atrial fibrillation"),
}

# The UCUM units of the R4 vital-signs profiles' value sets the hub accepts, with the factor (or
# function) to the canonical unit it stores: ucum-bodyweight (kg, g, [lb_av]), ucum-bodylength
# (cm, [in_i]), ucum-bodytemp (Cel, [degF]). Readings are stored in the canonical unit.
def _fahrenheit(value: float) -> float:
    return round((value - 32) * 5 / 9, 2)


UNIT_CONVERSIONS: dict[str, dict[str, float | Callable[[float], float]]] = {
    "kg": {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237},
    "cm": {"cm": 1.0, "[in_i]": 2.54, "m": 100.0},
    "Cel": {"Cel": 1.0, "[degF]": _fahrenheit},
    "mg/dL": {"mg/dL": 1.0, "g/L": 100.0, "mg/L": 0.1},
    "mmol/L": {"mmol/L": 1.0},
}


def to_canonical(value: float, unit: str, canonical: str) -> float | None:
    """``value`` in ``unit`` as ``canonical``, or None when the unit does not convert to it."""
    factor = UNIT_CONVERSIONS.get(canonical, {canonical: 1.0}).get(unit)
    if factor is None:
        return None
    return factor(value) if callable(factor) else round(value * factor, 6)
