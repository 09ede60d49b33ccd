"""A consent record as stored and answered: one per (source, patient), with its history."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.consent.models import SCOPES, SOURCE_SCHEMA, ConsentStatus
from shared.records import Instant, Record
from shared.tenants import DEFAULT_TENANT


class ConsentEvent(Record):
    action: str = Field(description="grant, revoked or needs-reconsent")
    at: Instant
    by: str


class ConsentRecord(Record):
    id: str
    tenant_id: str = Field(default=DEFAULT_TENANT, alias="tenantId")
    patient_id: str = Field(alias="patientId")
    source: str = Field(
        description="a provider, or a partner app's client_id", json_schema_extra={"anyOf": SOURCE_SCHEMA}
    )
    scopes: list[str] = Field(json_schema_extra={"items": {"enum": list(SCOPES)}})
    status: ConsentStatus = "active"
    attestation: Literal["patient", "clinic"]
    granted_at: Instant = Field(alias="grantedAt")
    revoked_at: Instant | None = Field(default=None, alias="revokedAt")
    recorded_by: str = Field(alias="recordedBy")
    account_id: str | None = Field(default=None, alias="accountId", description="the source's user id (Withings)")
    history: list[ConsentEvent] = Field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status == "active"


class ConsentList(Record):
    items: list[ConsentRecord]


class WithheldCount(Record):
    patient_id: str = Field(alias="patientId")
    kind: str
    reason: str
    count: int


class ConsentAuditRecord(Record):
    """Per raw record whose readings consent withheld: counts per patient, kind and reason."""

    id: str
    receipt_id: str = Field(alias="receiptId")
    source: str
    checked_at: Instant = Field(alias="checkedAt")
    withheld: list[WithheldCount]
