"""The request models of the Device Manager API: what the HTTP adapters validate with and the
OpenAPI document describes. No I/O, no SDK."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.devices.types import DEVICE_TYPE_KINDS, PROVIDERS


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}")
    return value


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class DeviceRegistration(StrictModel):
    provider: str = Field(json_schema_extra={"enum": list(PROVIDERS)})
    provider_device_id: str = Field(alias="providerDeviceId", min_length=1, max_length=200)
    type: str = Field(json_schema_extra={"enum": list(DEVICE_TYPE_KINDS)})
    name: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    manufacturer: str | None = Field(default=None, max_length=200)

    _known_provider = field_validator("provider")(lambda value: _one_of(value, PROVIDERS))
    _known_type = field_validator("type")(lambda value: _one_of(value, tuple(DEVICE_TYPE_KINDS)))


class AssignRequest(StrictModel):
    """The Device Manager's assign contract (the mobile app uses it too), plus an optional
    start of the validity period (default: now) for readings measured before the call."""

    device_id: str = Field(alias="deviceId", min_length=1, max_length=200)
    device_provider: str = Field(alias="deviceProvider", json_schema_extra={"enum": list(PROVIDERS)})
    device_type: str = Field(alias="deviceType", json_schema_extra={"enum": list(DEVICE_TYPE_KINDS)})
    name: str | None = Field(default=None, max_length=200)
    assigned_patient_id: str = Field(alias="assignedPatientId", min_length=1, max_length=200)
    valid_from: dt.datetime | None = Field(default=None, alias="from")

    _known_provider = field_validator("device_provider")(lambda value: _one_of(value, PROVIDERS))
    _known_type = field_validator("device_type")(lambda value: _one_of(value, tuple(DEVICE_TYPE_KINDS)))

    @field_validator("valid_from")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return value

    def registration(self) -> DeviceRegistration:
        return DeviceRegistration(
            provider=self.device_provider,
            provider_device_id=self.device_id,
            type=self.device_type,
            name=self.name,
        )


class CorrectionRequest(StrictModel):
    """A correction of attribution: the device's readings from ``from`` (to ``to``, or open)
    belong to ``patientId``."""

    patient_id: str = Field(alias="patientId", min_length=1, max_length=200)
    valid_from: dt.datetime = Field(alias="from")
    valid_to: dt.datetime | None = Field(default=None, alias="to")

    @field_validator("valid_from", "valid_to")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return value
