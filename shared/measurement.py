"""The provider-neutral record of one reading. Parsers produce it; the FHIR mapping consumes
it. Pure data: no I/O, no Azure, no FHIR."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, NamedTuple, cast, get_args

import msgspec


class Kind(StrEnum):
    BLOOD_PRESSURE = "blood-pressure"
    HEART_RATE = "heart-rate"
    RESTING_HEART_RATE = "resting-heart-rate"
    HRV_SDNN = "hrv-sdnn"
    BODY_WEIGHT = "body-weight"
    BODY_HEIGHT = "body-height"
    BMI = "bmi"
    BODY_FAT_PERCENT = "body-fat-percent"
    OXYGEN_SATURATION = "oxygen-saturation"
    RESPIRATORY_RATE = "respiratory-rate"
    BODY_TEMPERATURE = "body-temperature"
    GLUCOSE = "glucose"
    STEPS = "steps"
    ECG = "ecg"
    # A type with no standard code: kept under the source's own code system (``source_code``).
    OTHER = "other"


# Observation.status (R4 value set observation-status): a source's own status is kept.
Status = Literal[
    "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"
]
STATUSES: tuple[str, ...] = get_args(Status)


def status_of(value: object, default: Status = "final") -> Status:
    """A source's Observation status, if it is one of R4's."""
    return cast(Status, value) if value in STATUSES else default


# The small value types are named tuples: immutable and hashable like a frozen dataclass, and
# several times cheaper to build, which matters at one or more per reading.
class Quantity(NamedTuple):
    value: float
    unit: str  # UCUM code; "" when the source gave no unit the hub knows (no UCUM code is asserted)


class Coding(NamedTuple):
    system: str
    code: str
    display: str | None = None


class Component(NamedTuple):
    """One part of a multi-part reading, e.g. the systolic pressure of a blood pressure."""

    name: str  # "systolic", "diastolic", "mean", "heart-rate", "meal"
    quantity: Quantity | None
    in_range: bool | None = None  # the device's own verdict (Medisanté isInRange)
    coded: Coding | None = None  # a coded value instead of a quantity (the meal context)


@dataclass(frozen=True, slots=True)
class SampledSignal:
    """A waveform (ECG): samples in ``unit`` taken every ``period_ms`` milliseconds."""

    period_ms: float
    unit: str
    samples: tuple[float, ...]
    lead: str = "I"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who measured. ``identifiers`` are (system URI, value) pairs, most specific first."""

    source: str
    identifiers: tuple[tuple[str, str], ...]
    manufacturer: str | None = None
    model: str | None = None  # the model's name (FHIR deviceName of type model-name)
    name: str | None = None
    serial_number: str | None = None
    model_number: str | None = None  # the vendor's model id (FHIR modelNumber)
    version: str | None = None
    key: str = field(init=False, compare=False, repr=False)  # "system|value" of the first identifier

    def __post_init__(self) -> None:
        system, value = self.identifiers[0]
        object.__setattr__(self, "key", f"{system}|{value}")


# A msgspec Struct: built three times faster than a dataclass, and parsers build one per
# reading in the hot path. Nothing mutates a Measurement after its parser returns it.
class Measurement(msgspec.Struct, kw_only=True, gc=False):
    kind: Kind
    source: str  # "medisante", "healthkit", "withings"
    source_id: str  # the source's own id of this reading, unique within the source
    effective_start: dt.datetime  # timezone-aware, with the offset the source gave
    effective_end: dt.datetime | None = None  # set for readings over a period (steps)
    value: Quantity | None = None
    components: tuple[Component, ...] = ()
    signal: SampledSignal | None = None
    source_code: Coding | None = None  # the source's own code (always kept for OTHER)
    device: DeviceIdentity | None = None
    annotations: tuple[tuple[str, str | bool | float], ...] = ()
    interpretation: str | None = None  # e.g. an ECG classification, as the source names it
    interpretations: tuple[Coding, ...] = ()  # coded flags (ECG rhythm, irregular heartbeat, out of range)
    coded_value: Coding | None = None  # a classification, not a measurement (Withings AFib result)
    notes: tuple[str, ...] = ()  # what a clinician must read with the value (ambiguous user, ...)
    # FHIR elements of an incoming Observation kept as they came (interpretation, note, extension).
    fhir_elements: tuple[tuple[str, str], ...] = ()  # (element name, its JSON)
    method: str | None = None  # how it was measured, where the code depends on it ("glucometer")
    manual_entry: bool = False
    ambiguous_user: bool = False
    status: Status = "final"
    issued: dt.datetime | None = None
    raw_ref: str | None = None  # receipt id of the raw record it came from
    group_id: str | None = None  # the source's id of a group of readings (a Withings measure group)


@dataclass(frozen=True, slots=True)
class RejectedReading:
    source_id: str
    reason: str


@dataclass(slots=True)
class ParseResult:
    """What one provider payload holds: readings to write, readings refused with a reason,
    unknown types (also kept as OTHER readings) reported, and source ids deleted upstream."""

    readings: list[Measurement] = field(default_factory=list)
    rejected: list[RejectedReading] = field(default_factory=list)
    unknown_types: list[str] = field(default_factory=list)
    deleted_source_ids: list[str] = field(default_factory=list)
    deleted_group_ids: list[str] = field(default_factory=list)
    devices: list[DeviceIdentity] = field(default_factory=list)
