"""Plausible ranges per kind, in UCUM units, shared by every source: a value outside them is
a device or transmission error, never a reading to chart."""

from __future__ import annotations

import math

from shared.measurement import Kind, Measurement, ParseResult, Quantity, RejectedReading

RANGES: dict[tuple[Kind, str], tuple[float, float]] = {
    (Kind.HEART_RATE, "/min"): (20, 300),
    (Kind.RESTING_HEART_RATE, "/min"): (20, 250),
    (Kind.HRV_SDNN, "ms"): (0, 1000),
    (Kind.BODY_WEIGHT, "kg"): (0.2, 500),
    (Kind.BODY_HEIGHT, "cm"): (20, 280),
    (Kind.BMI, "kg/m2"): (5, 150),
    (Kind.BODY_FAT_PERCENT, "%"): (1, 80),
    (Kind.OXYGEN_SATURATION, "%"): (40, 100),
    (Kind.RESPIRATORY_RATE, "/min"): (2, 120),
    (Kind.BODY_TEMPERATURE, "Cel"): (25, 45),
    (Kind.GLUCOSE, "mmol/L"): (0.5, 60),
    (Kind.GLUCOSE, "mg/dL"): (9, 1100),
    (Kind.STEPS, "{steps}"): (0, 200_000),
}
BLOOD_PRESSURE_RANGES: dict[str, tuple[float, float]] = {
    "systolic": (40, 300),
    "diastolic": (20, 250),
    "mean": (20, 270),
}


def problem(measurement: Measurement) -> str | None:
    """Why the reading is implausible, or None."""
    if measurement.kind is Kind.BLOOD_PRESSURE:
        parts = {c.name: c.quantity for c in measurement.components}
        for name, (low, high) in BLOOD_PRESSURE_RANGES.items():
            quantity = parts.get(name)
            if quantity is not None and (reason := _outside(f"{name} pressure", quantity, low, high)):
                return reason
        if "systolic" in parts and "diastolic" in parts and parts["systolic"].value <= parts["diastolic"].value:
            return "systolic pressure is not above diastolic pressure"
        return None
    if measurement.value is None:
        return None
    value, unit = measurement.value
    bounds = RANGES.get((measurement.kind, unit))
    if bounds is None:
        return None if math.isfinite(value) else f"{measurement.kind} is not a finite number"
    low, high = bounds
    if low <= value <= high:  # false for NaN too
        return None
    return f"{measurement.kind} is outside the plausible range {low:g}-{high:g} {unit}"


def _outside(name: str, quantity: Quantity, low: float, high: float) -> str | None:
    if not math.isfinite(quantity.value) or not low <= quantity.value <= high:
        return f"{name} is outside the plausible range {low:g}-{high:g} {quantity.unit}"
    return None


def drop_implausible(result: ParseResult) -> None:
    """Moves every implausible reading of ``result`` to its rejected list, with the reason."""
    kept = []
    for measurement in result.readings:
        value = measurement.value
        if value is not None and measurement.kind is not Kind.BLOOD_PRESSURE:
            bounds = RANGES.get((measurement.kind, value.unit))
            if bounds is not None and bounds[0] <= value.value <= bounds[1]:
                kept.append(measurement)  # the common case, decided without a call to problem()
                continue
        reason = problem(measurement)
        if reason:
            result.rejected.append(RejectedReading(measurement.source_id, reason))
        else:
            kept.append(measurement)
    result.readings = kept
