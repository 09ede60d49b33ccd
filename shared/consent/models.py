"""Consent scopes and the consent grant the API takes. No I/O, no SDK."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.devices.models import StrictModel
from shared.devices.types import PROVIDERS
from shared.measurement import Kind

SCOPES = tuple(kind.value for kind in Kind)
ConsentStatus = Literal["active", "revoked", "needs-reconsent"]  # CONSENT_STATUSES


def consent_id(source: str, patient_id: str) -> str:
    return f"{source}.{patient_id}"


class ConsentGrant(StrictModel):
    patient_id: str = Field(alias="patientId", min_length=1, max_length=200)
    source: str = Field(json_schema_extra={"enum": list(PROVIDERS)})
    scopes: list[str] = Field(
        min_length=1, description="metric kinds the patient allows", json_schema_extra={"items": {"enum": list(SCOPES)}}
    )
    attestation: Literal["patient", "clinic"] = "patient"
    account_id: str | None = Field(default=None, alias="accountId", description="the source's user id (Withings)")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"must be one of {', '.join(PROVIDERS)}")
        return value

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        return sorted(set(value))
