"""Measurement → FHIR R4 JSON (plain dicts: fast; the tests validate them with fhir.resources).

Idempotency lives here: every Observation carries ``identifier`` = (source system URI, the
source's own id) and a logical ``id`` hashed from it, written with ``PUT``, so the same reading
delivered any number of times, concurrently or not, is one Observation."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.fhir.codes import (
    BLOOD_PRESSURE_COMPONENTS,
    CATEGORY_SYSTEM,
    CODES,
    ECG_COMPONENTS,
    GLUCOSE_CODES,
    PROFILE_BASE,
    UCUM,
    UCUM_UNITS,
    UNIT_DISPLAY,
)
from shared.measurement import Coding, DeviceIdentity, Kind, Measurement, Quantity

SOURCE_TAG_SYSTEM = "urn:iomt-hub:source"
FLAG_TAG_SYSTEM = "urn:iomt-hub:reading-flag"
ECG_CHUNK_SAMPLES = 5000
_CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs",
    "activity": "Activity",
    "laboratory": "Laboratory",
    "procedure": "Procedure",
}


def reading_identifier_system(source: str) -> str:
    return f"urn:iomt-hub:{source}:reading"


def _hashed_id(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}"


def observation_id(source: str, source_id: str) -> str:
    return _hashed_id("obs", f"{reading_identifier_system(source)}|{source_id}")


def device_id(device: DeviceIdentity) -> str:
    return _hashed_id("dev", device.key)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _coding(coding: Coding) -> dict[str, str]:
    result = {"system": coding.system, "code": coding.code}
    if coding.display:
        result["display"] = coding.display
    return result


def _quantity(quantity: Quantity) -> dict[str, Any]:
    result: dict[str, Any] = {"value": _number(quantity.value), "unit": UNIT_DISPLAY.get(quantity.unit, quantity.unit)}
    if quantity.unit in UCUM_UNITS:
        result["system"] = UCUM
        result["code"] = quantity.unit
    return result


def _instant(moment: dt.datetime) -> str:
    return moment.isoformat()


def _code_of(measurement: Measurement) -> tuple[dict[str, Any], str | None, str | None]:
    """(code, category, profile) of a reading, all from the code table."""
    if measurement.kind is Kind.GLUCOSE and measurement.value is not None:
        coding = GLUCOSE_CODES[(measurement.method or "blood", measurement.value.unit)]
        return {"coding": [_coding(coding)], "text": "Glucose"}, "laboratory", None
    spec = CODES.get(measurement.kind)
    if spec is None:
        if measurement.source_code is None:
            raise ValueError(f"{measurement.kind} reading has no code")
        source_code = measurement.source_code
        return {"coding": [_coding(source_code)], "text": source_code.display or source_code.code}, None, None
    codings = [_coding(c) for c in spec.codings]
    if measurement.source_code is not None:
        codings.append(_coding(measurement.source_code))
    return {"coding": codings, "text": spec.text}, spec.category, spec.profile


def observation(measurement: Measurement, patient_id: str) -> dict[str, Any]:
    code, category, profile = _code_of(measurement)
    tags = [{"system": SOURCE_TAG_SYSTEM, "code": measurement.source}]
    if measurement.manual_entry:
        tags.append({"system": FLAG_TAG_SYSTEM, "code": "manual-entry", "display": "Entered by hand"})
    if measurement.ambiguous_user:
        tags.append({"system": FLAG_TAG_SYSTEM, "code": "ambiguous-user", "display": "Device could not tell the user"})
    meta: dict[str, Any] = {"tag": tags}
    if profile is not None:
        profiles = [f"{PROFILE_BASE}vitalsigns"]
        if profile != "vitalsigns":
            profiles.append(f"{PROFILE_BASE}{profile}")
        meta["profile"] = profiles
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(measurement.source, measurement.source_id),
        "meta": meta,
        "identifier": [{"system": reading_identifier_system(measurement.source), "value": measurement.source_id}],
        "status": measurement.status,
    }
    if category is not None:
        resource["category"] = [
            {"coding": [{"system": CATEGORY_SYSTEM, "code": category, "display": _CATEGORY_DISPLAY[category]}]}
        ]
    resource["code"] = code
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    if measurement.effective_end is not None:
        resource["effectivePeriod"] = {
            "start": _instant(measurement.effective_start),
            "end": _instant(measurement.effective_end),
        }
    else:
        resource["effectiveDateTime"] = _instant(measurement.effective_start)
    if measurement.issued is not None:
        resource["issued"] = _instant(measurement.issued)
    if measurement.device is not None:
        resource["device"] = {"reference": f"Device/{device_id(measurement.device)}"}
    if measurement.value is not None:
        resource["valueQuantity"] = _quantity(measurement.value)
    components = _components(measurement)
    if components:
        resource["component"] = components
    if measurement.interpretation:
        resource["interpretation"] = [{"text": measurement.interpretation}]
    if measurement.annotations:
        resource["note"] = [
            {"text": "; ".join(f"{key}: {_note_value(value)}" for key, value in measurement.annotations)}
        ]
    return resource


def _note_value(value: str | bool | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(_number(value))
    return value


def _components(measurement: Measurement) -> list[dict[str, Any]]:
    table = BLOOD_PRESSURE_COMPONENTS if measurement.kind is Kind.BLOOD_PRESSURE else ECG_COMPONENTS
    components = [
        {"code": {"coding": [_coding(table[c.name])]}, "valueQuantity": _quantity(c.quantity)}
        for c in measurement.components
    ]
    signal = measurement.signal
    if signal is not None:
        lead = ECG_COMPONENTS["lead-I"]
        total = len(signal.samples)
        for start in range(0, total, ECG_CHUNK_SAMPLES):
            chunk = signal.samples[start : start + ECG_CHUNK_SAMPLES]
            components.append(
                {
                    "code": {
                        "coding": [_coding(lead)],
                        "text": f"Lead {signal.lead}, samples {start + 1}-{start + len(chunk)} of {total}",
                    },
                    "valueSampledData": {
                        "origin": {"value": 0, "unit": "µV", "system": UCUM, "code": signal.unit},
                        "period": _number(signal.period_ms),
                        "dimensions": 1,
                        "data": " ".join(str(_number(v)) for v in chunk),
                    },
                }
            )
    return components


def entered_in_error(resource: dict[str, Any]) -> dict[str, Any]:
    """The same Observation, marked as a mistake (an upstream deletion). FHIR keeps history."""
    marked = {k: v for k, v in resource.items() if k != "meta"}
    marked["meta"] = {k: v for k, v in (resource.get("meta") or {}).items() if k in ("tag", "profile")}
    marked["status"] = "entered-in-error"
    return marked


def device_resource(device: DeviceIdentity) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id(device),
        "meta": {"tag": [{"system": SOURCE_TAG_SYSTEM, "code": device.source}]},
        "identifier": [{"system": system, "value": value} for system, value in device.identifiers],
        "status": "active",
    }
    if device.manufacturer:
        resource["manufacturer"] = device.manufacturer
    if device.serial_number:
        resource["serialNumber"] = device.serial_number
    if device.name:
        resource["deviceName"] = [{"name": device.name, "type": "user-friendly-name"}]
    if device.model:
        resource["modelNumber"] = device.model
    if device.version:
        resource["version"] = [{"value": device.version}]
    return resource


def put_entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def batch_bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": [put_entry(r) for r in resources]}


PatientResolver = Callable[[Measurement], "str | None"]


@dataclass
class MappedReadings:
    resources: list[dict[str, Any]] = field(default_factory=list)
    unattributed: list[Measurement] = field(default_factory=list)


def map_readings(readings: Iterable[Measurement], patient_for: PatientResolver) -> MappedReadings:
    """Observations (and one Device per physical device) for every reading whose patient is
    known; readings with no patient are handed back, never dropped."""
    mapped = MappedReadings()
    devices: dict[str, dict[str, Any]] = {}
    for measurement in readings:
        patient_id = patient_for(measurement)
        if patient_id is None:
            mapped.unattributed.append(measurement)
            continue
        if measurement.device is not None and measurement.device.key not in devices:
            devices[measurement.device.key] = device_resource(measurement.device)
        mapped.resources.append(observation(measurement, patient_id))
    mapped.resources[:0] = devices.values()
    return mapped
