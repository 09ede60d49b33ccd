"""Golden tests per provider and per measurement type, and a corpus of bad input."""

from __future__ import annotations

import datetime as dt
import json
import math

import orjson
import pytest

from shared import conversion, plausibility
from shared.errors import InvalidPayload
from shared.fhir.mapping import batch_bundle
from shared.measurement import Coding, Component, Kind, Measurement, ParseResult, Quantity
from shared.sources.healthkit import parser as healthkit
from shared.sources.medisante import fhir_standard
from shared.sources.medisante import parser as medisante
from shared.sources.withings import parser as withings
from tests.helpers.common import FHIR_BUNDLE, FIXTURES


def by_kind(result):
    return {m.kind: m for m in result.readings}


# -- Medisanté -----------------------------------------------------------------------------
def test_medisante_blood_pressure_with_pulse():
    result = medisante.parse_json((FIXTURES / "medisante" / "blood-pressure.json").read_text())
    readings = by_kind(result)
    bp = readings[Kind.BLOOD_PRESSURE]
    assert {c.name: (c.quantity.value, c.quantity.unit) for c in bp.components} == {
        "systolic": (143, "mm[Hg]"),
        "diastolic": (91, "mm[Hg]"),
        "mean": (108, "mm[Hg]"),
    }
    assert bp.effective_start.isoformat() == "2026-05-18T13:45:00+01:00"
    assert bp.source_id == "8d2f0c1a-7b3e-4e55-a1c9-3f6b2a9d0e11/blood-pressure"
    assert ("irregularHeartBeat", False) in bp.annotations
    assert readings[Kind.HEART_RATE].value.value == 77
    assert bp.device.identifiers[0] == ("urn:gsma:imei", "358000000000047")
    assert bp.issued.isoformat() == "2026-05-18T12:45:03.118204+00:00"


def test_medisante_glucose_with_empty_device_id_and_string_annotations():
    result = medisante.parse_json((FIXTURES / "medisante" / "glucose.json").read_text())
    [glucose] = result.readings
    assert (glucose.value.value, glucose.value.unit, glucose.method) == (5.5, "mmol/L", "glucometer")
    assert [s for s, _ in glucose.device.identifiers] == ["urn:gsma:imei", "urn:iomt-hub:medisante:serial-number"]
    assert dict(glucose.annotations) == {"feeling": "2"}  # the meal marker is coded (#14 item 13)
    [meal] = glucose.components
    assert (meal.name, meal.coded.code) == ("meal", "307165006")
    assert glucose.effective_start.utcoffset().total_seconds() == 0


def test_medisante_weight_with_string_boolean():
    [weight] = medisante.parse_json((FIXTURES / "medisante" / "weight.json").read_text()).readings
    assert (weight.kind, weight.value.value, weight.value.unit) == (Kind.BODY_WEIGHT, 81.4, "kg")
    assert weight.effective_start.isoformat() == "2026-03-01T08:02:05+01:00"


def _bp_document(**changes):
    document = json.loads((FIXTURES / "medisante" / "blood-pressure.json").read_text())
    for path, value in changes.items():
        target = document
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    return document


def test_medisante_epoch_timestamp_and_string_numbers_are_tolerated():
    document = _bp_document(measurements__timestamp=1779108300)
    document["measurements"]["systolicBloodPressure"]["value"] = "143"
    readings = by_kind(medisante.parse_document(document))
    assert readings[Kind.BLOOD_PRESSURE].effective_start.timestamp() == 1779108300
    assert readings[Kind.BLOOD_PRESSURE].components[0].quantity.value == 143


def test_medisante_xml_with_the_same_element_names():
    xml = """<?xml version="1.0"?><payload>
      <metadata><correlationId>x-1</correlationId><receivedTime>2026-05-18T12:45:03Z</receivedTime>
        <measurementType>BloodPressure</measurementType></metadata>
      <device><id></id><serialNumber>S1</serialNumber><IMEI>358000000000047</IMEI><manufacturer>TaiDoc</manufacturer></device>
      <measurements>
        <systolicBloodPressure><value>120</value><unit>mmHg</unit><isInRange>true</isInRange></systolicBloodPressure>
        <diastolicBloodPressure><value>80</value><unit>mmHg</unit></diastolicBloodPressure>
        <pulse><value>66</value><unit>bpm</unit></pulse>
        <annotations><irregularHeartBeat>true</irregularHeartBeat></annotations>
        <timestamp>2026-05-18T13:45:00+01:00</timestamp>
      </measurements></payload>"""
    readings = by_kind(medisante.parse_xml(xml))
    assert [c.quantity.value for c in readings[Kind.BLOOD_PRESSURE].components] == [120, 80]
    assert [c.code for c in readings[Kind.BLOOD_PRESSURE].interpretations] == ["irregular-heartbeat"]  # coded
    assert readings[Kind.HEART_RATE].value.value == 66


BILLION_LAUGHS = """<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>"""
XXE = """<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("parse", [medisante.parse_xml, fhir_standard.parse_xml])
@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, "<a><b></a>", "", "not xml"])
def test_hostile_or_broken_xml_is_a_clear_invalid_payload(parse, payload):
    with pytest.raises(InvalidPayload):
        parse(payload)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"metadata": {"correlationId": "x"', "malformed JSON"),
        ("[]", "the payload"),
        ('{"metadata": {"measurementType": "BloodPressure"}}', "correlationId"),
        (json.dumps(_bp_document(measurements__timestamp=None)), "timestamp"),
        (json.dumps(_bp_document(measurements__timestamp="2026-05-18 13:45")), "offset"),
        (json.dumps(_bp_document(measurements__systolicBloodPressure={"value": "high", "unit": "mmHg"})), "number"),
        (json.dumps(_bp_document(measurements__systolicBloodPressure={"value": True, "unit": "mmHg"})), "boolean"),
        (json.dumps(_bp_document(measurements__diastolicBloodPressure=None)), "diastolicBloodPressure"),
        (json.dumps(_bp_document(device={"id": ""})), "device"),
        (json.dumps(_bp_document(measurements__pulse={"value": 70, "unit": "kPa"})), "bpm"),
    ],
)
def test_medisante_bad_input_names_the_problem(text, words):
    with pytest.raises(InvalidPayload) as caught:
        medisante.parse_json(text)
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("systolic", "diastolic", "words"),
    [(900, 91, "systolic pressure"), (143, -5, "diastolic pressure"), (80, 90, "not above")],
)
def test_medisante_absurd_pressures_are_rejected_readings_with_reasons(systolic, diastolic, words):
    document = _bp_document()
    document["measurements"]["systolicBloodPressure"]["value"] = systolic
    document["measurements"]["diastolicBloodPressure"]["value"] = diastolic
    result = medisante.parse_document(document)
    assert [m.kind for m in result.readings] == [Kind.HEART_RATE]
    [rejected] = result.rejected
    assert words in rejected.reason


def test_medisante_negative_weight_is_rejected_and_unknown_type_reported():
    document = json.loads((FIXTURES / "medisante" / "weight.json").read_text())
    document["measurements"]["bodyWeight"]["value"] = -3
    assert medisante.parse_document(document).rejected[0].reason.startswith("body-weight is outside")
    document["metadata"]["measurementType"] = "Spirometry"
    result = medisante.parse_document(document)
    assert (result.readings, result.unknown_types) == ([], ["measurementType Spirometry"])


def test_plausibility_rejects_non_finite_values_of_any_kind():
    instant = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    result = ParseResult(
        readings=[
            Measurement(
                kind=Kind.OTHER,
                source="withings",
                source_id="a",
                effective_start=instant,
                value=Quantity(math.inf, "1"),
                source_code=Coding("urn:x", "8"),
            ),
            Measurement(
                kind=Kind.OTHER,
                source="withings",
                source_id="b",
                effective_start=instant,
                value=Quantity(4.5, "1"),
                source_code=Coding("urn:x", "8"),
            ),
            Measurement(
                kind=Kind.BLOOD_PRESSURE,
                source="withings",
                source_id="c",
                effective_start=instant,
                components=(
                    Component("systolic", Quantity(math.nan, "mm[Hg]")),
                    Component("diastolic", Quantity(80, "mm[Hg]")),
                ),
            ),
        ]
    )
    plausibility.drop_implausible(result)
    assert [m.source_id for m in result.readings] == ["b"]
    reasons = {r.source_id: r.reason for r in result.rejected}
    assert "not a finite number" in reasons["a"]
    assert "systolic pressure is outside" in reasons["c"]


# -- HealthKit -----------------------------------------------------------------------------
def test_healthkit_upload_fixture():
    result = healthkit.parse_upload_text((FIXTURES / "healthkit" / "upload.json").read_text())
    readings = by_kind(result)
    assert readings[Kind.OXYGEN_SATURATION].value.value == 97
    assert readings[Kind.OXYGEN_SATURATION].value.unit == "%"
    assert readings[Kind.BODY_WEIGHT].value.value == pytest.approx(69.99, abs=0.005)
    assert readings[Kind.BODY_WEIGHT].manual_entry is True
    assert readings[Kind.BODY_WEIGHT].device is None
    bp = readings[Kind.BLOOD_PRESSURE]
    assert [(c.name, c.quantity.value) for c in bp.components] == [("systolic", 128), ("diastolic", 84)]
    steps = readings[Kind.STEPS]
    assert (steps.value.value, steps.effective_start.isoformat(), steps.effective_end.isoformat()) == (
        1843,
        "2026-07-23T09:00:00+02:00",
        "2026-07-23T10:00:00+02:00",
    )
    assert readings[Kind.HEART_RATE].effective_start.isoformat() == "2026-07-23T15:44:05.993000+02:00"
    assert readings[Kind.HEART_RATE].device.identifiers[0][1].startswith("com.apple.health.142CD7CC")
    assert result.deleted_source_ids == ["DEADBEEF-0000-4000-8000-000000000001"]
    assert result.rejected == []


def _sample(**fields):
    base = {
        "uuid": "B9480B59-1C2D-4E5F-8A9B-0C1D2E3F4A5B",
        "type": "HKQuantityTypeIdentifierHeartRate",
        "value": 71,
        "unit": "count/min",
        "startDate": "2026-07-23T13:44:05Z",
        "endDate": "2026-07-23T13:44:05Z",
    }
    base.update(fields)
    return base


def test_healthkit_device_identity_does_not_depend_on_what_came_before():
    versions = [
        healthkit.device_identity(_sample(device={"localIdentifier": "watch", "softwareVersion": version}))
        for version in (1, 1.0, True)
    ]
    assert [v.version for v in versions] == ["1", "1.0", "True"]


@pytest.mark.parametrize(
    ("fields", "kind", "value", "unit"),
    [
        (
            {"type": "HKQuantityTypeIdentifierBodyTemperature", "value": 98.6, "unit": "degF"},
            Kind.BODY_TEMPERATURE,
            37.0,
            "Cel",
        ),
        ({"type": "HKQuantityTypeIdentifierHeight", "value": 70, "unit": "in"}, Kind.BODY_HEIGHT, 177.8, "cm"),
        ({"type": "HKQuantityTypeIdentifierHeight", "value": 1.8, "unit": "m"}, Kind.BODY_HEIGHT, 180.0, "cm"),
        ({"type": "HKQuantityTypeIdentifierHeight", "value": 6, "unit": "ft"}, Kind.BODY_HEIGHT, 182.9, "cm"),
        (
            {"type": "HKQuantityTypeIdentifierBodyFatPercentage", "value": 0.215, "unit": "%"},
            Kind.BODY_FAT_PERCENT,
            21.5,
            "%",
        ),
        (
            {"type": "HKQuantityTypeIdentifierBloodGlucose", "value": 5.4, "unit": "mmol<180.15588000005408>/L"},
            Kind.GLUCOSE,
            5.4,
            "mmol/L",
        ),
        ({"type": "HKQuantityTypeIdentifierBloodGlucose", "value": 97, "unit": "mg/dL"}, Kind.GLUCOSE, 97, "mg/dL"),
        ({"type": "HKQuantityTypeIdentifierBodyMass", "value": 70000, "unit": "g"}, Kind.BODY_WEIGHT, 70.0, "kg"),
    ],
)
def test_healthkit_unit_conversion(fields, kind, value, unit):
    [reading] = healthkit.parse_upload({"samples": [_sample(**fields)]}).readings
    assert (reading.kind, reading.value.value, reading.value.unit) == (kind, pytest.approx(value), unit)


def test_healthkit_timezone_metadata_gives_the_local_offset():
    [reading] = healthkit.parse_upload({"samples": [_sample(metadata={"HKTimeZone": "Europe/Paris"})]}).readings
    assert reading.effective_start.isoformat() == "2026-07-23T15:44:05+02:00"


@pytest.mark.parametrize("type_value", [["HKQuantityTypeIdentifierHeartRate"], {"a": 1}, 7])
def test_healthkit_type_that_is_not_a_string_is_a_rejected_sample(type_value):
    result = healthkit.parse_upload({"samples": [_sample(type=type_value)]})
    assert (result.readings, result.unknown_types) == ([], [])
    assert "type is missing or not a string" in result.rejected[0].reason


def test_healthkit_ecg():
    sample = _sample(
        type="HKElectrocardiogramType",
        samplingFrequency=512,
        classification="sinusRhythm",
        averageHeartRate=64,
        voltageMeasurements=[0.0001, -0.00005, 0.0002],
        voltageUnit="V",
    )
    [ecg] = healthkit.parse_upload({"samples": [sample]}).readings
    assert ecg.kind is Kind.ECG
    assert ecg.signal.samples == (100.0, -50.0, 200.0)
    assert ecg.signal.period_ms == pytest.approx(1000 / 512)
    assert ecg.interpretation == "sinusRhythm"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"uuid": "nope"}, "uuid"),
        ({"value": float("nan")}, "finite"),
        ({"value": -5}, "outside"),
        ({"startDate": "yesterday"}, "startDate"),
        ({"endDate": "2026-07-23T13:00:00Z"}, "before"),
        ({"type": "HKQuantityTypeIdentifierDietaryCaffeine"}, "not supported"),
        ({"unit": "count/fortnight"}, "unit"),
    ],
)
def test_healthkit_one_bad_sample_is_rejected_alone(fields, words):
    good = _sample(uuid="C0FFEE00-1234-4567-89AB-CDEF01234567")
    result = healthkit.parse_upload({"samples": [good, _sample(**fields)]})
    assert [m.source_id for m in result.readings] == ["C0FFEE00-1234-4567-89AB-CDEF01234567"]
    assert words in result.rejected[0].reason


# -- Withings ------------------------------------------------------------------------------
def test_withings_getmeas_fixture():
    result = withings.parse_text((FIXTURES / "withings" / "getmeas.json").read_text())
    ids = {m.source_id: m for m in result.readings}
    bp = ids["2726388728/blood-pressure"]
    assert [(c.name, c.quantity.value) for c in bp.components] == [("systolic", 143), ("diastolic", 106)]
    assert bp.effective_start.isoformat() == "2026-05-29T09:27:11+02:00"
    assert ids["2726388728/heart-rate"].value.value == 82
    manual = ids["2726375351/meastype-1"]
    assert (manual.value.value, manual.manual_entry, manual.device) == (56.3, True, None)
    assert ids["2726375999/meastype-1"].value.value == pytest.approx(72.35)
    assert ids["2726375999/meastype-6"].kind is Kind.BODY_FAT_PERCENT
    fat_mass = ids["2726375999/meastype-8"]
    assert (fat_mass.kind, fat_mass.source_code.code, fat_mass.value.unit) == (Kind.OTHER, "8", "kg")


def _group(measures, **fields):
    group = {
        "grpid": 1,
        "attrib": 0,
        "date": 1780039631,
        "created": 1780237692,
        "modified": 1780237692,
        "category": 1,
        "deviceid": "abc",
        "model": "Body+",
        "measures": measures,
    }
    group.update(fields)
    return {"measuregrps": [group], "timezone": "Europe/Paris"}


def test_withings_every_meastype_of_the_table_maps():
    measures = [{"value": 1, "type": t, "unit": 0} for t in withings.MEASTYPES if t not in (9, 10)]
    result = withings.parse_getmeas(_group(measures))
    assert len(result.readings) + len(result.rejected) == len(measures)
    assert all(m.kind is not Kind.OTHER or m.source_code for m in result.readings)


@pytest.mark.parametrize(
    ("measure", "value", "unit"),
    [
        ({"value": 56300, "type": 1, "unit": -3}, 56.3, "kg"),
        ({"value": 7235, "type": 1, "unit": -2}, 72.35, "kg"),
        ({"value": 123456789, "type": 1, "unit": -8}, 1.23456789, "kg"),
        ({"value": 115, "type": 4, "unit": -2}, 115, "cm"),  # metres to centimetres
        ({"value": 1734, "type": 4, "unit": -3}, 173.4, "cm"),
        ({"value": 3, "type": 11, "unit": 1}, 30, "/min"),
    ],
)
def test_withings_values_are_the_exact_decimal(measure, value, unit):
    [reading] = withings.parse_getmeas(_group([measure])).readings
    assert (reading.value.value, reading.value.unit) == (value, unit)  # exact: no float residue, no rounding


def test_withings_unknown_meastype_kept_under_own_code_and_reported():
    result = withings.parse_getmeas(_group([{"value": 42, "type": 999, "unit": 0}]))
    [reading] = result.readings
    assert (reading.kind, reading.source_code.system, reading.source_code.code) == (
        Kind.OTHER,
        withings.MEASTYPE_SYSTEM,
        "999",
    )
    assert result.unknown_types == ["meastype 999"]


def test_withings_ambiguous_and_amended_groups_are_flagged_not_dropped():
    result = withings.parse_getmeas(_group([{"value": 70, "type": 1, "unit": 0}], attrib=1, modified=1780300000))
    [reading] = result.readings
    assert reading.ambiguous_user is True
    assert reading.status == "preliminary"  # not confirmed as the patient's: shown as such (#14 item 11)
    edited = withings.parse_getmeas(_group([{"value": 70, "type": 1, "unit": 0}], attrib=0, modified=1780300000))
    assert edited.readings[0].status == "amended"


def test_withings_heart_ecg_and_activity():
    series = {
        "ecg": {"signalid": 77, "afib": 0},
        "heart_rate": 64,
        "timestamp": 1780039631,
        "timezone": "Europe/Paris",
        "deviceid": "abc",
        "model": "ScanWatch",
    }
    body = {"signal": list(range(9000)), "sampling_frequency": 300, "wearposition": 0}
    [ecg] = withings.parse_ecg(body, series=series).readings
    assert (ecg.source_id, len(ecg.signal.samples), ecg.interpretation) == ("ecg/77", 9000, "sinusRhythm")
    assert ecg.signal.period_ms == pytest.approx(3.333333)
    activity = withings.parse_activity(
        {"activities": [{"date": "2026-05-18", "timezone": "Europe/Paris", "steps": 8123}]}, userid="12345"
    )
    [steps] = activity.readings
    assert (steps.value.value, steps.effective_start.isoformat(), steps.effective_end.isoformat()) == (
        8123,
        "2026-05-18T00:00:00+02:00",
        "2026-05-19T00:00:00+02:00",
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"status": 401, "body": {}}', "status 401"),
        ('{"status": 0, "body": {"measuregrps": 3}}', "array"),
        ('{"status": 0', "malformed"),
        ('{"status": 0, "body": {"signal": [1]}}', "series"),
        ('{"status": 0, "body": {"something": []}}', "not a getmeas"),
    ],
)
def test_withings_bad_answers(text, words):
    with pytest.raises(InvalidPayload) as caught:
        withings.parse_text(text)
    assert words in caught.value.message


@pytest.mark.parametrize("timezone", ["x" * 300, "../../etc/passwd", "/etc/localtime", "Mars/Olympus_Mons"])
def test_withings_zone_that_is_not_a_zone_name_falls_back_to_utc(timezone):
    payload = _group([{"value": 70, "type": 1, "unit": 0}])
    payload["timezone"] = timezone
    [reading] = withings.parse_getmeas(payload).readings
    assert reading.effective_start.utcoffset() == dt.timedelta(0)


def test_withings_bad_group_is_rejected_alone():
    payload = _group([{"value": 70, "type": 1, "unit": 0}])
    payload["measuregrps"].append({"grpid": "x", "measures": []})
    payload["measuregrps"].append({"grpid": 3, "date": 1780039631, "measures": [{"value": -70, "type": 1, "unit": 0}]})
    result = withings.parse_getmeas(payload)
    assert len(result.readings) == 1
    assert len(result.rejected) == 2


@pytest.mark.parametrize(
    ("measure", "words"),
    [
        ({"value": 10**16, "type": 8, "unit": 0}, "value"),
        ({"value": 7, "type": 8, "unit": -21}, "unit"),
        ({"value": 10**15, "type": 8, "unit": 20}, "not a finite number below"),  # 10^35 kg
        ({"value": 10**15, "type": 999, "unit": 20}, "not a finite number below"),  # an unknown type too
    ],
)
def test_withings_absurd_magnitudes_are_rejected_with_a_reason_and_the_rest_still_writes(measure, words):
    good = {"value": 70, "type": 1, "unit": 0}
    payload = _group([good])
    payload["measuregrps"].append({**payload["measuregrps"][0], "grpid": 2, "measures": [measure]})
    text = json.dumps({"status": 0, "body": payload})
    parsed, mapped = conversion.convert("withings", "withings-json", text, lambda _: "p1")
    assert [m.source_id for m in parsed.readings] == ["1/meastype-1"]
    [rejected] = parsed.rejected
    assert rejected.source_id.startswith("2")
    assert words in rejected.reason
    assert orjson.loads(orjson.dumps(batch_bundle(mapped.resources)))["entry"]  # what is kept serialises


def test_withings_number_no_float_holds_refuses_the_answer_by_name():
    payload = _group([{"value": 70, "type": 1, "unit": 0}])
    text = json.dumps({"status": 0, "body": payload}).replace("70", "1" + "0" * 400)
    with pytest.raises(InvalidPayload) as caught:
        withings.parse_text(text)
    assert "number is infinity" in caught.value.message


def test_ecg_samples_and_components_past_any_real_magnitude_are_rejected():
    series = {"ecg": {"signalid": 78, "afib": 0}, "timestamp": 1780039631, "heart_rate": 64}
    assert withings.parse_ecg({"signal": [1, 2, 3], "sampling_frequency": 300}, series=series).readings
    too_large = withings.parse_ecg({"signal": [1, 2e9, 3], "sampling_frequency": 300}, series=series)
    assert too_large.readings == []
    assert "ECG sample" in too_large.rejected[0].reason
    ecg = {"type": "HKElectrocardiogramType", "samplingFrequency": 512, "voltageUnit": "V"}
    result = healthkit.parse_upload(
        {
            "samples": [
                _sample(uuid="A0000000-0000-4000-8000-000000000001", voltageMeasurements=[1e303], **ecg),
                _sample(
                    uuid="A0000000-0000-4000-8000-000000000002",
                    voltageMeasurements=[0.0001],
                    averageHeartRate=1e300,
                    **ecg,
                ),
            ]
        }
    )
    assert result.readings == []
    reasons = [r.reason for r in result.rejected]
    assert "ECG sample" in reasons[0]
    assert "heart-rate of ecg is not a finite number below" in reasons[1]


# -- FHIR standard -------------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Basic2", None])
def test_fhir_standard_entry_of_unknown_type_is_refused_by_name(resource_type):
    bundle = json.loads(json.dumps(FHIR_BUNDLE))
    bundle["entry"][0]["resource"]["resourceType"] = resource_type
    with pytest.raises(InvalidPayload) as caught:
        fhir_standard.parse_json(json.dumps(bundle))
    assert "unknown resourceType" in caught.value.message


def test_fhir_standard_json_and_xml_agree():
    from fhir.resources.R4B.bundle import Bundle

    from_json = fhir_standard.parse_json(json.dumps(FHIR_BUNDLE))
    xml = Bundle.model_validate(FHIR_BUNDLE).model_dump_xml()
    from_xml = fhir_standard.parse_xml(xml if isinstance(xml, str) else xml.decode())
    for result in (from_json, from_xml):
        [weight] = result.readings
        assert (weight.kind, weight.value.value, weight.device.identifiers[0][1]) == (
            Kind.BODY_WEIGHT,
            81.4,
            "358000000000047",
        )
        assert weight.effective_start.isoformat() == "2026-03-01T08:02:05+01:00"


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"resourceType": "Patient"}, "Observation or Bundle"),
        ({"resourceType": "Observation", "status": "final"}, "valid FHIR"),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueQuantity": {"value": "abc"},
            },
            "valid FHIR",
        ),
    ],
)
def test_fhir_standard_invalid_resources(document, words):
    with pytest.raises(InvalidPayload) as caught:
        fhir_standard.parse_json(json.dumps(document))
    assert words in caught.value.message


def test_fhir_observation_without_identifier_is_rejected_with_reason():
    document = json.loads(json.dumps(FHIR_BUNDLE))
    del document["entry"][1]["resource"]["identifier"]
    result = fhir_standard.parse_json(json.dumps(document))
    assert result.readings == []
    assert "identifier" in result.rejected[0].reason


def test_the_cyclic_collector_is_paused_during_conversions_and_resumes_after_the_last():
    import gc
    import threading

    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()
    states: list[bool] = []

    def long_conversion() -> None:
        with conversion.cyclic_gc_paused():
            inside.set()
            release.wait(10)

    other = threading.Thread(target=long_conversion)
    other.start()
    assert inside.wait(10)
    conversion.convert("medisante", "medisante-json", (FIXTURES / "medisante" / "weight.json").read_text(), str)
    states.append(gc.isenabled())  # the other conversion still runs: still paused
    release.set()
    other.join(10)
    states.append(gc.isenabled())
    assert states == [False, True]
