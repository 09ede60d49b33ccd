"""Plausible ranges per kind, in UCUM units, shared by every source: a value outside them is
a device or transmission error, never a reading to chart."""

from __future__ import annotations

import math

from shared.measurement import Component, Kind, Measurement, ParseResult, RejectedReading, SampledSignal

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
# A value with no plausible range of its own (a source's own code) still has to be a number a
# FHIR decimal can carry exactly; nothing measured comes near.
MAX_MAGNITUDE = 1e15
# A body-surface ECG is a few millivolts; a sample past a volt is not a voltage measured.
MAX_ECG_MICROVOLTS = 1e6
GLUCOSE_UNITS = frozenset({"mg/dL", "mmol/L"})
BLOOD_PRESSURE_RANGES: dict[str, tuple[float, float]] = {
    "systolic": (40, 300),
    "diastolic": (20, 250),
    "mean": (20, 270),
}


def problem(measurement: Measurement) -> str | None:
    """Why the reading is implausible, or None."""
    if measurement.kind is Kind.BLOOD_PRESSURE:
        return _blood_pressure_problem(measurement.components)
    if measurement.signal is not None and (reason := _signal_problem(measurement.signal)):
        return reason
    for component in measurement.components:
        if component.quantity is not None and not -MAX_MAGNITUDE <= component.quantity.value <= MAX_MAGNITUDE:
            name = component.name  # the test above is true for NaN too
            return f"{name} of {measurement.kind} is not a finite number below {MAX_MAGNITUDE:g} in magnitude"
    if measurement.value is None:
        return None
    if measurement.kind is Kind.GLUCOSE and measurement.value.unit not in GLUCOSE_UNITS:
        return f"glucose in {measurement.value.unit or 'no unit'} cannot be converted to mg/dL or mmol/L"
    value, unit = measurement.value
    bounds = RANGES.get((measurement.kind, unit))
    if bounds is None:
        if -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # false for NaN too
            return None
        return f"{measurement.kind} is not a finite number below {MAX_MAGNITUDE:g} in magnitude"
    low, high = bounds
    if low <= value <= high:  # false for NaN too
        return None
    return f"{measurement.kind} is outside the plausible range {low:g}-{high:g} {unit}"


def _blood_pressure_problem(components: tuple[Component, ...]) -> str | None:
    pressures: dict[str, float] = {}
    for component in components:
        if component.quantity is None:
            continue
        name, (value, unit) = component.name, component.quantity
        bounds = BLOOD_PRESSURE_RANGES.get(name)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:  # true for NaN too
            return f"{name} pressure is outside the plausible range {bounds[0]:g}-{bounds[1]:g} {unit}"
        pressures[name] = value
    if pressures.get("systolic", math.inf) <= pressures.get("diastolic", -math.inf):
        return "systolic pressure is not above diastolic pressure"
    return None


def _signal_problem(signal: SampledSignal) -> str | None:
    if signal.unit == "uV" and not all(-MAX_ECG_MICROVOLTS <= v <= MAX_ECG_MICROVOLTS for v in signal.samples):
        return f"an ECG sample is not a finite voltage within ±{MAX_ECG_MICROVOLTS:g} uV"
    return None


def drop_implausible(result: ParseResult) -> None:
    """Moves every implausible reading of ``result`` to its rejected list, with the reason."""
    kept = []
    for measurement in result.readings:
        value = measurement.value
        if value is not None and measurement.kind is not Kind.BLOOD_PRESSURE:
            bounds = RANGES.get((measurement.kind, value.unit))
            low, high = bounds if bounds is not None else (-MAX_MAGNITUDE, MAX_MAGNITUDE)
            if low <= value.value <= high and not measurement.components and measurement.kind is not Kind.GLUCOSE:
                kept.append(measurement)  # the common case, decided without a call to problem()
                continue
        reason = problem(measurement)
        if reason:
            result.rejected.append(RejectedReading(measurement.source_id, reason))
        else:
            kept.append(measurement)
    result.readings = kept
