"""FHIR mapping: codes, UCUM units, components, identifiers, ids; every resource validates."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from shared.fhir.mapping import batch_bundle, map_readings, observation
from shared.sources.withings import parser as withings
from tests.helpers.mapping import CASES, convert, heart_rate, observations


@pytest.mark.parametrize(("source", "format_name", "path"), CASES)
def test_conversion_is_deterministic(source, format_name, path):
    assert batch_bundle(convert(source, format_name, path)) == batch_bundle(convert(source, format_name, path))


def test_different_readings_never_share_an_id():
    ids = [
        r["id"] for source, fmt, path in CASES for r in convert(source, fmt, path) if r["resourceType"] == "Observation"
    ]
    assert len(ids) == len(set(ids)) > 10


def test_blood_pressure_is_one_observation_with_components():
    by_code = observations(convert(*CASES[0]))
    bp = by_code["85354-9"]
    assert "valueQuantity" not in bp
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert components["8480-6"] == {
        "value": 143,
        "unit": "mmHg",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert components["8462-4"]["value"] == 91
    assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
    assert "http://hl7.org/fhir/StructureDefinition/bp" in bp["meta"]["profile"]
    assert bp["effectiveDateTime"] == "2026-05-18T13:45:00+01:00"
    assert bp["identifier"] == [
        {"system": "urn:iomt-hub:medisante:reading", "value": "8d2f0c1a-7b3e-4e55-a1c9-3f6b2a9d0e11/blood-pressure"}
    ]
    assert bp["subject"] == {"reference": "Patient/p1"}
    assert bp["device"]["reference"].startswith("Device/dev-")
    heart_rate = by_code["8867-4"]
    assert heart_rate["valueQuantity"]["code"] == "/min"


def test_glucose_codes_depend_on_unit_and_method():
    glucose = observations(convert(*CASES[1]))["14743-9"]
    assert glucose["valueQuantity"]["code"] == "mmol/L"
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory"


def test_healthkit_codes_and_units():
    by_code = observations(convert(*CASES[3]))
    assert by_code["2708-6"]["valueQuantity"]["value"] == 97
    assert by_code["2708-6"]["code"]["coding"][1]["code"] == "59408-5"
    assert by_code["29463-7"]["valueQuantity"]["code"] == "kg"
    assert {"system": "urn:iomt-hub:reading-flag", "code": "manual-entry", "display": "Entered by hand"} in by_code[
        "29463-7"
    ]["meta"]["tag"]
    steps = by_code["55423-8"]
    assert steps["effectivePeriod"] == {"start": "2026-07-23T09:00:00+02:00", "end": "2026-07-23T10:00:00+02:00"}
    assert steps["valueQuantity"]["code"] == "{steps}"


def test_withings_unknown_type_keeps_source_code():
    by_code = observations(convert(*CASES[4]))
    assert by_code["8"]["code"]["coding"][0]["system"] == withings.MEASTYPE_SYSTEM
    assert "category" not in by_code["8"]






def test_one_instant_in_two_zones_keeps_each_offset():
    instant = dt.datetime(2026, 5, 29, 7, 27, 11, tzinfo=dt.UTC)
    texts = []
    for zone in (dt.UTC, ZoneInfo("Europe/Paris"), dt.timezone(dt.timedelta(hours=-5))):
        texts.append(observation(heart_rate(str(zone), instant.astimezone(zone)), "p1")["effectiveDateTime"])
    assert texts == ["2026-05-29T07:27:11+00:00", "2026-05-29T09:27:11+02:00", "2026-05-29T02:27:11-05:00"]


def test_the_repeated_hour_when_clocks_go_back_keeps_both_offsets():
    paris = ZoneInfo("Europe/Paris")
    first = dt.datetime(2026, 10, 25, 2, 30, tzinfo=paris)  # 02:30 summer time, then again in winter time
    texts = [
        observation(heart_rate(f"fold-{fold}", first.replace(fold=fold)), "p1")["effectiveDateTime"] for fold in (0, 1)
    ]
    assert texts == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]




def test_unattributed_readings_are_handed_back_not_dropped():
    reading = heart_rate("x", dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    mapped = map_readings([reading], lambda _: None)
    assert mapped.resources == []
    assert mapped.unattributed == [reading]


def _mutable_parts(value: object, path: str = "") -> Iterator[tuple[int, str]]:
    if isinstance(value, dict):
        yield id(value), path
        for key, item in value.items():
            yield from _mutable_parts(item, f"{path}.{key}")
    elif isinstance(value, list):
        yield id(value), path
        for index, item in enumerate(value):
            yield from _mutable_parts(item, f"{path}[{index}]")


@pytest.mark.parametrize(("source", "format_name", "path"), CASES)
def test_no_two_conversions_share_a_mutable_object(source, format_name, path):
    first = convert(source, format_name, path)
    second = convert(source, format_name, path)  # the same readings again: every cache is warm
    seen: dict[int, str] = {}
    for index, resource in enumerate([*first, *second]):
        for identity, where in _mutable_parts(resource, f"resource {index}"):
            assert identity not in seen, f"{where} is the same object as {seen[identity]}"
            seen[identity] = where
    changed = next(r for r in first if r["resourceType"] == "Observation")
    before = copy.deepcopy(next(r for r in second if r["resourceType"] == "Observation"))
    changed["meta"]["tag"].append({"system": "urn:x", "code": "changed"})
    changed["code"]["text"] = "changed"
    changed["subject"]["reference"] = "Patient/changed"
    again = next(r for r in convert(source, format_name, path) if r["resourceType"] == "Observation")
    assert again == before  # changing one converted resource changes no later one


def test_every_resource_names_its_tenant_and_the_same_readings_in_two_tenants_share_no_id():
    import hashlib

    from shared import conversion
    from shared.fhir.mapping import TENANT_TAG_SYSTEM, device_id, observation_id
    from shared.measurement import DeviceIdentity
    from tests.helpers.common import FIXTURES

    text = (FIXTURES / "medisante" / "blood-pressure.json").read_text()
    parsed = conversion.parse("medisante", "medisante-json", text)
    by_tenant = {tenant: map_readings(parsed.readings, lambda _: "p1", tenant).resources for tenant in ("a", "b")}
    for tenant, resources in by_tenant.items():
        assert resources
        for resource in resources:
            assert {"system": TENANT_TAG_SYSTEM, "code": tenant} in resource["meta"]["tag"]
            assert resource.get("device", {}).get("reference", "Device/").startswith("Device/")
    ids = {tenant: {r["id"] for r in resources} for tenant, resources in by_tenant.items()}
    assert ids["a"].isdisjoint(ids["b"])  # same patient id, same device serial, same reading: unrelated
    default = map_readings(parsed.readings, lambda _: "p1").resources
    assert all({"system": TENANT_TAG_SYSTEM, "code": "default"} in r["meta"]["tag"] for r in default)
    # The default tenant's ids are those written before tenants existed.
    reading = parsed.readings[0]
    system = f"urn:iomt-hub:{reading.source}:reading"
    expected = "obs-" + hashlib.sha256(f"default|p1|{system}|{reading.source_id}".encode()).hexdigest()[:40]
    assert observation_id(reading.source, reading.source_id, "p1") == expected
    identity = DeviceIdentity(source="medisante", identifiers=(("imei", "358000000000047"),))
    assert device_id(identity) == device_id(identity, "default") != device_id(identity, "a")
