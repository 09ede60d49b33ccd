"""Withings public API answers: Measure ``getmeas``, Measure v2 ``getactivity`` and Heart v2
ECG signals. Real value = value × 10^unit; every meastype of the facts table is mapped, and an
unknown one is kept under Withings' own code system and reported, never dropped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from shared import plausibility
from shared.errors import InvalidPayload
from shared.fhir.codes import ECG_RHYTHMS
from shared.measurement import (
    Coding,
    Component,
    DeviceIdentity,
    Kind,
    Measurement,
    ParseResult,
    Quantity,
    RejectedReading,
    SampledSignal,
    Status,
)
from shared.sources.parsing import (
    EPOCH_LIMIT_S,
    epoch_in_zone,
    load_json,
    optional_text,
    parse_number,
    require_mapping,
    zone_info,
)

SOURCE = "withings"
MEASTYPE_SYSTEM = "urn:iomt-hub:withings:meastype"
DEVICE_SYSTEM = "urn:iomt-hub:withings:deviceid"
AFIB_SYSTEM = "urn:iomt-hub:withings:afib-classification"
MANUAL_ATTRIBS = frozenset({2, 4})
AMBIGUOUS_ATTRIBS = frozenset({1})
# What a clinician must read with the value, where they look (Observation.note), by attrib.
ATTRIB_NOTES: dict[int, str] = {
    1: "Withings could not tell which user of the device took this measurement (attrib 1): confirm it is this "
    "patient's before relying on it",
    2: "Entered by hand in the Withings app (attrib 2), not measured by a device",
    4: "Entered by hand when the Withings account was created (attrib 4); Withings says it may not be accurate",
}
# Withings' meastype 130/139 values: a classification, not a measurement (Measure - Getmeas).
AFIB_CLASSES: dict[int, str] = {
    0: "Negative",
    1: "Positive",
    2: "Inconclusive",
    3: "No signal",
    4: "Other",
    5: "Noise",
    6: "Low Heart Rate",
    7: "High Heart Rate",
    8: "Inconclusive US",
    9: "Negative normal HR",
    10: "Negative high HR",
    11: "Positive normal HR",
    12: "Positive high HR",
    13: "No Diagnosis",
}
AFIB_MEASTYPES = frozenset({130, 139})
# Heart v2 ``model`` is a numeric model id; Getmeas gives the name (and ``modelid``).
MODEL_NAMES: dict[int, str] = {44: "BPM Core", 91: "Move ECG"}
SYSTOLIC, DIASTOLIC, PULSE = 10, 9, 11
MAX_UNIT = 20  # |unit|, the power of ten of a measure: larger is not a real measure
MAX_RAW_VALUE = 1e15  # |value| before the power of ten: integers up to here are exact floats


@dataclass(frozen=True)
class MeasType:
    name: str
    unit: str  # UCUM
    kind: Kind = Kind.OTHER  # OTHER: coded with MEASTYPE_SYSTEM
    power: int = 0  # of ten, from Withings' unit to the UCUM unit


MEASTYPES: dict[int, MeasType] = {
    1: MeasType("Weight", "kg", Kind.BODY_WEIGHT),
    4: MeasType("Height", "cm", Kind.BODY_HEIGHT, power=2),
    5: MeasType("Fat free mass", "kg"),
    6: MeasType("Fat ratio", "%", Kind.BODY_FAT_PERCENT),
    8: MeasType("Fat mass weight", "kg"),
    9: MeasType("Diastolic blood pressure", "mm[Hg]"),
    10: MeasType("Systolic blood pressure", "mm[Hg]"),
    11: MeasType("Heart pulse", "/min", Kind.HEART_RATE),
    # 12 is Withings' generic "Temperature", listed apart from 71 "Body temperature" and 73
    # "Skin temperature": not coded as body temperature, kept under Withings' own code.
    12: MeasType("Temperature", "Cel"),
    54: MeasType("SpO2", "%", Kind.OXYGEN_SATURATION),
    71: MeasType("Body temperature", "Cel", Kind.BODY_TEMPERATURE),
    73: MeasType("Skin temperature", "Cel"),
    76: MeasType("Muscle mass", "kg"),
    77: MeasType("Hydration", "kg"),
    88: MeasType("Bone mass", "kg"),
    91: MeasType("Pulse wave velocity", "m/s"),
    123: MeasType("VO2 max", "mL/min/kg"),
    130: MeasType("Atrial fibrillation result", ""),  # a classification: AFIB_CLASSES
    # Withings gives the ECG intervals in seconds (value x 10^unit s): x 10^3 for ms.
    135: MeasType("QRS interval duration", "ms", power=3),
    136: MeasType("PR interval duration", "ms", power=3),
    137: MeasType("QT interval duration", "ms", power=3),
    138: MeasType("Corrected QT interval duration", "ms", power=3),
    139: MeasType("Atrial fibrillation result from PPG", ""),
    155: MeasType("Vascular age", "a"),
}


ReadingParts = tuple[Kind, str, int, str, Coding | None]  # kind, UCUM unit, power of ten, id suffix, own code


def _reading_parts(meastype: int, spec: MeasType) -> ReadingParts:
    suffix = "heart-rate" if meastype == PULSE else f"meastype-{meastype}"
    coding = Coding(MEASTYPE_SYSTEM, str(meastype), spec.name) if spec.kind is Kind.OTHER else None
    return spec.kind, spec.unit, spec.power, suffix, coding


# Built once: the per-reading work of the hot path is a lookup.
_READING_PARTS: dict[int, ReadingParts] = {
    meastype: _reading_parts(meastype, spec) for meastype, spec in MEASTYPES.items()
}


class Measure(msgspec.Struct, gc=False):
    """value × 10^unit. Checked as it is decoded: a float here is exact up to 2^53, and a
    value no float can hold, or NaN, never reaches the arithmetic."""

    value: Annotated[float, msgspec.Meta(ge=-MAX_RAW_VALUE, le=MAX_RAW_VALUE)]
    type: int
    unit: Annotated[int, msgspec.Meta(ge=-MAX_UNIT, le=MAX_UNIT)]


class MeasureGroup(msgspec.Struct, gc=False):
    """One ``measuregrps`` entry of a ``getmeas`` answer (fields the hub reads)."""

    grpid: int
    date: int
    measures: list[Measure]
    attrib: int | None = None
    created: int | None = None
    modified: int | None = None
    category: int = 1
    deviceid: str | None = None
    model: str | None = None
    modelid: int | None = None


class _GetmeasBody(msgspec.Struct):
    measuregrps: list[MeasureGroup]
    timezone: str | None = None


class _GetmeasAnswer(msgspec.Struct):
    status: Literal[0]
    body: _GetmeasBody


def parse_text(text: str, *, userid: str | None = None) -> ParseResult:
    """Any supported Withings answer, recognised by its body. A well-formed getmeas answer is
    type-checked in one pass (C); anything else takes the tolerant path, where each group is
    checked on its own and a bad one is rejected alone with its reason."""
    document = load_json(text)
    try:
        answer = msgspec.convert(document, _GetmeasAnswer)
    except msgspec.MsgspecError:
        pass
    else:
        return _parse_groups(answer.body.measuregrps, answer.body.timezone)
    body = _body(document)
    if "measuregrps" in body:
        return parse_getmeas(body)
    if "activities" in body:
        return parse_activity(body, userid=userid)
    if "signal" in body:
        return parse_ecg(body, series=body.get("series"))
    raise InvalidPayload("not a getmeas, getactivity or heart get answer")


def _body(document: Any) -> dict[str, Any]:
    document = require_mapping(document, "the payload")
    status = document.get("status")
    if status != 0:
        raise InvalidPayload(f"Withings answered status {status}, not a successful answer")
    return require_mapping(document.get("body"), "body")


def device_identity(deviceid: Any, model: Any, model_id: Any = None) -> DeviceIdentity | None:
    """``model`` may be a name (Getmeas) or a numeric model id (Heart v2): either way the device
    gets the same name and model number, so one Device never alternates between them."""
    value = optional_text(deviceid)
    if value is None:
        return None
    if isinstance(model, int) and not isinstance(model, bool):
        model, model_id = MODEL_NAMES.get(model), model
    number = model_id if isinstance(model_id, int) and not isinstance(model_id, bool) else None
    name = optional_text(model) if isinstance(model, str) else None
    if name is None and number is not None:
        name = MODEL_NAMES.get(number)
    return DeviceIdentity(
        source=SOURCE,
        identifiers=((DEVICE_SYSTEM, value),),
        manufacturer="Withings",
        model=name,
        model_number=str(number) if number is not None else None,
    )


def parse_getmeas(body: dict[str, Any]) -> ParseResult:
    """A ``getmeas`` body as loosely typed JSON: numbers as strings are accepted; a group that
    cannot be read is rejected alone, with its reason."""
    groups = body.get("measuregrps")
    if not isinstance(groups, list):
        raise InvalidPayload("body.measuregrps must be an array")
    typed: list[MeasureGroup | RejectedReading] = []
    for index, group in enumerate(groups):
        try:
            typed.append(msgspec.convert(group, MeasureGroup, strict=False))
        except msgspec.ValidationError as exc:
            grpid = group.get("grpid") if isinstance(group, dict) else None
            name = str(grpid) if isinstance(grpid, (int, str)) and grpid != "" else f"measuregrps[{index}]"
            typed.append(RejectedReading(name, f"not a measure group: {exc}"))
    return _parse_groups(typed, optional_text(body.get("timezone")))


def _latest_per_group(groups: Sequence[MeasureGroup | RejectedReading]) -> list[MeasureGroup | RejectedReading]:
    """One group per grpid (an answer may list one twice): the latest ``modified`` wins, so the
    batch never holds two versions of one Observation."""
    latest: dict[int, MeasureGroup] = {}
    kept: list[MeasureGroup | RejectedReading] = []
    for group in groups:
        if isinstance(group, RejectedReading):
            kept.append(group)
            continue
        seen = latest.get(group.grpid)
        if seen is None or (group.modified or group.created or 0) >= (seen.modified or seen.created or 0):
            latest[group.grpid] = group
    return kept + list(latest.values())


def _parse_groups(groups: Sequence[MeasureGroup | RejectedReading], timezone: str | None) -> ParseResult:
    zone = zone_info(timezone)
    result = ParseResult()
    devices: dict[tuple[str | None, str | None, int | None], DeviceIdentity | None] = {}
    for group in _latest_per_group(groups):
        if isinstance(group, RejectedReading):
            result.rejected.append(group)
            continue
        try:
            _parse_group(group, zone, devices, result)
        except InvalidPayload as exc:
            result.rejected.append(RejectedReading(str(group.grpid), exc.message))
    result.devices.extend(device for device in devices.values() if device is not None)
    plausibility.drop_implausible(result)
    return result


def _parse_group(
    group: MeasureGroup,
    zone: ZoneInfo | None,
    devices: dict[tuple[str | None, str | None, int | None], DeviceIdentity | None],
    result: ParseResult,
) -> None:
    if group.category != 1:
        raise InvalidPayload("category is not 1 (a goal, not a measurement)")
    if not group.measures:  # in a lastupdate answer: the group was deleted since
        result.deleted_group_ids.append(str(group.grpid))
        return
    grpid, attrib, created = group.grpid, group.attrib, group.created
    group_id = str(grpid)
    modified = group.modified if group.modified is not None else created
    tz = zone or dt.UTC
    if not 0 < group.date < EPOCH_LIMIT_S or (modified is not None and not 0 < modified < EPOCH_LIMIT_S):
        raise InvalidPayload("date or modified is not a plausible epoch time")
    effective = dt.datetime.fromtimestamp(group.date, tz)
    issued = dt.datetime.fromtimestamp(modified, tz) if modified is not None else None
    device_key = (group.deviceid, group.model, group.modelid)
    if device_key not in devices:
        devices[device_key] = device_identity(*device_key)
    device = devices[device_key]
    measures = {measure.type: measure for measure in group.measures}

    status: Status = "amended" if modified is not None and created is not None and modified > created else "final"
    if attrib in AMBIGUOUS_ATTRIBS:
        status = "preliminary"  # not confirmed as this patient's: clinical viewers show the status
    notes = (ATTRIB_NOTES[attrib],) if attrib in ATTRIB_NOTES else ()
    manual_entry = attrib in MANUAL_ATTRIBS
    ambiguous_user = attrib in AMBIGUOUS_ATTRIBS
    annotations: tuple[tuple[str, str | bool | float], ...] = (("attrib", float(attrib)),) if attrib is not None else ()
    readings = result.readings
    # The two Measurement(...) calls below are spelled out on purpose: this runs once per
    # measure group, and building them from a shared **kwargs dict is measurably slower.
    if SYSTOLIC in measures and DIASTOLIC in measures:
        components = (
            Component("systolic", Quantity(_scaled(measures.pop(SYSTOLIC), 0), "mm[Hg]")),
            Component("diastolic", Quantity(_scaled(measures.pop(DIASTOLIC), 0), "mm[Hg]")),
        )
        readings.append(
            Measurement(
                kind=Kind.BLOOD_PRESSURE,
                source=SOURCE,
                source_id=f"{grpid}/blood-pressure",
                group_id=group_id,
                effective_start=effective,
                components=components,
                device=device,
                issued=issued,
                status=status,
                manual_entry=manual_entry,
                ambiguous_user=ambiguous_user,
                annotations=annotations,
                notes=notes,
            )
        )
    for meastype, measure in measures.items():
        parts = _READING_PARTS.get(meastype)
        if parts is None:
            result.unknown_types.append(f"meastype {meastype}")
            parts = _reading_parts(meastype, MeasType(f"Withings meastype {meastype}", ""))
        kind, unit, power, suffix, coding = parts
        if meastype in AFIB_MEASTYPES:
            try:
                readings.append(_afib_result(group, measure, effective, device, issued, status, coding))
            except InvalidPayload as exc:
                result.rejected.append(RejectedReading(f"{grpid}/{suffix}", exc.message))
            continue
        readings.append(
            Measurement(
                kind=kind,
                source=SOURCE,
                source_id=f"{grpid}/{suffix}",
                group_id=group_id,
                effective_start=effective,
                value=Quantity(_scaled(measure, power), unit),
                source_code=coding,
                device=device,
                issued=issued,
                status=status,
                manual_entry=manual_entry,
                ambiguous_user=ambiguous_user,
                annotations=annotations,
                notes=notes,
            )
        )


def _afib_result(
    group: MeasureGroup,
    measure: Measure,
    effective: dt.datetime,
    device: DeviceIdentity | None,
    issued: dt.datetime | None,
    status: Status,
    coding: Coding | None,
) -> Measurement:
    """Meastypes 130 and 139: the AFib classification as a coded result, with Withings' meaning."""
    number = _scaled(measure, 0)
    meaning = AFIB_CLASSES.get(int(number)) if float(number).is_integer() else None
    if meaning is None:
        raise InvalidPayload(f"meastype {measure.type} value {number:g} is not a Withings AFib classification")
    return Measurement(
        kind=Kind.OTHER,
        source=SOURCE,
        source_id=f"{group.grpid}/meastype-{measure.type}",
        group_id=str(group.grpid),
        effective_start=effective,
        coded_value=Coding(AFIB_SYSTEM, str(int(number)), meaning),
        source_code=coding,
        device=device,
        issued=issued,
        status=status,
    )


def _scaled(measure: Measure, power: int) -> float:
    """value × 10^(unit + power), correctly rounded: dividing by an exact power of ten gives the
    float nearest the decimal (14300 × 10^-2 → 143.0 and 56300 × 10^-3 → 56.3, never 56.300000000000004)."""
    exponent = measure.unit + power
    return measure.value / _TENS[-exponent] if exponent < 0 else measure.value * _TENS[exponent]


_TENS: tuple[int, ...] = tuple(10**power for power in range(MAX_UNIT + 3))  # + the largest MeasType.power


def parse_activity(body: dict[str, Any], *, userid: str | None) -> ParseResult:
    """Steps per day. A day's activity has no id of its own: the Withings user id makes one."""
    if not userid:
        raise InvalidPayload("an activity answer needs the Withings user id it belongs to")
    activities = body.get("activities")
    if not isinstance(activities, list):
        raise InvalidPayload("body.activities must be an array")
    result = ParseResult()
    for index, activity in enumerate(activities):
        try:
            activity = require_mapping(activity, f"activities[{index}]")
            day = str(activity.get("date", ""))
            zone = zone_info(optional_text(activity.get("timezone")))
            try:
                start_date = dt.date.fromisoformat(day)
            except ValueError:
                raise InvalidPayload(f"activities[{index}].date is not YYYY-MM-DD") from None
            tz = zone or dt.UTC
            start = dt.datetime.combine(start_date, dt.time(), tzinfo=tz)
            end = dt.datetime.combine(start_date + dt.timedelta(days=1), dt.time(), tzinfo=tz)
            steps = parse_number(activity.get("steps"), f"activities[{index}].steps")
            device = device_identity(activity.get("deviceid"), activity.get("brand_model"))
            result.readings.append(
                Measurement(
                    kind=Kind.STEPS,
                    source=SOURCE,
                    source_id=f"{userid}/steps/{day}",
                    effective_start=start,
                    effective_end=end,
                    value=Quantity(round(steps), "{steps}"),
                    device=device,
                )
            )
        except InvalidPayload as exc:
            result.rejected.append(RejectedReading(f"activities[{index}]", exc.message))
    plausibility.drop_implausible(result)
    return result


def parse_ecg(body: dict[str, Any], *, series: Any) -> ParseResult:
    """A Heart v2 ``get`` answer (the signal) with its ``list`` entry (id, time, AFib result,
    heart rate, device): the ``get`` answer alone says neither which recording nor when."""
    series = require_mapping(series, "the heart list entry (series) for this signal")
    ecg = require_mapping(series.get("ecg"), "series.ecg")
    signalid = ecg.get("signalid")
    if not isinstance(signalid, int) or isinstance(signalid, bool):
        raise InvalidPayload("series.ecg.signalid is missing or not an integer")
    signal = body.get("signal")
    if not isinstance(signal, list) or not signal:
        raise InvalidPayload("body.signal must be a non-empty array")
    frequency = parse_number(body.get("sampling_frequency"), "body.sampling_frequency")
    if not 50 <= frequency <= 2000:
        raise InvalidPayload("body.sampling_frequency must be between 50 and 2000 Hz")
    samples = tuple(parse_number(v, "body.signal[]") for v in signal)
    zone = zone_info(optional_text(series.get("timezone")))
    effective = epoch_in_zone(series.get("timestamp"), zone, "series.timestamp")
    components: tuple[Component, ...] = ()
    if series.get("heart_rate") is not None:
        heart_rate = parse_number(series.get("heart_rate"), "series.heart_rate")
        components = (Component("heart-rate", Quantity(heart_rate, "/min")),)
    device = device_identity(series.get("deviceid"), series.get("model"))
    afib = ecg.get("afib")
    interpretations: tuple[Coding, ...] = ()
    if isinstance(afib, int) and not isinstance(afib, bool) and afib in AFIB_RESULTS:
        interpretations = (Coding(AFIB_SYSTEM, str(afib), AFIB_CLASSES[afib]),)
        if afib == 1:
            interpretations += (ECG_RHYTHMS["atrial-fibrillation"],)
    reading = Measurement(
        kind=Kind.ECG,
        source=SOURCE,
        source_id=f"ecg/{signalid}",
        effective_start=effective,
        device=device,
        signal=SampledSignal(period_ms=round(1000 / frequency, 6), unit="uV", samples=samples),
        components=components,
        interpretation=AFIB_RESULTS.get(afib) if isinstance(afib, int) else None,
        interpretations=interpretations,
    )
    result = ParseResult(readings=[reading], devices=[device] if device else [])
    pressure = series.get("bloodpressure")
    if isinstance(pressure, dict) and pressure.get("systole") is not None and pressure.get("diastole") is not None:
        result.readings.append(  # the BPM Core measures blood pressure with the ECG: kept, not dropped
            Measurement(
                kind=Kind.BLOOD_PRESSURE,
                source=SOURCE,
                source_id=f"ecg/{signalid}/blood-pressure",
                effective_start=effective,
                device=device,
                components=(
                    Component(
                        "systolic", Quantity(parse_number(pressure["systole"], "bloodpressure.systole"), "mm[Hg]")
                    ),
                    Component(
                        "diastolic", Quantity(parse_number(pressure["diastole"], "bloodpressure.diastole"), "mm[Hg]")
                    ),
                ),
            )
        )
    plausibility.drop_implausible(result)
    return result


# Heart v2 ``ecg.afib``: 0 negative, 1 positive, 2 inconclusive.
AFIB_RESULTS = {0: "sinusRhythm", 1: "atrialFibrillation", 2: "inconclusive"}
