"""Clinical fidelity: what a device said is kept (status, period, units, context, flags), coded
where a standard code exists, and every emitted resource is valid against FHIR R4 and the
vital-signs profiles it claims (Medplum's validator plus the project's profile checker, with
negative controls that must fail). Payloads follow the vendors' documented shapes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import conversion
from shared.errors import InvalidPayload
from shared.fhir.mapping import map_readings
from shared.sources.healthkit import parser as healthkit
from shared.sources.medisante import fhir_standard
from shared.sources.medisante import parser as medisante
from shared.sources.withings import parser as withings
from tests.helpers.common import FIXTURES
from tests.helpers.fhir_validation import profile_issues, validate

PATIENT = "fidelity-p1"
VITALS = "http://hl7.org/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def observations(source: str, format_name: str, body: str, **options: Any) -> list[dict[str, Any]]:
    _, mapped = conversion.convert(source, format_name, body, lambda _: PATIENT, **options)
    return [r for r in mapped.resources if r["resourceType"] == "Observation"]


def fhir_observation(**fields: Any) -> dict[str, Any]:
    """An incoming R4 Observation as Medisanté's FHIR standard sends it."""
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:medisante:measurement", "value": fields.pop("ident", "m-1")}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "subject": {"reference": "Patient/x"},
        "effectiveDateTime": "2026-05-18T08:00:00+02:00",
        "valueQuantity": {"value": 70.5, "unit": "kg", "system": UCUM, "code": "kg"},
    }
    base.update(fields)
    return base


def one(resources: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(resources) == 1, resources
    return resources[0]


# -- FHIR-standard input -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["preliminary", "final", "amended", "corrected", "entered-in-error", "cancelled"])
def test_1_incoming_status_is_kept(status: str):
    resource = one(observations("medisante", "fhir-json", json.dumps(fhir_observation(status=status))))
    assert resource["status"] == status  # an entered-in-error one overwrites the reading as entered-in-error


def test_2_an_effective_period_stays_a_period_for_every_kind():
    ambulatory = fhir_observation(
        code={"coding": [{"system": LOINC, "code": "85354-9"}]},
        effectivePeriod={"start": "2026-05-18T08:00:00+02:00", "end": "2026-05-19T08:00:00+02:00"},
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": v, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
            }
            for code, v in (("8480-6", 128), ("8462-4", 79))
        ],
    )
    del ambulatory["effectiveDateTime"], ambulatory["valueQuantity"]
    resource = one(observations("medisante", "fhir-json", json.dumps(ambulatory)))
    assert resource["effectivePeriod"] == {"start": "2026-05-18T08:00:00+02:00", "end": "2026-05-19T08:00:00+02:00"}
    assert "effectiveDateTime" not in resource


@pytest.mark.parametrize(
    ("loinc", "quantity", "expected"),
    [
        ("29463-7", {"value": 154.3, "unit": "lb", "code": "[lb_av]"}, (69.989, "kg")),
        ("29463-7", {"value": 70500, "unit": "g", "code": "g"}, (70.5, "kg")),
        ("8310-5", {"value": 98.6, "unit": "°F", "code": "[degF]"}, (37.0, "Cel")),
        ("8302-2", {"value": 70, "unit": "in", "code": "[in_i]"}, (177.8, "cm")),
    ],
)
def test_3_every_unit_of_the_profile_value_sets_is_accepted_and_stored_canonical(loinc, quantity, expected):
    body = fhir_observation(
        code={"coding": [{"system": LOINC, "code": loinc}]}, valueQuantity={**quantity, "system": UCUM}
    )
    value = one(observations("medisante", "fhir-json", json.dumps(body)))["valueQuantity"]
    assert (round(value["value"], 3), value["code"]) == expected


def test_4_a_glucose_unit_outside_the_table_converts_or_is_a_rejected_reading_never_an_exception():
    grams = fhir_observation(
        code={"coding": [{"system": LOINC, "code": "2339-0"}]},
        valueQuantity={"value": 0.98, "unit": "g/L", "system": UCUM, "code": "g/L"},
    )
    value = one(observations("medisante", "fhir-json", json.dumps(grams)))["valueQuantity"]
    assert (value["value"], value["code"]) == (98, "mg/dL")
    odd = {**grams, "valueQuantity": {"value": 5, "unit": "mEq/L", "system": UCUM, "code": "mEq/L"}}
    parsed = fhir_standard.parse_json(json.dumps(odd))
    assert parsed.readings == []
    assert "cannot be converted to mg/dL or mmol/L" in parsed.rejected[0].reason


def test_5_interpretation_note_and_extensions_are_kept():
    interpretation = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}
    ]
    note = [{"text": "measured after exercise"}]
    extension = [{"url": "http://example.org/fhir/StructureDefinition/cuff-size", "valueString": "large"}]
    body = fhir_observation(interpretation=interpretation, note=note, extension=extension)
    resource = one(observations("medisante", "fhir-json", json.dumps(body)))
    assert resource["interpretation"] == interpretation
    assert resource["note"] == note
    assert resource["extension"] == extension


# -- Withings -----------------------------------------------------------------------------------------


def getmeas(*groups: dict[str, Any]) -> str:
    return json.dumps(
        {"status": 0, "body": {"updatetime": 1780300000, "timezone": "Europe/Paris", "measuregrps": list(groups)}}
    )


def group(grpid: int, measures: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "grpid": grpid,
        "attrib": 0,
        "date": 1780039631,
        "created": 1780039640,
        "modified": 1780039640,
        "category": 1,
        "deviceid": "dev-1",
        "model": "BPM Connect",
        "modelid": 45,
        "measures": measures,
        **fields,
    }


def test_6_a_grpid_twice_in_one_answer_is_one_group_the_latest_modified():
    older = group(7, [{"value": 70000, "type": 1, "unit": -3}], modified=1780039640)
    newer = group(7, [{"value": 71000, "type": 1, "unit": -3}], modified=1780050000)
    for order in ((older, newer), (newer, older)):
        [weight] = observations("withings", "withings-json", getmeas(*order))
        assert weight["valueQuantity"]["value"] == 71


@pytest.mark.parametrize(
    ("meastype", "value", "meaning"), [(130, 1, "Positive"), (139, 0, "Negative"), (130, 5, "Noise")]
)
def test_7_afib_results_are_coded_results_with_withings_meanings(meastype: int, value: int, meaning: str):
    [result] = observations(
        "withings", "withings-json", getmeas(group(8, [{"value": value, "type": meastype, "unit": 0}]))
    )
    assert "valueQuantity" not in result
    assert result["valueCodeableConcept"]["coding"][0] == {
        "system": withings.AFIB_SYSTEM,
        "code": str(value),
        "display": meaning,
    }


@pytest.mark.parametrize("meastype", [135, 136, 137, 138])
def test_8_ecg_intervals_are_converted_from_seconds_to_ms(meastype: int):
    [interval] = observations(
        "withings", "withings-json", getmeas(group(9, [{"value": 98, "type": meastype, "unit": -3}]))
    )
    assert (interval["valueQuantity"]["value"], interval["valueQuantity"]["code"]) == (98, "ms")


def test_9_meastype_12_is_not_coded_as_body_temperature_but_71_is():
    resources = observations(
        "withings",
        "withings-json",
        getmeas(
            group(10, [{"value": 365, "type": 12, "unit": -1}]), group(11, [{"value": 368, "type": 71, "unit": -1}])
        ),
    )
    by_type = {r["code"]["coding"][-1]["code"]: r for r in resources}
    assert [c["code"] for c in by_type["12"]["code"]["coding"]] == ["12"]
    assert by_type["8310-5"]["code"]["coding"][0]["code"] == "8310-5"


def test_10_one_device_never_alternates_between_getmeas_and_the_heart_list():
    _, from_getmeas = conversion.convert(
        "withings",
        "withings-json",
        getmeas(group(12, [{"value": 70000, "type": 1, "unit": -3}], model="BPM Core", modelid=44)),
        lambda _: PATIENT,
    )
    heart = {
        "status": 0,
        "body": {
            "signal": [1, 2, 3],
            "sampling_frequency": 500,
            "series": {"deviceid": "dev-1", "model": 44, "ecg": {"signalid": 5, "afib": 0}, "timestamp": 1780039631},
        },
    }
    _, from_heart = conversion.convert("withings", "withings-json", json.dumps(heart), lambda _: PATIENT)
    [a] = [r for r in from_getmeas.resources if r["resourceType"] == "Device"]
    [b] = [r for r in from_heart.resources if r["resourceType"] == "Device"]
    assert a == b
    assert a["deviceName"] == [{"name": "BPM Core", "type": "model-name"}]
    assert a["modelNumber"] == "44"


def test_11_ambiguous_and_inaccurate_readings_are_visible_and_distinct():
    ambiguous, at_creation, manual = (
        one(
            observations(
                "withings", "withings-json", getmeas(group(n, [{"value": 70000, "type": 1, "unit": -3}], attrib=a))
            )
        )
        for n, a in ((13, 1), (14, 4), (15, 2))
    )
    assert ambiguous["status"] == "preliminary"
    assert "could not tell which user" in ambiguous["note"][0]["text"]
    assert at_creation["status"] == "final"
    assert "may not be accurate" in at_creation["note"][0]["text"]
    assert at_creation["note"][0]["text"] != manual["note"][0]["text"]


# -- HealthKit and Medisanté ---------------------------------------------------------------------------


def healthkit_upload(*samples: dict[str, Any]) -> str:
    return json.dumps({"samples": list(samples)})


def hk(type_name: str, **fields: Any) -> dict[str, Any]:
    return {
        "uuid": fields.pop("uuid", "5E2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F"),
        "type": type_name,
        "startDate": "2026-11-20T07:30:00+01:00",
        "endDate": "2026-11-20T07:30:00+01:00",
        **fields,
    }


def test_12_a_sample_over_time_keeps_its_end():
    hrv = hk(
        "HKQuantityTypeIdentifierHeartRateVariabilitySDNN", value=48, unit="ms", endDate="2026-11-20T07:31:00+01:00"
    )
    resource = one(observations("healthkit", "healthkit-json", healthkit_upload(hrv)))
    assert resource["effectivePeriod"] == {"start": "2026-11-20T07:30:00+01:00", "end": "2026-11-20T07:31:00+01:00"}


@pytest.mark.parametrize(("meal_time", "code"), [(1, "307165006"), (2, "24863003")])
def test_13_glucose_meal_context_is_coded(meal_time: int, code: str):
    sample = hk(
        "HKQuantityTypeIdentifierBloodGlucose",
        value=5.4,
        unit="mmol<180.15588000005408>/L",
        metadata={"HKBloodGlucoseMealTime": meal_time},
    )
    [meal] = one(observations("healthkit", "healthkit-json", healthkit_upload(sample)))["component"]
    assert meal["code"]["coding"][0]["code"] == "8417864"
    assert meal["valueCodeableConcept"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": code,
        "display": "Before meal" if meal_time == 1 else "Postprandial",
    }
    glucose = one(observations("medisante", "medisante-json", (FIXTURES / "medisante" / "glucose.json").read_text()))
    assert glucose["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "307165006"  # mealMarker 1


def test_14_medisante_flags_are_coded_interpretations():
    document = json.loads((FIXTURES / "medisante" / "blood-pressure.json").read_text())
    document["measurements"]["annotations"]["irregularHeartBeat"] = True
    document["measurements"]["systolicBloodPressure"]["isInRange"] = "false"
    resources = observations("medisante", "medisante-json", json.dumps(document))
    bp = next(r for r in resources if r["code"]["coding"][0]["code"] == "85354-9")
    assert bp["interpretation"][0]["coding"][0]["code"] == "irregular-heartbeat"
    systolic = next(c for c in bp["component"] if c["code"]["coding"][0]["code"] == "8480-6")
    assert systolic["interpretation"][0]["coding"][0]["code"] == "A"


def test_15_ecg_classification_is_coded_and_the_heart_list_blood_pressure_is_kept():
    ecg = hk(
        "HKElectrocardiogramType",
        classification="atrialFibrillation",
        samplingFrequency=512,
        voltageMeasurements=[0.1, 0.2, 0.1],
        voltageUnit="mV",
        endDate="2026-11-20T07:30:30+01:00",
    )
    resource = one(observations("healthkit", "healthkit-json", healthkit_upload(ecg)))
    assert resource["interpretation"][0]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "49436004",
        "display": "Atrial fibrillation",
    }
    heart = {
        "status": 0,
        "body": {
            "signal": [1, 2],
            "sampling_frequency": 500,
            "series": {
                "deviceid": "d",
                "model": 44,
                "ecg": {"signalid": 6, "afib": 1},
                "bloodpressure": {"systole": 131, "diastole": 84},
                "heart_rate": 70,
                "timestamp": 1780039631,
            },
        },
    }
    resources = observations("withings", "withings-json", json.dumps(heart))
    bp = next(r for r in resources if r["code"]["coding"][0]["code"] == "85354-9")
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [131, 84]


def test_16_medisante_epoch_timestamps_keep_the_device_offset():
    document = json.loads((FIXTURES / "medisante" / "weight.json").read_text())
    document["measurements"]["timestamp"] = 1780038000
    document["device"]["timezone"] = "Europe/Paris"
    resource = one(observations("medisante", "medisante-json", json.dumps(document)))
    assert resource["effectiveDateTime"] == "2026-05-29T09:00:00+02:00"


def test_17_an_unknown_type_asserts_no_ucum_code():
    [unknown] = observations("withings", "withings-json", getmeas(group(16, [{"value": 5, "type": 999, "unit": 0}])))
    assert unknown["valueQuantity"] == {"value": 5}


# -- proof against the R4 profiles -----------------------------------------------------------------------


def every_emitted_resource() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = []
    for path in sorted((FIXTURES / "medisante").glob("*.json")):
        resources += conversion.convert("medisante", "medisante-json", path.read_text(), lambda _: PATIENT)[1].resources
    resources += conversion.convert(
        "healthkit", "healthkit-json", (FIXTURES / "healthkit" / "upload.json").read_text(), lambda _: PATIENT
    )[1].resources
    resources += conversion.convert(
        "withings", "withings-json", (FIXTURES / "withings" / "getmeas.json").read_text(), lambda _: PATIENT
    )[1].resources
    golden = [
        getmeas(group(20, [{"value": 1, "type": 130, "unit": 0}, {"value": 98, "type": 135, "unit": -3}], attrib=1)),
        getmeas(group(21, [{"value": 365, "type": 12, "unit": -1}, {"value": 5, "type": 999, "unit": 0}])),
    ]
    for body in golden:
        resources += conversion.convert("withings", "withings-json", body, lambda _: PATIENT)[1].resources
    samples = [
        hk(
            "HKQuantityTypeIdentifierBloodGlucose",
            uuid="6E2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F",
            value=99,
            unit="mg/dL",
            metadata={"HKBloodGlucoseMealTime": 2},
        ),
        hk(
            "HKQuantityTypeIdentifierHeartRateVariabilitySDNN",
            uuid="7E2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F",
            value=48,
            unit="ms",
            endDate="2026-11-20T07:31:00+01:00",
        ),
        hk(
            "HKQuantityTypeIdentifierBodyTemperature",
            uuid="8E2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F",
            value=98.6,
            unit="degF",
        ),
        hk("HKQuantityTypeIdentifierHeight", uuid="9E2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F", value=1.78, unit="m"),
        hk(
            "HKQuantityTypeIdentifierBodyMassIndex",
            uuid="AE2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F",
            value=22.1,
            unit="count",
        ),
        hk(
            "HKQuantityTypeIdentifierRespiratoryRate",
            uuid="BE2C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F",
            value=14,
            unit="count/min",
        ),
    ]
    resources += conversion.convert("healthkit", "healthkit-json", healthkit_upload(*samples), lambda _: PATIENT)[
        1
    ].resources
    fahrenheit = fhir_observation(
        code={"coding": [{"system": LOINC, "code": "8310-5"}]},
        valueQuantity={"value": 98.6, "unit": "°F", "system": UCUM, "code": "[degF]"},
    )
    resources += conversion.convert("medisante", "fhir-json", json.dumps(fahrenheit), lambda _: PATIENT)[1].resources
    return resources


def test_every_emitted_resource_is_valid_against_r4_and_the_profiles_it_claims():
    resources = every_emitted_resource()
    claimed = {url.rsplit("/", 1)[-1] for r in resources for url in r.get("meta", {}).get("profile", [])}
    assert {
        "vitalsigns",
        "bp",
        "heartrate",
        "bodyweight",
        "bodyheight",
        "bmi",
        "oxygensat",
        "bodytemp",
        "resprate",
    } <= claimed
    for resource in resources:
        validate(resource)
    problems = {
        f"{r['resourceType']}/{r['id']} {r['code'].get('text', '') if 'code' in r else ''}": issues
        for r, issues in zip(resources, profile_issues(resources), strict=True)
        if issues
    }
    assert problems == {}


def negative(**changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(NEGATIVE_BASE)
    resource.update(changes)
    return resource


NEGATIVE_BASE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "neg",
    "status": "final",
    "meta": {"profile": [VITALS + "vitalsigns", VITALS + "bp"]},
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
    ],
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
    "subject": {"reference": "Patient/p"},
    "effectiveDateTime": "2026-05-18T08:00:00+02:00",
    "component": [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
            "valueQuantity": {"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
    ],
}


def test_the_validator_passes_the_specs_blood_pressure_shape_and_fails_every_negative_control():
    heart_rate = {
        **{k: v for k, v in NEGATIVE_BASE.items() if k != "component"},
        "meta": {"profile": [VITALS + "vitalsigns", VITALS + "heartrate"]},
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "valueQuantity": {"value": 70, "unit": "beats/min", "system": UCUM, "code": "{beats}/min"},
    }
    kpa = negative(
        component=[
            NEGATIVE_BASE["component"][0]
            | {"valueQuantity": {"value": 16, "unit": "kPa", "system": UCUM, "code": "kPa"}},
            NEGATIVE_BASE["component"][1],
        ]
    )
    controls = {
        "valid blood pressure": NEGATIVE_BASE,  # Medplum alone reports "SystolicBP found 0" here
        "{beats}/min heart rate": heart_rate,
        "missing diastolic": negative(component=NEGATIVE_BASE["component"][:1]),
        "kPa component": kpa,
        "year-only date": negative(effectiveDateTime="2026"),
    }
    verdicts = dict(zip(controls, profile_issues(list(controls.values())), strict=True))
    assert verdicts.pop("valid blood pressure") == []
    for name, issues in verdicts.items():
        assert issues, f"the negative control {name!r} passed the validator"


# -- no input raises from parsing or mapping -------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
FIXTURE_BODIES = {
    "medisante": [json.loads(p.read_text()) for p in sorted((FIXTURES / "medisante").glob("*.json"))],
    "healthkit": [json.loads((FIXTURES / "healthkit" / "upload.json").read_text())],
    "withings": [json.loads((FIXTURES / "withings" / "getmeas.json").read_text())],
}
PARSERS = {
    "medisante": lambda text: medisante.parse_json(text),
    "fhir": lambda text: fhir_standard.parse_json(text),
    "healthkit": lambda text: healthkit.parse_upload_text(text),
    "withings": lambda text: withings.parse_text(text, userid="1"),
}


def graft(document: Any, path: list[int], value: Any) -> Any:
    """The document with the node that ``path`` picks replaced by ``value``."""
    if not path or not isinstance(document, (dict, list)) or not document:
        return value
    keys = list(document) if isinstance(document, dict) else list(range(len(document)))
    key = keys[path[0] % len(keys)]
    copied = copy.copy(document)
    copied[key] = graft(document[key], path[1:], value)
    return copied


def parse_and_map(parser: str, text: str) -> None:
    try:
        parsed = PARSERS[parser](text)
    except InvalidPayload:
        return
    mapped = map_readings(parsed.readings, lambda _: PATIENT)
    json.dumps(mapped.resources)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    parser=st.sampled_from(["medisante", "healthkit", "withings"]),
    fixture=st.integers(0, 2),
    path=st.lists(st.integers(0, 20), max_size=6),
    value=JSON_VALUES,
)
def test_no_mutated_payload_raises_from_parsing_or_mapping(parser: str, fixture: int, path: list[int], value: Any):
    bodies = FIXTURE_BODIES[parser]
    parse_and_map(parser, json.dumps(graft(bodies[fixture % len(bodies)], path, value)))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    code=st.sampled_from(["29463-7", "8867-4", "85354-9", "2339-0", "41653-7", "8310-5", "8302-2", "55423-8", "x"]),
    unit=st.sampled_from(["kg", "g/L", "[lb_av]", "kPa", "mEq/L", "", "{beats}/min", "[degF]", "mg/dL", "1"]),
    number=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20),
    status=st.sampled_from(["final", "amended", "entered-in-error", "registered", "unknown"]),
    period=st.booleans(),
)
def test_no_fhir_observation_raises_from_parsing_or_mapping(code, unit, number, status, period):
    body = fhir_observation(
        code={"coding": [{"system": LOINC, "code": code}]},
        status=status,
        valueQuantity={"value": number, "unit": unit, "system": UCUM, "code": unit} if unit else {"value": number},
    )
    if period:
        body.pop("effectiveDateTime")
        body["effectivePeriod"] = {"start": "2026-05-18T08:00:00+02:00", "end": "2026-05-18T09:00:00+02:00"}
    parse_and_map("fhir", json.dumps(body))
