"""Measurement → FHIR R4 JSON (plain dicts: fast; the tests validate them with fhir.resources).

Idempotency lives here: every Observation carries ``identifier`` = (source system URI, the
source's own id) and a logical ``id`` hashed from (tenant, patient, that system, that id),
written with ``PUT``, so the same reading delivered any number of times, concurrently or not,
is one Observation. The patient is part of the id, so an Observation never changes subject:
the same source id arriving for another patient is another Observation, never an overwrite."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.fhir.codes import (
    BLOOD_PRESSURE_COMPONENTS,
    CATEGORY_SYSTEM,
    CODES,
    ECG_COMPONENTS,
    GLUCOSE_CODES,
    IN_RANGE,
    MEAL_CONTEXT,
    PROFILE_BASE,
    UCUM,
    UCUM_UNITS,
    UNIT_DISPLAY,
)
from shared.measurement import Coding, Component, DeviceIdentity, Kind, Measurement, Quantity
from shared.tenants import DEFAULT_TENANT

SOURCE_TAG_SYSTEM = "urn:iomt-hub:source"
TENANT_TAG_SYSTEM = "urn:iomt-hub:tenant"  # every resource the hub writes names its tenant
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


def group_identifier_system(source: str) -> str:
    """Readings measured together (one Withings measure group): a deletion upstream names the group."""
    return f"urn:iomt-hub:{source}:group"


@functools.lru_cache(maxsize=64)
def _identifier_parts(source: str) -> tuple[str, str]:
    """(reading system, group system) of a source."""
    return reading_identifier_system(source), group_identifier_system(source)


@functools.lru_cache(maxsize=4096)
def _id_prefix(tenant: str, patient_id: str, source: str) -> bytes:
    return f"{tenant}|{patient_id}|{reading_identifier_system(source)}|".encode()


def observation_id(source: str, source_id: str, patient_id: str, tenant: str = DEFAULT_TENANT) -> str:
    """``obs-`` + sha256("<tenant>|<patient>|<identifier system>|<source id>")[:40]: the same
    reading of the same patient, the same id; the same source id for another patient, another."""
    return "obs-" + hashlib.sha256(_id_prefix(tenant, patient_id, source) + source_id.encode()).hexdigest()[:40]


@functools.lru_cache(maxsize=4096)
def _device_id_of_key(key: str) -> str:
    return _hashed_id("dev", key)


def device_id(device: DeviceIdentity, tenant: str = DEFAULT_TENANT) -> str:
    """The same physical device in two tenants is two Devices (the default tenant's ids are
    those written before tenants existed)."""
    return _device_id_of_key(device.key if tenant == DEFAULT_TENANT else f"{tenant}|{device.key}")


def tenant_of(resource: dict[str, Any]) -> str:
    """The tenant a resource of the hub's is tagged with (untagged: written before tenants)."""
    for tag in (resource.get("meta") or {}).get("tag") or []:
        if tag.get("system") == TENANT_TAG_SYSTEM:
            return str(tag.get("code"))
    return DEFAULT_TENANT


def _tenant_tag(tenant: str) -> dict[str, str]:
    return {"system": TENANT_TAG_SYSTEM, "code": tenant}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _coding(coding: Coding) -> dict[str, str]:
    result = {"system": coding.system, "code": coding.code}
    if coding.display:
        result["display"] = coding.display
    return result


def _quantity(quantity: Quantity) -> dict[str, Any]:
    value, unit = quantity
    number = int(value) if float(value).is_integer() else value
    if not unit:  # no unit the hub knows: no UCUM code is asserted
        return {"value": number}
    display = _UCUM_DISPLAY.get(unit)
    if display is not None:
        return {"value": number, "unit": display, "system": UCUM, "code": unit}
    return {"value": number, "unit": unit}


_UCUM_DISPLAY = {unit: UNIT_DISPLAY.get(unit, unit) for unit in UCUM_UNITS}


def _code_parts(
    kind: Kind, method: str | None, unit: str | None, source_code: Coding | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None, str | None]:
    """(code, category, vital-signs profile) of a kind of reading, from the code table."""
    if kind is Kind.GLUCOSE:
        coding = GLUCOSE_CODES.get((method or "blood", unit or ""))
        code: dict[str, Any] = {"coding": [_coding(coding)], "text": "Glucose"} if coding else {"text": "Glucose"}
        return code, _category("laboratory"), None
    spec = CODES.get(kind)
    if spec is None:
        if source_code is None:  # parsers always give one; never raise from mapping
            return {"text": str(kind)}, None, None
        return {"coding": [_coding(source_code)], "text": source_code.display or source_code.code}, None, None
    codings = [_coding(c) for c in spec.codings]
    if source_code is not None:
        codings.append(_coding(source_code))
    return {"coding": codings, "text": spec.text}, _category(spec.category), spec.profile


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": _CATEGORY_DISPLAY[code]}]}]


def _meta(source: str, tenant: str, profile: str | None, manual_entry: bool, ambiguous_user: bool) -> dict[str, Any]:
    tags = [{"system": SOURCE_TAG_SYSTEM, "code": source}, _tenant_tag(tenant)]
    if manual_entry:
        tags.append({"system": FLAG_TAG_SYSTEM, "code": "manual-entry", "display": "Entered by hand"})
    if ambiguous_user:
        tags.append({"system": FLAG_TAG_SYSTEM, "code": "ambiguous-user", "display": "Device could not tell the user"})
    meta: dict[str, Any] = {"tag": tags}
    if profile is not None:
        meta["profile"] = [f"{PROFILE_BASE}vitalsigns"]
        if profile != "vitalsigns":
            meta["profile"].append(f"{PROFILE_BASE}{profile}")
    return meta


def _reference(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def _isoformat(moment: dt.datetime) -> str:
    """RFC 3339, as ``isoformat`` but in a third of its time, and offsets always ±hh:mm as FHIR
    requires (``isoformat`` writes the seconds of historical local mean time offsets)."""
    return orjson.dumps(moment)[1:-1].decode()


@functools.lru_cache(maxsize=1024)
def _constant_parts(
    source: str,
    tenant: str,
    kind: Kind,
    method: str | None,
    unit: str | None,
    source_code: Coding | None,
    manual_entry: bool,
    ambiguous_user: bool,
) -> bytes:
    """[meta, category, code]: what every reading of one kind from one source shares, built once
    and kept serialised, so that every resource gets its own copy (``orjson.loads`` of a few
    hundred bytes is cheaper than building the dicts, and nothing is shared between resources)."""
    code, category, profile = _code_parts(kind, method, unit, source_code)
    return orjson.dumps([_meta(source, tenant, profile, manual_entry, ambiguous_user), category, code])


def observation(measurement: Measurement, patient_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
    value = measurement.value
    source, source_id = measurement.source, measurement.source_id
    meta, category, code = orjson.loads(
        _constant_parts(
            source,
            tenant,
            measurement.kind,
            measurement.method,
            value.unit if value is not None else None,
            measurement.source_code,
            measurement.manual_entry,
            measurement.ambiguous_user,
        )
    )
    reading_system, group_system = _identifier_parts(source)
    identifier = [{"system": reading_system, "value": source_id}]
    if measurement.group_id is not None:
        identifier.append({"system": group_system, "value": measurement.group_id})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(source, source_id, patient_id, tenant),
        "meta": meta,
        "identifier": identifier,
        "status": measurement.status,
    }
    if category is not None:
        resource["category"] = category
    resource["code"] = code
    resource["subject"] = _reference("Patient", patient_id)
    if measurement.effective_end is not None:
        resource["effectivePeriod"] = {
            "start": _isoformat(measurement.effective_start),
            "end": _isoformat(measurement.effective_end),
        }
    else:
        resource["effectiveDateTime"] = _isoformat(measurement.effective_start)
    if measurement.issued is not None:
        resource["issued"] = _isoformat(measurement.issued)
    if measurement.device is not None:
        resource["device"] = {"reference": f"Device/{device_id(measurement.device, tenant)}"}
    if value is not None:
        resource["valueQuantity"] = _quantity(value)
    elif measurement.coded_value is not None:
        coded = measurement.coded_value
        resource["valueCodeableConcept"] = {"coding": [_coding(coded)], "text": coded.display or coded.code}
    if measurement.components or measurement.signal is not None:
        resource["component"] = _components(measurement)
    if measurement.fhir_elements or measurement.interpretations or measurement.interpretation:
        _add_context(resource, measurement)
    elif measurement.notes:
        resource["note"] = _notes(measurement, [])
    elif measurement.annotations:  # the common case, inline
        resource["note"] = [{"text": _note_text(measurement.annotations)}]
    return resource


def _add_context(resource: dict[str, Any], measurement: Measurement) -> None:
    """Interpretation, notes and the elements an incoming Observation carried (not the common case)."""
    elements = measurement.fhir_elements
    passthrough = {name: orjson.loads(text) for name, text in elements} if elements else {}
    interpretation = [{"coding": [_coding(c)], "text": c.display or c.code} for c in measurement.interpretations]
    if measurement.interpretation and not measurement.interpretations:
        interpretation.append({"text": measurement.interpretation})
    interpretation += passthrough.get("interpretation", [])
    if interpretation:
        resource["interpretation"] = interpretation
    notes = _notes(measurement, passthrough.get("note", []))
    if notes:
        resource["note"] = notes
    if "extension" in passthrough:
        resource["extension"] = passthrough["extension"]


def _notes(measurement: Measurement, incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = [{"text": text} for text in measurement.notes]
    if measurement.annotations:
        notes.append({"text": _note_text(measurement.annotations)})
    return notes + incoming


@functools.lru_cache(maxsize=1024)
def _note_text(annotations: tuple[tuple[str, str | bool | float], ...]) -> str:
    return "; ".join(f"{key}: {_note_value(value)}" for key, value in annotations)


def _note_value(value: str | bool | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(_number(value))
    return value


_COMPONENT_CODINGS: dict[str, Coding] = {**BLOOD_PRESSURE_COMPONENTS, **ECG_COMPONENTS, "meal": MEAL_CONTEXT}


# Serialised once, loaded per component (like an Observation's constant parts): no two
# resources share an object.
_COMPONENT_CODES: dict[str, bytes] = {
    name: orjson.dumps({"coding": [_coding(coding)]}) for name, coding in _COMPONENT_CODINGS.items()
}


def _component(component: Component) -> dict[str, Any]:
    code = _COMPONENT_CODES.get(component.name)
    part: dict[str, Any] = {"code": orjson.loads(code) if code is not None else {"text": component.name}}
    if component.quantity is not None:
        part["valueQuantity"] = _quantity(component.quantity)
    elif component.coded is not None:
        part["valueCodeableConcept"] = {"coding": [_coding(component.coded)], "text": component.coded.display}
    if component.in_range is not None:
        verdict = IN_RANGE[component.in_range]
        part["interpretation"] = [{"coding": [_coding(verdict)], "text": verdict.display}]
    return part


def _components(measurement: Measurement) -> list[dict[str, Any]]:
    components = [_component(c) for c in measurement.components]
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


def device_resource(
    device: DeviceIdentity, patient_id: str | None = None, tenant: str = DEFAULT_TENANT
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id(device, tenant),
        "meta": {"tag": [{"system": SOURCE_TAG_SYSTEM, "code": device.source}, _tenant_tag(tenant)]},
        "identifier": [{"system": system, "value": value} for system, value in device.identifiers],
        "status": "active",
    }
    if device.manufacturer:
        resource["manufacturer"] = device.manufacturer
    if device.serial_number:
        resource["serialNumber"] = device.serial_number
    names = [{"name": device.name, "type": "user-friendly-name"}] if device.name else []
    if device.model:
        names.append({"name": device.model, "type": "model-name"})
    if names:
        resource["deviceName"] = names
    if device.model_number:
        resource["modelNumber"] = device.model_number
    if device.version:
        resource["version"] = [{"value": device.version}]
    if patient_id is not None:  # who uses it now: the patient of its latest readings
        resource["patient"] = _reference("Patient", patient_id)
    return resource


def put_entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def batch_bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
    ]  # put_entry, inlined: this runs once per resource
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "batch"}
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle


PatientResolver = Callable[[Measurement], "str | None"]


@dataclass
class MappedReadings:
    resources: list[dict[str, Any]] = field(default_factory=list)
    unattributed: list[Measurement] = field(default_factory=list)


def map_readings(
    readings: Iterable[Measurement], patient_for: PatientResolver, tenant: str = DEFAULT_TENANT
) -> MappedReadings:
    """The tenant's Observations (and one Device per physical device) for every reading whose
    patient is known; readings with no patient are handed back, never dropped."""
    mapped = MappedReadings()
    devices: dict[str, dict[str, Any]] = {}
    for measurement in readings:
        patient_id = patient_for(measurement)
        if patient_id is None:
            mapped.unattributed.append(measurement)
            continue
        if measurement.device is not None and measurement.device.key not in devices:
            devices[measurement.device.key] = device_resource(measurement.device, patient_id, tenant)
        mapped.resources.append(observation(measurement, patient_id, tenant))
    mapped.resources[:0] = devices.values()
    return mapped
