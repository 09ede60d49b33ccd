"""A partner batch as the worker reads it: the readings the metrics API vetted and normalised
(``readings.vet_batch``), each becoming a Measurement whose source is the app's client_id, so
that the app's consent record decides what is written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.errors import InvalidPayload
from shared.measurement import Component, DeviceIdentity, Kind, Measurement, ParseResult, Quantity, SampledSignal
from shared.sources.parsing import load_json

FORMAT = "partner-json"


def device_system(client_id: str) -> str:
    return f"urn:iomt-hub:{client_id}:device"


def _device(client_id: str, device: dict[str, Any] | None) -> DeviceIdentity | None:
    if not device:
        return None
    return DeviceIdentity(
        source=client_id,
        identifiers=((device_system(client_id), str(device["id"])),),
        manufacturer=device.get("manufacturer"),
        model=device.get("model"),
    )


def _measurement(client_id: str, reading: dict[str, Any]) -> Measurement:
    kind = Kind(reading["kind"])
    common: dict[str, Any] = {
        "kind": kind,
        "source": client_id,
        "source_id": str(reading["id"]),
        "effective_start": dt.datetime.fromisoformat(reading["start"]),
        "effective_end": dt.datetime.fromisoformat(reading["end"]) if reading.get("end") else None,
        "device": _device(client_id, reading.get("device")),
    }
    if kind is Kind.ECG:
        ecg = reading["ecg"]
        signal = SampledSignal(period_ms=round(1000 / float(ecg["hz"]), 6), unit="uV", samples=tuple(ecg["samples"]))
        return Measurement(signal=signal, **common)
    if kind is Kind.BLOOD_PRESSURE:
        parts = reading["components"]
        unit = reading["unit"]
        components = tuple(Component(name, Quantity(float(parts[name]), unit)) for name in ("systolic", "diastolic"))
        return Measurement(components=components, **common)
    return Measurement(value=Quantity(float(reading["value"]), reading["unit"]), **common)


def parse_text(body: str, **_: Any) -> ParseResult:
    document = load_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("readings"), list):
        raise InvalidPayload("a partner record holds clientId and readings")
    client_id = str(document.get("clientId") or "")
    if not client_id:
        raise InvalidPayload("a partner record names its app (clientId)")
    readings = [_measurement(client_id, reading) for reading in document["readings"]]
    devices = list({m.device.key: m.device for m in readings if m.device is not None}.values())
    return ParseResult(readings=readings, devices=devices)
