"""Consent scopes and the consent grant the API takes. No I/O, no SDK."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, JsonValue, field_validator

from shared.devices.models import StrictModel
from shared.devices.types import PROVIDERS
from shared.measurement import Kind
from shared.tenants import DEFAULT_TENANT

SCOPES = tuple(kind.value for kind in Kind)
ConsentStatus = Literal["active", "revoked", "needs-reconsent"]  # CONSENT_STATUSES


PARTNER_SOURCE = re.compile(r"^app-[0-9a-f]{24}$")  # a partner app's client_id is its source
SOURCE_SCHEMA: list[JsonValue] = [{"enum": list(PROVIDERS)}, {"pattern": PARTNER_SOURCE.pattern}]


def is_known_source(source: str) -> bool:
    """A provider the hub connects to, or a registered partner app (its client_id)."""
    return source in PROVIDERS or bool(PARTNER_SOURCE.fullmatch(source))


def consent_id(source: str, patient_id: str, tenant: str = DEFAULT_TENANT) -> str:
    """``<source>.<patient>`` in the default tenant (as before tenants), ``<tenant>:<source>.<patient>``
    in another: the same patient id in two tenants is two patients."""
    return f"{source}.{patient_id}" if tenant == DEFAULT_TENANT else f"{tenant}:{source}.{patient_id}"


def parse_consent_id(record_id: str) -> tuple[str, str, str]:
    """(tenant, source, patient) of a consent id."""
    head, _, patient_id = record_id.partition(".")
    tenant, colon, source = head.rpartition(":")
    return (tenant if colon else DEFAULT_TENANT), source, patient_id


class ConsentGrant(StrictModel):
    patient_id: str = Field(alias="patientId", min_length=1, max_length=200)
    source: str = Field(
        description="a provider, or a partner app's client_id", json_schema_extra={"anyOf": SOURCE_SCHEMA}
    )
    scopes: list[str] = Field(
        min_length=1, description="metric kinds the patient allows", json_schema_extra={"items": {"enum": list(SCOPES)}}
    )
    attestation: Literal["patient", "clinic"] = "patient"
    account_id: str | None = Field(default=None, alias="accountId", description="the source's user id (Withings)")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if not is_known_source(value):
            raise ValueError(f"must be one of {', '.join(PROVIDERS)}, or a partner app's client_id")
        return value

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        return sorted(set(value))
