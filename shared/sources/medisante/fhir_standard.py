"""Medisanté's "FHIR standard": ordinary FHIR R4 Observations (alone or in a Bundle, with
their Devices), as JSON or XML, validated with the ``fhir.resources`` R4B models and read
back into Measurements so that they go through the same attribution, consent and mapping.

XML is first parsed by ``defusedxml`` (DTDs, entities and external references refused), and
only then handed to the models' XML reader with a parser that resolves nothing."""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic import ValidationError

from shared import plausibility
from shared.errors import InvalidPayload
from shared.fhir.codes import (
    BLOOD_PRESSURE_COMPONENTS,
    CODES,
    GLUCOSE_CODES,
    UCUM,
    UNIT_CONVERSIONS,
    to_canonical,
)
from shared.measurement import (
    Coding,
    Component,
    DeviceIdentity,
    Kind,
    Measurement,
    ParseResult,
    Quantity,
    RejectedReading,
    status_of,
)
from shared.sources.medisante.parser import SERIAL_SYSTEM
from shared.sources.parsing import load_json, parse_instant, read_xml

SOURCE = "medisante"
_KIND_BY_LOINC: dict[str, Kind] = {
    coding.code: kind for kind, spec in CODES.items() for coding in spec.codings if kind is not Kind.ECG
}
_GLUCOSE_BY_LOINC = {coding.code: method for (method, _unit), coding in GLUCOSE_CODES.items()}
_COMPONENT_BY_LOINC = {coding.code: name for name, coding in BLOOD_PRESSURE_COMPONENTS.items()}
_SUPPORTED = ("Observation", "Bundle")
# Elements of an incoming Observation that the hub keeps as they came.
_KEPT_ELEMENTS = ("interpretation", "note", "extension")
_UNKNOWN_TYPE = "a resource in it has a missing or unknown resourceType"


def parse_json(text: str) -> ParseResult:
    document = load_json(text)
    if not isinstance(document, dict) or document.get("resourceType") not in _SUPPORTED:
        raise InvalidPayload("the payload must be a FHIR Observation or Bundle")
    model = _model_class(document["resourceType"])
    try:
        model.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayload(f"not a valid FHIR R4 {document['resourceType']}: {_first_error(exc)}") from None
    except (KeyError, TypeError):  # how fhir.resources meets an entry's unknown resourceType
        raise InvalidPayload(f"not a valid FHIR R4 {document['resourceType']}: {_UNKNOWN_TYPE}") from None
    return _to_measurements(document)


def parse_xml(text: str) -> ParseResult:
    root = read_xml(text)
    resource_type = root.tag.split("}", 1)[-1]
    if resource_type not in _SUPPORTED:
        raise InvalidPayload("the payload must be a FHIR Observation or Bundle")
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        model = _model_class(resource_type).model_validate_xml(text.encode("utf-8"), xmlparser=parser)
    except ValidationError as exc:
        raise InvalidPayload(f"not a valid FHIR R4 {resource_type}: {_first_error(exc)}") from None
    except (KeyError, TypeError):
        raise InvalidPayload(f"not a valid FHIR R4 {resource_type}: {_UNKNOWN_TYPE}") from None
    except (ValueError, etree.XMLSyntaxError):
        raise InvalidPayload(f"not a valid FHIR R4 {resource_type} in XML") from None
    return _to_measurements(json.loads(model.model_dump_json(exclude_none=True)))


def _model_class(resource_type: str) -> Any:
    if resource_type == "Bundle":
        from fhir.resources.R4B.bundle import Bundle

        return Bundle
    from fhir.resources.R4B.observation import Observation

    return Observation


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "resource"
    return f"{where}: {error['msg']}"


def _to_measurements(document: dict[str, Any]) -> ParseResult:
    resources = [document]
    if document["resourceType"] == "Bundle":
        resources = [e["resource"] for e in document.get("entry") or [] if isinstance(e.get("resource"), dict)]
    devices: dict[str, DeviceIdentity] = {}
    for resource in resources:
        if resource.get("resourceType") == "Device":
            device = _device(resource)
            if device is not None:
                for key in _device_refs(resource):
                    devices[key] = device
    result = ParseResult(devices=list({d.key: d for d in devices.values()}.values()))
    observations = [r for r in resources if r.get("resourceType") == "Observation"]
    if not observations:
        raise InvalidPayload("the payload holds no Observation")
    for index, resource in enumerate(observations):
        try:
            result.readings.append(_observation(resource, devices))
        except InvalidPayload as exc:
            result.rejected.append(RejectedReading(_source_id(resource) or f"Observation[{index}]", exc.message))
    plausibility.drop_implausible(result)
    return result


def _device_refs(resource: dict[str, Any]) -> list[str]:
    refs = []
    if resource.get("id"):
        refs.append(f"Device/{resource['id']}")
        refs.append(f"#{resource['id']}")
    return refs


def _device(resource: dict[str, Any]) -> DeviceIdentity | None:
    identifiers = tuple(
        (str(i.get("system") or "urn:iomt-hub:medisante:fhir-device"), str(i["value"]))
        for i in resource.get("identifier") or []
        if i.get("value")
    )
    serial = resource.get("serialNumber")
    if serial and all(value != serial for _, value in identifiers):  # a clinic may register the serial
        identifiers += ((SERIAL_SYSTEM, str(serial)),)
    if not identifiers:
        return None
    names = resource.get("deviceName") or []
    return DeviceIdentity(
        source=SOURCE,
        identifiers=identifiers,
        manufacturer=resource.get("manufacturer"),
        model=resource.get("modelNumber"),
        serial_number=resource.get("serialNumber"),
        name=names[0].get("name") if names else None,
    )


def _source_id(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier") or []:
        if identifier.get("value"):
            return f"fhir/{identifier.get('system', '')}|{identifier['value']}"
    return None


def _observation(resource: dict[str, Any], devices: dict[str, DeviceIdentity]) -> Measurement:
    source_id = _source_id(resource)
    if source_id is None:
        raise InvalidPayload("Observation has no identifier: it could not be written idempotently")
    codings = (resource.get("code") or {}).get("coding") or []
    loinc = next((c.get("code") for c in codings if c.get("system") == "http://loinc.org"), None)
    kind = _KIND_BY_LOINC.get(loinc or "") or (Kind.GLUCOSE if loinc in _GLUCOSE_BY_LOINC else Kind.OTHER)
    if "effectiveDateTime" in resource:
        start, end = parse_instant(resource["effectiveDateTime"], "effectiveDateTime"), None
    elif "effectivePeriod" in resource:  # kept as a period, for every kind (a 24-hour mean stays one)
        period = resource["effectivePeriod"]
        start = parse_instant(period.get("start"), "effectivePeriod.start")
        end = parse_instant(period["end"], "effectivePeriod.end") if period.get("end") else None
        if end is not None and end < start:
            raise InvalidPayload("effectivePeriod.end is before its start")
    else:
        raise InvalidPayload("Observation has no effectiveDateTime or effectivePeriod")
    device = None
    reference = (resource.get("device") or {}).get("reference")
    if reference:
        device = devices.get(reference)
    fields: dict[str, Any] = {}
    if kind is Kind.BLOOD_PRESSURE:
        components = []
        for component in resource.get("component") or []:
            code = next((c.get("code") for c in (component.get("code") or {}).get("coding") or []), None)
            name = _COMPONENT_BY_LOINC.get(code or "")
            if name is not None:
                components.append(Component(name, _quantity(component.get("valueQuantity"), "mm[Hg]")))
        if {c.name for c in components} < {"systolic", "diastolic"}:
            raise InvalidPayload("blood pressure Observation lacks a systolic or diastolic component")
        fields["components"] = tuple(components)
    elif kind is Kind.GLUCOSE:
        quantity = _quantity(resource.get("valueQuantity"), None)
        if quantity.unit not in ("mg/dL", "mmol/L"):  # g/L converts; another unit is refused later
            converted = to_canonical(quantity.value, quantity.unit, "mg/dL")
            quantity = Quantity(converted, "mg/dL") if converted is not None else quantity
        fields["value"] = quantity
        fields["method"] = _GLUCOSE_BY_LOINC.get(loinc or "")
    elif kind is Kind.OTHER:
        first = codings[0] if codings else {}
        if not first.get("code"):
            raise InvalidPayload("Observation.code has no coding")
        fields["value"] = _quantity(resource.get("valueQuantity"), None)
        fields["source_code"] = Coding(str(first.get("system", "")), str(first["code"]), first.get("display"))
    else:
        units = CODES[kind].units
        fields["value"] = _quantity(resource.get("valueQuantity"), units[0] if units else None)
    issued = parse_instant(resource["issued"], "issued") if resource.get("issued") else None
    kept = tuple((name, orjson.dumps(resource[name]).decode()) for name in _KEPT_ELEMENTS if resource.get(name))
    return Measurement(
        kind=kind,
        source=SOURCE,
        source_id=source_id,
        effective_start=start,
        effective_end=end,
        device=device,
        issued=issued,
        status=status_of(resource.get("status")),
        fhir_elements=kept,
        **fields,
    )


def _quantity(value: Any, expected_unit: str | None) -> Quantity:
    """The value in ``expected_unit`` (converted from any unit of the profile's value set), or
    as it came when no unit is expected ("" when it names no unit: no UCUM code asserted)."""
    if not isinstance(value, dict) or value.get("value") is None:
        raise InvalidPayload("Observation has no valueQuantity")
    code = value.get("code") if value.get("system") == UCUM else None
    unit = str(code or value.get("unit") or "")
    number = float(value["value"])
    if expected_unit is None or unit == expected_unit:
        return Quantity(number, unit)
    converted = to_canonical(number, unit, expected_unit) if code else None
    if converted is None:
        accepted = ", ".join(UNIT_CONVERSIONS.get(expected_unit, {expected_unit: 1.0}))
        raise InvalidPayload(f"unit {unit or 'none'} is not a UCUM unit of this kind ({accepted})")
    return Quantity(converted, expected_unit)
