"""Apple HealthKit samples, as the mobile app uploads them through the BFF
(shape: ``tests/fixtures/healthkit/upload.json``).

Each sample is vetted on its own: one bad sample is a rejected reading with its reason, never
the end of the upload. Units arrive as HealthKit unit strings and leave as UCUM."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared import plausibility
from shared.errors import InvalidPayload
from shared.fhir.codes import ECG_RHYTHMS, MEAL_TIMING
from shared.measurement import (
    Component,
    DeviceIdentity,
    Kind,
    Measurement,
    ParseResult,
    Quantity,
    RejectedReading,
    SampledSignal,
)
from shared.sources.parsing import load_json, optional_text, parse_bool, parse_instant, parse_number, zone_info

SOURCE = "healthkit"
FORMAT = "healthkit-json"  # the one upload format: samples, deletions and permissions as JSON
SOURCE_DEVICE_SYSTEM = "urn:iomt-hub:healthkit:source-bundle-id"
LOCAL_DEVICE_SYSTEM = "urn:iomt-hub:healthkit:device-local-id"
BLOOD_PRESSURE_TYPE = "HKCorrelationTypeIdentifierBloodPressure"
ECG_TYPES = ("HKElectrocardiogramType", "HKDataTypeIdentifierElectrocardiogram", "HKElectrocardiogram")
_SYSTOLIC = "HKQuantityTypeIdentifierBloodPressureSystolic"
_DIASTOLIC = "HKQuantityTypeIdentifierBloodPressureDiastolic"
_GLUCOSE_MOLAR_MASS = re.compile(r"^mmol<[0-9.]+>/l$")
_PER_DEVICE_BUNDLE = re.compile(r"^com\.apple\.health\.[0-9A-Fa-f-]{36}$")

Converter = Callable[[float, str], float]
# HKBloodGlucoseMealTime metadata: 1 preprandial, 2 postprandial (as a number or its text).
MEAL_TIMES = {"1": "before-meal", "2": "after-meal", "preprandial": "before-meal", "postprandial": "after-meal"}
# HKElectrocardiogram.Classification values with a SNOMED CT finding; the others (inconclusive,
# unrecognized) stay as text.
ECG_CLASSIFICATIONS = {"sinusRhythm": "sinus-rhythm", "atrialFibrillation": "atrial-fibrillation"}


def _table(factors: dict[str, float], digits: int) -> Converter:
    def convert(value: float, unit: str) -> float:
        factor = factors.get(unit.lower())
        if factor is None:
            raise InvalidPayload(f"unit {unit!r} is not one of {', '.join(sorted(factors))}")
        return round(value * factor, digits)

    return convert


def _temperature(value: float, unit: str) -> float:
    lowered = unit.lower()
    if lowered in ("degc", "°c", "cel"):
        return round(value, 2)
    if lowered in ("degf", "°f"):
        return round((value - 32) * 5 / 9, 2)
    raise InvalidPayload(f"unit {unit!r} is not degC or degF")


@dataclass(frozen=True)
class QuantityType:
    kind: Kind
    ucum: str
    convert: Converter


_PER_MINUTE = _table({"count/min": 1, "/min": 1, "count/s": 60}, 2)
_PERCENT_FRACTION = _table({"%": 100}, 2)  # HealthKit percentages are fractions (0.97)

QUANTITY_TYPES: dict[str, QuantityType] = {
    "HKQuantityTypeIdentifierHeartRate": QuantityType(Kind.HEART_RATE, "/min", _PER_MINUTE),
    "HKQuantityTypeIdentifierRestingHeartRate": QuantityType(Kind.RESTING_HEART_RATE, "/min", _PER_MINUTE),
    "HKQuantityTypeIdentifierRespiratoryRate": QuantityType(Kind.RESPIRATORY_RATE, "/min", _PER_MINUTE),
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": QuantityType(
        Kind.HRV_SDNN, "ms", _table({"ms": 1, "s": 1000}, 2)
    ),
    "HKQuantityTypeIdentifierBodyMass": QuantityType(
        Kind.BODY_WEIGHT, "kg", _table({"kg": 1, "g": 0.001, "lb": 0.45359237, "st": 6.35029318}, 2)
    ),
    "HKQuantityTypeIdentifierHeight": QuantityType(
        Kind.BODY_HEIGHT, "cm", _table({"cm": 1, "m": 100, "in": 2.54, "ft": 30.48}, 1)
    ),
    "HKQuantityTypeIdentifierBodyMassIndex": QuantityType(Kind.BMI, "kg/m2", _table({"count": 1, "kg/m2": 1}, 2)),
    "HKQuantityTypeIdentifierBodyFatPercentage": QuantityType(Kind.BODY_FAT_PERCENT, "%", _PERCENT_FRACTION),
    "HKQuantityTypeIdentifierOxygenSaturation": QuantityType(Kind.OXYGEN_SATURATION, "%", _PERCENT_FRACTION),
    "HKQuantityTypeIdentifierBodyTemperature": QuantityType(Kind.BODY_TEMPERATURE, "Cel", _temperature),
    "HKQuantityTypeIdentifierStepCount": QuantityType(Kind.STEPS, "{steps}", _table({"count": 1}, 0)),
}
GLUCOSE_TYPE = "HKQuantityTypeIdentifierBloodGlucose"
SUPPORTED_TYPES = frozenset([*QUANTITY_TYPES, GLUCOSE_TYPE, BLOOD_PRESSURE_TYPE, *ECG_TYPES])
TYPE_KINDS: dict[str, Kind] = {
    **{name: spec.kind for name, spec in QUANTITY_TYPES.items()},
    GLUCOSE_TYPE: Kind.GLUCOSE,
    BLOOD_PRESSURE_TYPE: Kind.BLOOD_PRESSURE,
    _SYSTOLIC: Kind.BLOOD_PRESSURE,
    _DIASTOLIC: Kind.BLOOD_PRESSURE,
    **{name: Kind.ECG for name in ECG_TYPES},
}


def parse_upload_text(text: str) -> ParseResult:
    document = load_json(text)
    return parse_upload(document)


def parse_upload(document: Any) -> ParseResult:
    if not isinstance(document, dict):
        raise InvalidPayload("the upload must be a JSON object")
    samples = document.get("samples", [])
    deleted = document.get("deleted", [])
    if not isinstance(samples, list) or not isinstance(deleted, list):
        raise InvalidPayload("samples and deleted must be arrays")
    result = ParseResult()
    devices: dict[str, DeviceIdentity] = {}
    for index, sample in enumerate(samples):
        uuid = uuid_of(sample)
        try:
            measurement = _parse_sample(sample, uuid)
        except InvalidPayload as exc:
            result.rejected.append(RejectedReading(uuid or f"samples[{index}]", exc.message))
            type_name = sample.get("type") if isinstance(sample, dict) else None
            if isinstance(type_name, str) and type_name not in SUPPORTED_TYPES:
                result.unknown_types.append(type_name)
            continue
        reason = plausibility.problem(measurement)
        if reason:
            result.rejected.append(RejectedReading(measurement.source_id, reason))
            continue
        result.readings.append(measurement)
        if measurement.device is not None:
            devices.setdefault(measurement.device.key, measurement.device)
    result.devices.extend(devices.values())
    for index, item in enumerate(deleted):
        deleted_uuid = uuid_of(item) if isinstance(item, dict) else uuid_of({"uuid": item})
        if deleted_uuid is None:
            result.rejected.append(RejectedReading(f"deleted[{index}]", "deleted entry has no valid uuid"))
        else:
            result.deleted_source_ids.append(deleted_uuid)
    return result


_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def uuid_of(sample: Any) -> str | None:
    if isinstance(sample, dict) and isinstance(sample.get("uuid"), str) and _UUID.match(sample["uuid"]):
        return str(sample["uuid"]).upper()
    return None


def parse_sample(sample: Any) -> Measurement:
    return _parse_sample(sample, uuid_of(sample))


def _parse_sample(sample: Any, uuid: str | None) -> Measurement:
    if not isinstance(sample, dict):
        raise InvalidPayload("sample is not an object")
    if uuid is None:
        raise InvalidPayload("uuid is missing or not a UUID")
    type_name = sample.get("type")
    if not isinstance(type_name, str):
        raise InvalidPayload("type is missing or not a string")
    metadata = _object(sample.get("metadata"))
    start, end = _period(sample, metadata)
    common: dict[str, Any] = {
        "source": SOURCE,
        "source_id": uuid,
        "effective_start": start,
        # A sample over a span of time (steps, an HRV window, a 30 s ECG) keeps its end.
        "effective_end": end if end != start else None,
        "device": device_identity(sample),
        "manual_entry": parse_bool(metadata.get("HKWasUserEntered")) is True,
    }
    if type_name in QUANTITY_TYPES:
        spec = QUANTITY_TYPES[type_name]
        value = spec.convert(parse_number(sample.get("value"), "value"), str(sample.get("unit", "")))
        return Measurement(kind=spec.kind, value=Quantity(value, spec.ucum), **common)
    if type_name == GLUCOSE_TYPE:
        meal = MEAL_TIMES.get(str(metadata.get("HKBloodGlucoseMealTime")))
        components = (Component("meal", None, coded=MEAL_TIMING[meal]),) if meal else ()
        return Measurement(kind=Kind.GLUCOSE, value=_glucose(sample), components=components, **common)
    if type_name == BLOOD_PRESSURE_TYPE:
        return Measurement(kind=Kind.BLOOD_PRESSURE, components=_pressure_components(sample), **common)
    if type_name in ECG_TYPES:
        return _ecg(sample, common)
    raise InvalidPayload(f"HealthKit type {type_name} is not supported")


def _period(sample: dict[str, Any], metadata: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    start_text = sample.get("startDate")
    end_text = sample.get("endDate", start_text)
    start = parse_instant(start_text, "startDate")
    end = start if end_text == start_text else parse_instant(end_text, "endDate")
    if end < start:
        raise InvalidPayload("endDate is before startDate")
    zone = zone_info(optional_text(metadata.get("HKTimeZone")))
    if zone is not None:  # the wall clock where the sample was taken
        start, end = start.astimezone(zone), end.astimezone(zone)
    return start, end


def _glucose(sample: dict[str, Any]) -> Quantity:
    value = parse_number(sample.get("value"), "value")
    unit = str(sample.get("unit", "")).lower()
    if unit == "mg/dl":
        return Quantity(value, "mg/dL")
    if unit == "mmol/l" or _GLUCOSE_MOLAR_MASS.match(unit):
        return Quantity(value, "mmol/L")
    raise InvalidPayload("glucose unit must be mg/dL or mmol<180.15588000005408>/L")


def _pressure_components(sample: dict[str, Any]) -> tuple[Component, ...]:
    objects = sample.get("objects")
    if not isinstance(objects, list):
        raise InvalidPayload("blood pressure correlation has no objects")
    values: dict[str, float] = {}
    for item in objects:
        if not isinstance(item, dict):
            raise InvalidPayload("blood pressure object is not an object")
        name = {_SYSTOLIC: "systolic", _DIASTOLIC: "diastolic"}.get(str(item.get("type")))
        if name is None:
            continue
        if str(item.get("unit", "mmHg")).lower() not in ("mmhg", "mm[hg]"):
            raise InvalidPayload(f"{name} pressure unit must be mmHg")
        values[name] = parse_number(item.get("value"), f"{name} value")
    if set(values) != {"systolic", "diastolic"}:
        raise InvalidPayload("blood pressure correlation needs one systolic and one diastolic sample")
    return (
        Component("systolic", Quantity(values["systolic"], "mm[Hg]")),
        Component("diastolic", Quantity(values["diastolic"], "mm[Hg]")),
    )


_VOLT_FACTORS = {"uv": 1.0, "µv": 1.0, "mv": 1000.0, "v": 1_000_000.0}


def _ecg(sample: dict[str, Any], common: dict[str, Any]) -> Measurement:
    frequency = parse_number(sample.get("samplingFrequency"), "samplingFrequency")
    if not 50 <= frequency <= 2000:
        raise InvalidPayload("samplingFrequency must be between 50 and 2000 Hz")
    voltages = sample.get("voltageMeasurements")
    if not isinstance(voltages, list) or not voltages:
        raise InvalidPayload("voltageMeasurements must be a non-empty array")
    factor = _VOLT_FACTORS.get(str(sample.get("voltageUnit", "uV")).lower())
    if factor is None:
        raise InvalidPayload("voltageUnit must be V, mV or uV")
    samples = tuple(round(parse_number(v, "voltageMeasurements[]") * factor, 3) for v in voltages)
    average = sample.get("averageHeartRate")
    components: tuple[Component, ...] = ()
    if average is not None:
        components = (Component("heart-rate", Quantity(parse_number(average, "averageHeartRate"), "/min")),)
    classification = optional_text(sample.get("classification"))
    rhythm = ECG_CLASSIFICATIONS.get(classification or "")
    return Measurement(
        kind=Kind.ECG,
        signal=SampledSignal(period_ms=round(1000 / frequency, 6), unit="uV", samples=samples),
        components=components,
        interpretation=classification,
        interpretations=(ECG_RHYTHMS[rhythm],) if rhythm else (),
        **common,
    )


def device_identity(sample: dict[str, Any]) -> DeviceIdentity | None:
    """The physical device: its local identifier, else the per-device Health source bundle id
    (``com.apple.health.<UUID>``). Entries typed into the Health app have no device."""
    device = _object(sample.get("device"))
    source = _object(sample.get("source"))
    fields = (
        device.get("localIdentifier"),
        source.get("bundleIdentifier"),
        device.get("manufacturer"),
        device.get("hardwareVersion") or device.get("model"),
        source.get("name") or device.get("name"),
        device.get("softwareVersion"),
    )
    try:  # an upload repeats a handful of devices many times
        return _device_identity(*fields)
    except TypeError:  # a field that is not hashable (not a scalar): not a cache key
        return _device_identity.__wrapped__(*fields)


@functools.lru_cache(maxsize=1024, typed=True)  # typed: 1, 1.0 and True are one key otherwise
def _device_identity(
    local_id: Any, bundle: Any, manufacturer: Any, model: Any, name: Any, version: Any
) -> DeviceIdentity | None:
    identifiers: list[tuple[str, str]] = []
    local_text = optional_text(local_id)
    if local_text:
        identifiers.append((LOCAL_DEVICE_SYSTEM, local_text))
    bundle_text = optional_text(bundle)
    if bundle_text and _PER_DEVICE_BUNDLE.match(bundle_text):
        identifiers.append((SOURCE_DEVICE_SYSTEM, bundle_text))
    if not identifiers:
        return None
    return DeviceIdentity(
        source=SOURCE,
        identifiers=tuple(identifiers),
        manufacturer=optional_text(manufacturer),
        model=optional_text(model),
        name=optional_text(name),
        version=optional_text(version),
    )
