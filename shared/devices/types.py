"""Providers and device types: what each device type measures, which devices a patient may
assign, and the registry's id scheme. Plain data, importable by anything."""

from __future__ import annotations

import hashlib

from shared.measurement import Kind
from shared.tenants import DEFAULT_TENANT

PROVIDERS = ("medisante", "healthkit", "withings")
# Devices a patient may assign to themselves from the app (their own phone and watch). Every
# other device is the clinic's: only a back-office call assigns it.
PATIENT_ASSIGNABLE_PROVIDERS = ("healthkit",)
DEVICE_STATUSES = ("active", "retired")

# What each device type measures: assigning a clinic device records consent for these kinds.
DEVICE_TYPE_KINDS: dict[str, tuple[Kind, ...]] = {
    "blood-pressure-monitor": (Kind.BLOOD_PRESSURE, Kind.HEART_RATE),
    "glucometer": (Kind.GLUCOSE,),
    "scale": (Kind.BODY_WEIGHT, Kind.BMI, Kind.BODY_FAT_PERCENT, Kind.BODY_HEIGHT, Kind.OTHER),
    "pulse-oximeter": (Kind.OXYGEN_SATURATION, Kind.HEART_RATE),
    "thermometer": (Kind.BODY_TEMPERATURE,),
    "ecg-monitor": (Kind.ECG, Kind.HEART_RATE),
    "activity-tracker": (Kind.STEPS, Kind.HEART_RATE, Kind.RESTING_HEART_RATE),
    "smartwatch": (
        Kind.HEART_RATE,
        Kind.RESTING_HEART_RATE,
        Kind.HRV_SDNN,
        Kind.ECG,
        Kind.STEPS,
        Kind.OXYGEN_SATURATION,
        Kind.RESPIRATORY_RATE,
    ),
    "phone": (Kind.STEPS,),
}


def registry_id(provider: str, provider_device_id: str, tenant: str = DEFAULT_TENANT) -> str:
    """Deterministic: registering the same device twice finds the same item. The same serial in
    two tenants is two devices (the default tenant's ids are those from before tenants)."""
    key = f"{provider}|{provider_device_id}"
    if tenant != DEFAULT_TENANT:
        key = f"{tenant}|{key}"
    return "device-" + hashlib.sha256(key.encode()).hexdigest()[:32]
