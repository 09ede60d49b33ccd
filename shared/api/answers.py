"""What the HTTP API answers, besides the stored records it returns as they are (devices,
consents): typed, so that the handlers and the OpenAPI document say the same thing. Imported
by the handlers when they answer (never at cold start: importing a blueprint imports no pydantic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.records import Instant, Record


class Accepted(Record):
    """A payload is durably queued: whatever becomes of it can be told by its receipt id."""

    status: Literal["accepted"] = "accepted"
    receipt_id: str = Field(alias="receiptId")


class RejectedSample(Record):
    uuid: str = Field(description="the sample's uuid, or its place in the upload (samples[3])")
    reason: str


class UploadAnswer(Record):
    status: Literal["accepted"] = "accepted"
    receipt_id: str = Field(alias="receiptId")
    accepted: int = Field(description="samples queued for FHIR")
    deleted: int = Field(description="deletions queued")
    rejected: list[RejectedSample] = Field(description="each sample refused, with its reason")


class LoginAnswer(Record):
    status: Literal["authenticated"] = "authenticated"
    expires_at: Instant = Field(alias="expiresAt", description="the session's absolute expiry")


class Profile(Record):
    """OIDC UserInfo claims, plus the patient the user is (claims the user has not are absent)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    sub: str
    patient_id: str
    name: str | None = None
    email: str | None = None
    preferred_username: str | None = None

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class WithingsConnect(Record):
    authorize_url: str = Field(alias="authorizeUrl", description="Withings' consent page (also in Location)")


class DependencyHealth(Record):
    ok: bool
    latency_ms: float = Field(alias="latencyMs")


class Health(Record):
    status: Literal["ok", "degraded"]
    dependencies: dict[str, DependencyHealth] = Field(description="storage, cosmos, keyvault and fhir")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: bad_request, unauthorized, not_found...")
    message: str = Field(description="names the problem, never quotes a secret or a health value")
    details: Any = None
    request_id: str | None = Field(default=None, alias="requestId", description="500 only: quote it to support")


class ErrorAnswer(BaseModel):
    error: ErrorDetail


class HealthKitUpload(BaseModel):
    """The app's upload (each sample is vetted on its own: one bad sample never rejects the rest)."""

    permissions: list[str] | None = Field(default=None, description="the HealthKit types the user granted")
    samples: list[dict[str, Any]] = Field(default_factory=list, description="HealthKit samples (uuid, type, ...)")
    deleted: list[dict[str, Any]] = Field(default_factory=list, description="deleted samples ({uuid})")


class TokenAnswer(BaseModel):
    """The partner token endpoint's answer (RFC 6749 5.1)."""

    access_token: str
    token_type: str = Field(description="Bearer")
    expires_in: int = Field(description="seconds (900)")
    scope: str = Field(description="the granted scopes, space separated: the ones the user left ticked")
    refresh_token: str | None = Field(default=None, description="with offline_access; rotates on every use")


class OAuthErrorAnswer(BaseModel):
    """An OAuth error (RFC 6749 5.2), as OAuth client libraries read it."""

    error: str = Field(description="invalid_request, invalid_client, invalid_grant, invalid_scope, ...")
    error_description: str | None = None


class RefusedReading(BaseModel):
    id: str = Field(description="the partner's id of the reading")
    reason: str


class PartnerAccepted(BaseModel):
    """The metrics API's answer: the batch is durable; its receipt tells what became of each reading."""

    receipt_id: str = Field(alias="receiptId")
    accepted: int
    refused: list[RefusedReading] = Field(description="readings refused, each with its reason")

    model_config = {"populate_by_name": True}


class UserInfoTenant(BaseModel):
    id: str
    name: str


class UserInfo(BaseModel):
    """UserInfo in GipoNext's shape: the user, their medical centre, and the patient they are."""

    sub: str
    name: str | None = None
    tenants: list[UserInfoTenant]
    patient: str | None = Field(default=None, description="Patient/<id>, when the user is a patient")
