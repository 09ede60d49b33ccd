"""A device as the registry stores it: one item per provider + provider device id, holding its
whole assignment history, so that every change is one conditional replace."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from shared.devices.types import DEVICE_TYPE_KINDS, PROVIDERS
from shared.records import Instant, Record
from shared.tenants import DEFAULT_TENANT

DeviceStatus = Literal["active", "retired"]


class AssignmentRecord(Record):
    """The device was the patient's from ``valid_from`` until ``valid_to`` (open: still is)."""

    patient_id: str = Field(alias="patientId")
    valid_from: Instant = Field(alias="from")
    valid_to: Instant | None = Field(default=None, alias="to")

    def covers(self, moment: dt.datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)


class DeviceRecord(Record):
    id: str
    tenant_id: str = Field(default=DEFAULT_TENANT, alias="tenantId")
    provider: str = Field(json_schema_extra={"enum": list(PROVIDERS)})
    provider_device_id: str = Field(alias="providerDeviceId")
    type: str = Field(json_schema_extra={"enum": list(DEVICE_TYPE_KINDS)})
    name: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    status: DeviceStatus = "active"
    patient_id: str | None = Field(default=None, alias="patientId", description="the open assignment's patient")
    assignments: list[AssignmentRecord] = Field(default_factory=list)
    created_at: Instant = Field(alias="createdAt")
    updated_at: Instant = Field(alias="updatedAt")

    def patient_at(self, moment: dt.datetime) -> str | None:
        return next((a.patient_id for a in self.assignments if a.covers(moment)), None)

    @property
    def open_assignment(self) -> AssignmentRecord | None:
        return next((a for a in self.assignments if a.valid_to is None), None)

    @property
    def latest_end(self) -> dt.datetime | None:
        return max((a.valid_to for a in self.assignments if a.valid_to is not None), default=None)


class DevicePage(Record):
    items: list[DeviceRecord]
    continuation_token: str | None = Field(alias="continuationToken")
