"""The partner metrics API's batch of readings: its documented JSON shape, and the vetting that
turns each reading into the hub's normalised form (UCUM units, an instant or a period with its
UTC offset) or refuses it with a reason. One bad reading never refuses the rest.

    {"readings": [
      {"id": "r-1", "kind": "blood-pressure", "unit": "mm[Hg]",
       "components": {"systolic": 128, "diastolic": 82}, "effectiveDateTime": "2026-12-01T08:00:00+01:00",
       "device": {"id": "cuff-0042", "manufacturer": "Acme", "model": "BP One"}},
      {"id": "r-2", "kind": "steps", "value": 8412, "unit": "{steps}",
       "effectivePeriod": {"start": "2026-12-01T00:00:00+01:00", "end": "2026-12-02T00:00:00+01:00"}},
      {"id": "r-3", "kind": "ecg", "effectiveDateTime": "...",
       "ecg": {"samples": [12, 15, ...], "samplingFrequency": 500, "unit": "uV"}}]}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.measurement import Kind
from shared.partners.scopes import PARTNER_KINDS

MAX_READINGS = 500
MAX_ECG_SAMPLES = 60_000
# Per kind: the units accepted, each with its UCUM unit and how to convert a value to it.


def _same(value: float) -> float:
    return value


_SAME = _same
LB = 0.45359237
UNITS: dict[Kind, dict[str, tuple[str, Any]]] = {
    Kind.BODY_WEIGHT: {"kg": ("kg", _SAME), "g": ("kg", lambda v: v / 1000), "[lb_av]": ("kg", lambda v: v * LB),
                       "lb": ("kg", lambda v: v * LB)},
    Kind.BODY_TEMPERATURE: {"Cel": ("Cel", _SAME), "[degF]": ("Cel", lambda v: (v - 32) * 5 / 9)},
    Kind.GLUCOSE: {"mg/dL": ("mg/dL", _SAME), "mmol/L": ("mmol/L", _SAME)},
    Kind.HEART_RATE: {"/min": ("/min", _SAME), "bpm": ("/min", _SAME)},
    Kind.OXYGEN_SATURATION: {"%": ("%", _SAME)},
    Kind.STEPS: {"{steps}": ("{steps}", _SAME), "steps": ("{steps}", _SAME)},
    Kind.BLOOD_PRESSURE: {"mm[Hg]": ("mm[Hg]", _SAME), "mmHg": ("mm[Hg]", _SAME),
                          "kPa": ("mm[Hg]", lambda v: v * 7.500615)},
}  # fmt: skip
ECG_UNITS = {"uV": 1.0, "mV": 1000.0}
# Plausible ranges, after conversion: a value outside is refused, never written.
RANGES: dict[Kind, tuple[float, float]] = {
    Kind.BODY_WEIGHT: (0.2, 650), Kind.BODY_TEMPERATURE: (25, 46), Kind.GLUCOSE: (0.5, 2000),
    Kind.HEART_RATE: (15, 350), Kind.OXYGEN_SATURATION: (40, 100), Kind.STEPS: (0, 200_000),
    Kind.BLOOD_PRESSURE: (10, 350),
}  # fmt: skip


class _Loose(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PartnerDevice(_Loose):
    id: str = Field(min_length=1, max_length=100, description="the device's own id (serial) at the partner")
    manufacturer: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=100)


class PartnerPeriod(_Loose):
    start: str
    end: str


class PartnerEcg(_Loose):
    samples: list[float] = Field(min_length=1, max_length=MAX_ECG_SAMPLES)
    sampling_frequency: float = Field(alias="samplingFrequency", description="Hz, 50-2000")
    unit: str = Field(description="uV or mV")


class PartnerReading(BaseModel):
    """One reading as sent: checked field by field when vetted, so that one bad reading is
    refused with its reason while the others are accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: Any = Field(description="the partner's own id: the same id again updates the same reading")
    kind: Any = Field(description="ecg, blood-pressure, heart-rate, glucose, steps, body-weight, oxygen-saturation, "
                      "body-temperature")  # fmt: skip
    value: Any = None
    components: Any = Field(default=None, description="blood pressure: {systolic, diastolic}")
    unit: Any = None
    effective_date_time: Any = Field(default=None, alias="effectiveDateTime", description="RFC 3339 with UTC offset")
    effective_period: Any = Field(default=None, alias="effectivePeriod", description="{start, end} with offsets")
    device: Any = None
    ecg: Any = None


class PartnerBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    patient_id: str | None = Field(default=None, alias="patientId", description="a gateway authorised by a clinician "
                                   "names the patient; a patient's app does not")  # fmt: skip
    readings: list[PartnerReading] = Field(min_length=1, max_length=MAX_READINGS)


@dataclass(frozen=True)
class Refusal:
    id: str
    reason: str


def _instant(text: Any, what: str) -> dt.datetime:
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError(f"{what} is an RFC 3339 date-time")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} is not an RFC 3339 date-time") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{what} needs its UTC offset (Z or +hh:mm)")
    return moment


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"{what} is a number")
    return float(value)


def _vet(reading: PartnerReading) -> dict[str, Any]:
    """The normalised reading, or ValueError naming what is wrong."""
    try:
        kind = Kind(reading.kind)
    except ValueError:
        kind = None
    if kind not in PARTNER_KINDS:
        raise ValueError(f"unknown kind {str(reading.kind)[:40]!r}; known: {', '.join(k.value for k in PARTNER_KINDS)}")
    normalised: dict[str, Any] = {"id": reading.id, "kind": kind.value}
    if reading.effective_period is not None:
        period = PartnerPeriod.model_validate(reading.effective_period)
        start, end = _instant(period.start, "effectivePeriod.start"), _instant(period.end, "effectivePeriod.end")
        if end < start:
            raise ValueError("effectivePeriod ends before it starts")
        normalised |= {"start": start.isoformat(), "end": end.isoformat()}
    else:
        normalised["start"] = _instant(reading.effective_date_time, "effectiveDateTime").isoformat()
    if reading.device is not None:
        normalised["device"] = PartnerDevice.model_validate(reading.device).model_dump(exclude_none=True)
    if kind is Kind.ECG:
        ecg = PartnerEcg.model_validate(reading.ecg)
        if ecg.unit not in ECG_UNITS:
            raise ValueError(f"ecg.unit {ecg.unit[:20]!r} is not accepted; use one of: {', '.join(ECG_UNITS)}")
        if not 50 <= ecg.sampling_frequency <= 2000:
            raise ValueError("ecg.samplingFrequency is between 50 and 2000 Hz")
        factor = ECG_UNITS[ecg.unit]
        normalised["ecg"] = {"samples": [s * factor for s in ecg.samples], "hz": ecg.sampling_frequency}
        return normalised
    units = UNITS[kind]
    if reading.unit not in units:
        raise ValueError(f"unit {str(reading.unit)[:20]!r} is not accepted for {kind.value}; use one of: "
                         f"{', '.join(units)}")  # fmt: skip
    ucum, convert = units[reading.unit]
    low, high = RANGES[kind]
    if kind is Kind.BLOOD_PRESSURE:
        parts = reading.components
        if not isinstance(parts, dict) or set(parts) != {"systolic", "diastolic"}:
            raise ValueError("a blood pressure has components {systolic, diastolic}")
        values = {
            name: _converted(convert, _number(parts[name], f"components.{name}")) for name in ("systolic", "diastolic")
        }
        if not all(low <= v <= high for v in values.values()) or values["systolic"] <= values["diastolic"]:
            raise ValueError("the blood pressure is not plausible")
        normalised |= {"components": values, "unit": ucum}
        return normalised
    value = _converted(convert, _number(reading.value, "value"))
    if not low <= value <= high:
        raise ValueError(f"{kind.value} {value:g} {ucum} is outside the plausible range {low:g}-{high:g}")
    normalised |= {"value": value, "unit": ucum}
    return normalised


def _converted(convert: Any, value: float) -> float:
    """A converted value kept to 2 decimals (a pound to 0.005 kg): no false precision."""
    return value if convert is _SAME else round(convert(value), 2)


def vet_batch(batch: PartnerBatch) -> tuple[list[dict[str, Any]], list[Refusal]]:
    """(accepted readings, normalised; refused readings with their reasons)."""
    accepted: list[dict[str, Any]] = []
    refused: list[Refusal] = []
    seen: set[str] = set()
    for reading in batch.readings:
        key = reading.id if isinstance(reading.id, str) and 0 < len(reading.id) <= 100 else None
        if key is None:
            refused.append(Refusal(str(reading.id)[:100], "id is the partner's own id: 1-100 characters"))
            continue
        if key in seen:
            refused.append(Refusal(key, "the same id appears twice in the batch"))
            continue
        seen.add(key)
        try:
            accepted.append(_vet(reading))
        except ValueError as exc:
            refused.append(Refusal(key, _first_line(exc)))
    return accepted, refused


def _first_line(exc: ValueError) -> str:
    """pydantic's message for a nested model, or our own: one line, never a value."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg', 'is not valid')}" if where else str(first.get("msg"))
    return str(exc)


def kinds_of(readings: list[dict[str, Any]]) -> set[str]:
    return {reading["kind"] for reading in readings}
