"""A tenant as the registry stores it."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from shared.records import Instant, Record

TenantStatus = Literal["active", "suspended"]  # TENANT_STATUSES
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class TenantSettings(Record):
    """What a centre may set for itself; unset: the deployment's own setting."""

    attribution_lookback_days: int | None = Field(default=None, alias="attributionLookbackDays", ge=0, le=365)
    medisante_api_key_hashes: list[str] = Field(
        default_factory=list, alias="medisanteApiKeyHashes", description="SHA-256 hex digests of its webhook keys"
    )

    @field_validator("medisante_api_key_hashes")
    @classmethod
    def _digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError("each key digest is 64 lower-case hex digits (SHA-256), never a key")
        return value


class TenantRecord(Record):
    id: str = Field(description="lower case letters, digits and dashes; part of every id the tenant owns")
    name: str
    status: TenantStatus = "active"
    fhir_url: str | None = Field(
        default=None, alias="fhirUrl", description="the tenant's own FHIR service; unset: the hub's"
    )
    settings: TenantSettings = Field(default_factory=TenantSettings)
    created_at: Instant = Field(alias="createdAt")
    updated_at: Instant = Field(alias="updatedAt")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not TENANT_ID.fullmatch(value):
            raise ValueError("a tenant id is 2-63 lower-case letters, digits or dashes, not starting with a dash")
        return value

    @property
    def active(self) -> bool:
        return self.status == "active"


class TenantList(Record):
    items: list[TenantRecord]


class ActivatedTenant(TenantRecord):
    re_driven: int = Field(alias="reDriven", description="held records sent through the pipeline again")


class NewTenant(Record):
    """A medical centre to serve (``POST /api/platform/tenants``)."""

    id: str = Field(description="lower case letters, digits and dashes; part of every id the tenant owns")
    name: str = Field(min_length=1, max_length=200)
    fhir_url: str | None = Field(default=None, alias="fhirUrl", description="its own FHIR service; unset: the hub's")
    attribution_lookback_days: int | None = Field(default=None, alias="attributionLookbackDays", ge=0, le=365)
    medisante_api_key_hashes: list[str] = Field(
        default_factory=list, alias="medisanteApiKeyHashes", max_length=20, description="SHA-256 hex digests"
    )

    @field_validator("fhir_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError("fhirUrl is the absolute http(s) base URL of a FHIR R4 service")
        return value


class NewMember(Record):
    """Who may administer a tenant (``POST /api/platform/tenants/{id}/members``)."""

    member: str = Field(min_length=5, max_length=200, description="oid:<object id> or group:<group object id>")
