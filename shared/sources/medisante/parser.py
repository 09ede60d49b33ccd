"""Medisanté cellular devices: the "Medisanté standard" payload, as JSON or as XML with the
same element names. (The portal's "FHIR standard" goes through ``providers.fhir_standard``.)"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from shared import plausibility
from shared.errors import InvalidPayload
from shared.fhir.codes import IN_RANGE, MEAL_TIMING
from shared.measurement import (
    Coding,
    Component,
    DeviceIdentity,
    Kind,
    Measurement,
    ParseResult,
    Quantity,
)
from shared.sources.parsing import (
    load_json,
    optional_text,
    parse_bool,
    parse_instant,
    parse_number,
    read_xml,
    require_mapping,
    require_text,
    zone_info,
)

SOURCE = "medisante"
IMEI_SYSTEM = "urn:gsma:imei"
SERIAL_SYSTEM = "urn:iomt-hub:medisante:serial-number"
DEVICE_ID_SYSTEM = "urn:iomt-hub:medisante:device-id"
MEASUREMENT_SYSTEM = "urn:iomt-hub:medisante:measurement"

_LB_TO_KG = 0.45359237
_MMOL_UNITS = {"mmol/l": "mmol/L"}
_MG_UNITS = {"mg/dl": "mg/dL"}

# Body composition entries with a standard code; the others keep Medisanté's own name.
_COMPOSITION: dict[str, tuple[Kind, str]] = {
    "bodyweight": (Kind.BODY_WEIGHT, "kg"),
    "weight": (Kind.BODY_WEIGHT, "kg"),
    "bmi": (Kind.BMI, "kg/m2"),
    "bodyfat": (Kind.BODY_FAT_PERCENT, "%"),
    "bodyfatpercentage": (Kind.BODY_FAT_PERCENT, "%"),
    "fatratio": (Kind.BODY_FAT_PERCENT, "%"),
    "height": (Kind.BODY_HEIGHT, "cm"),
}
_NOT_READINGS = {"annotations", "timestamp"}
FLAG_SYSTEM = "urn:iomt-hub:medisante:flag"
IRREGULAR_HEARTBEAT = Coding(FLAG_SYSTEM, "irregular-heartbeat", "Irregular heartbeat detected by the device")
MEAL_MARKERS = {"1": "before-meal", "2": "after-meal"}


def parse_json(text: str) -> ParseResult:
    document = load_json(text)
    return parse_document(require_mapping(document, "the payload"))


def parse_xml(text: str) -> ParseResult:
    root = read_xml(text)
    return parse_document(require_mapping(_element_to_value(root), "the payload"))


def _element_to_value(element: Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    result: dict[str, Any] = {}
    for child in children:
        name = child.tag.split("}", 1)[-1]
        value = _element_to_value(child)
        if name in result:  # repeated elements become a list
            existing = result[name]
            result[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            result[name] = value
    return result


def device_identity(device: dict[str, Any]) -> DeviceIdentity:
    """IMEI first, then serial number, then Medisanté's device id (which may be empty)."""
    identifiers: list[tuple[str, str]] = []
    for key, system in (("IMEI", IMEI_SYSTEM), ("serialNumber", SERIAL_SYSTEM), ("id", DEVICE_ID_SYSTEM)):
        value = optional_text(device.get(key))
        if value:
            identifiers.append((system, value))
    if not identifiers:
        raise InvalidPayload("device has no IMEI, serial number or id")
    return DeviceIdentity(
        source=SOURCE,
        identifiers=tuple(identifiers),
        manufacturer=optional_text(device.get("manufacturer")),
        model=optional_text(device.get("model")),
        serial_number=optional_text(device.get("serialNumber")),
    )


def parse_document(document: dict[str, Any]) -> ParseResult:
    metadata = require_mapping(document.get("metadata"), "metadata")
    correlation_id = require_text(metadata.get("correlationId"), "metadata.correlationId")
    measurement_type = require_text(metadata.get("measurementType"), "metadata.measurementType")
    device_document = require_mapping(document.get("device"), "device")
    device = device_identity(device_document)
    measurements = require_mapping(document.get("measurements"), "measurements")
    timestamp = measurements.get("timestamp")
    effective = parse_instant(timestamp, "measurements.timestamp")
    if not isinstance(timestamp, str) or timestamp.strip().isdigit():  # epoch seconds: UTC, no offset given
        zone = zone_info(optional_text(device_document.get("timezone")))
        if zone is not None:
            effective = effective.astimezone(zone)  # the same instant, with the device's offset
    issued = parse_instant(metadata["receivedTime"], "metadata.receivedTime") if metadata.get("receivedTime") else None
    annotations = _annotations(measurements.get("annotations"))
    flags = _flags(annotations)
    meal = _meal(annotations)
    if flags or meal:
        # What is coded is no longer repeated in the note; what is not (a false flag, an
        # unknown meal marker) stays there as the device sent it.
        coded_names = ({"irregularHeartBeat"} if flags else set()) | ({"mealMarker"} if meal else set())
        annotations = tuple((key, value) for key, value in annotations if key not in coded_names)
    meal_context = (Component("meal", None, coded=MEAL_TIMING[meal]),) if meal else ()

    def reading(kind: Kind, suffix: str, **fields: Any) -> Measurement:
        if flags and kind in (Kind.BLOOD_PRESSURE, Kind.HEART_RATE):
            fields["interpretations"] = (*flags, *fields.get("interpretations", ()))
        if meal_context and kind is Kind.GLUCOSE:
            fields["components"] = meal_context
        return Measurement(
            kind=kind,
            source=SOURCE,
            source_id=f"{correlation_id}/{suffix}",
            effective_start=effective,
            device=device,
            issued=issued,
            annotations=annotations,
            **fields,
        )

    builder = _BUILDERS.get(measurement_type.lower())
    result = ParseResult(devices=[device])
    if builder is None:
        result.unknown_types.append(f"measurementType {measurement_type}")
        return result
    builder(measurements, reading, result)
    plausibility.drop_implausible(result)
    return result


Reading = Callable[..., Measurement]


def _pressure(measurements: dict[str, Any], name: str, entry: str) -> Component:
    value = _value(measurements, entry, _mmhg)
    return Component(name, Quantity(value, "mm[Hg]"), in_range=_in_range(measurements, entry))


def _blood_pressure(measurements: dict[str, Any], reading: Reading, result: ParseResult) -> None:
    components = [
        _pressure(measurements, "systolic", "systolicBloodPressure"),
        _pressure(measurements, "diastolic", "diastolicBloodPressure"),
    ]
    if "meanBloodPressure" in measurements:
        components.append(_pressure(measurements, "mean", "meanBloodPressure"))
    result.readings.append(reading(Kind.BLOOD_PRESSURE, "blood-pressure", components=tuple(components)))
    if "pulse" in measurements:
        pulse = Quantity(_value(measurements, "pulse", _per_minute), "/min")
        result.readings.append(
            reading(Kind.HEART_RATE, "heart-rate", value=pulse, interpretations=_verdict(measurements, "pulse"))
        )


def _glucose(measurements: dict[str, Any], reading: Reading, result: ParseResult) -> None:
    entry = require_mapping(measurements.get("glucose"), "measurements.glucose")
    value = parse_number(entry.get("value"), "measurements.glucose.value")
    unit = str(entry.get("unit", "")).strip().lower()
    if unit in _MMOL_UNITS:
        quantity = Quantity(value, _MMOL_UNITS[unit])
    elif unit in _MG_UNITS:
        quantity = Quantity(value, _MG_UNITS[unit])
    else:
        raise InvalidPayload("measurements.glucose.unit must be mmol/L or mg/dL")
    result.readings.append(
        reading(
            Kind.GLUCOSE,
            "glucose",
            value=quantity,
            method="glucometer",
            interpretations=_verdict(measurements, "glucose"),
        )
    )


def _body_composition(measurements: dict[str, Any], reading: Reading, result: ParseResult) -> None:
    for name, entry in measurements.items():
        if name in _NOT_READINGS:
            continue
        known = _COMPOSITION.get(name.lower())
        if known is None:
            entry_map = require_mapping(entry, f"measurements.{name}")
            value = parse_number(entry_map.get("value"), f"measurements.{name}.value")
            result.readings.append(
                reading(
                    Kind.OTHER,
                    name,
                    value=Quantity(value, str(entry_map.get("unit") or "")),  # no unit: none asserted
                    source_code=Coding(MEASUREMENT_SYSTEM, name, name),
                )
            )
            result.unknown_types.append(f"BodyWeightComposition.{name}")
            continue
        kind, unit = known
        converter = _kilograms if unit == "kg" else _centimetres if unit == "cm" else _same_unit(unit)
        quantity = Quantity(_value(measurements, name, converter), unit)
        result.readings.append(reading(kind, name, value=quantity, interpretations=_verdict(measurements, name)))
    if not result.readings:
        raise InvalidPayload("measurements holds no body weight or composition value")


_BUILDERS: dict[str, Callable[[dict[str, Any], Reading, ParseResult], None]] = {
    "bloodpressure": _blood_pressure,
    "glucose": _glucose,
    "bodyweightcomposition": _body_composition,
    "bodyweight": _body_composition,
}


def _value(measurements: dict[str, Any], name: str, convert: Callable[[float, str, str], float]) -> float:
    entry = require_mapping(measurements.get(name), f"measurements.{name}")
    value = parse_number(entry.get("value"), f"measurements.{name}.value")
    unit = str(entry.get("unit", "")).strip()
    return convert(value, unit, f"measurements.{name}.unit")


def _mmhg(value: float, unit: str, field: str) -> float:
    if unit.lower() not in ("mmhg", "mm[hg]", ""):
        raise InvalidPayload(f"{field} must be mmHg")
    return value


def _per_minute(value: float, unit: str, field: str) -> float:
    if unit.lower() not in ("bpm", "/min", "1/min", ""):
        raise InvalidPayload(f"{field} must be bpm")
    return value


def _kilograms(value: float, unit: str, field: str) -> float:
    lowered = unit.lower()
    if lowered in ("kg", ""):
        return value
    if lowered in ("lb", "lbs"):
        return round(value * _LB_TO_KG, 2)
    raise InvalidPayload(f"{field} must be kg or lb")


def _centimetres(value: float, unit: str, field: str) -> float:
    factors = {"cm": 1.0, "": 1.0, "m": 100.0, "in": 2.54}
    if unit.lower() not in factors:
        raise InvalidPayload(f"{field} must be cm, m or in")
    return round(value * factors[unit.lower()], 1)


def _same_unit(expected: str) -> Callable[[float, str, str], float]:
    def convert(value: float, unit: str, field: str) -> float:
        if unit.lower() not in (expected.lower(), ""):
            raise InvalidPayload(f"{field} must be {expected}")
        return value

    return convert


def _in_range(measurements: dict[str, Any], name: str) -> bool | None:
    entry = measurements.get(name)
    return parse_bool(entry.get("isInRange")) if isinstance(entry, dict) else None


def _verdict(measurements: dict[str, Any], name: str) -> tuple[Coding, ...]:
    """The device's isInRange as an interpretation (N / A), when it gave one."""
    in_range = _in_range(measurements, name)
    return (IN_RANGE[in_range],) if in_range is not None else ()


def _flags(annotations: tuple[tuple[str, str | bool | float], ...]) -> tuple[Coding, ...]:
    return (IRREGULAR_HEARTBEAT,) if dict(annotations).get("irregularHeartBeat") is True else ()


def _meal(annotations: tuple[tuple[str, str | bool | float], ...]) -> str | None:
    """Medisanté's mealMarker: 1 before a meal, 2 after (inferred: no public definition); any
    other value stays in the note as it came."""
    marker = dict(annotations).get("mealMarker")
    return MEAL_MARKERS.get(str(int(marker)) if isinstance(marker, float) else str(marker))


def _annotations(value: Any) -> tuple[tuple[str, str | bool | float], ...]:
    if not isinstance(value, dict):
        return ()
    pairs: list[tuple[str, str | bool | float]] = []
    for key, raw in sorted(value.items()):
        flag = parse_bool(raw) if key in ("irregularHeartBeat", "averageMeasurement") else None
        if flag is not None:
            pairs.append((key, flag))
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
            pairs.append((key, float(raw)))
        elif raw is not None and str(raw).strip():
            pairs.append((key, str(raw).strip()))
    return tuple(pairs)
