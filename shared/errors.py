"""The one error hierarchy of the hub. Each error knows its HTTP status; ``shared.api.http``
turns any of them into a JSON answer in exactly one place.

Messages are written for the caller: they name the problem, never a secret or a health value.
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(HubError):
    status, code = 400, "bad_request"


class InvalidPayload(BadRequest):
    """A provider payload that cannot be understood. At ingress it is a 400; in the worker
    it makes a rejected record (it would fail the same way on every retry)."""

    code = "invalid_payload"


class Unauthorized(HubError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, *, challenge: str | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.challenge = challenge


class Forbidden(HubError):
    status, code = 403, "forbidden"


class TenantSuspended(Forbidden):
    """The medical centre's account is suspended: its credentials are refused, its queued work
    is held (not lost) until it is reactivated."""

    code = "tenant_suspended"


class InsufficientScope(Forbidden):
    """A partner token used outside the scopes it was granted."""

    code = "insufficient_scope"


class NotFound(HubError):
    status, code = 404, "not_found"


class Conflict(HubError):
    status, code = 409, "conflict"


class PayloadTooLarge(HubError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(HubError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(HubError):
    status, code = 422, "unprocessable"


class TooManyRequests(HubError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class RateLimited(TooManyRequests):
    """A partner app over its calls per minute."""

    code = "rate_limit_exceeded"


class ConfigurationError(HubError):
    """A setting is missing or invalid. Raised at first use, never at function indexing."""

    status, code = 500, "configuration_error"


class DependencyError(HubError):
    """A backing service (storage, Cosmos, Key Vault, FHIR, a vendor API) failed. Transient
    unless a subclass says otherwise: the worker retries these; an HTTP caller is told to retry
    after ``retry_after_s``."""

    status, code = 503, "dependency_unavailable"
    retry_after_s = 5


class FhirError(DependencyError):
    code = "fhir_error"

    def __init__(self, message: str, *, http_status: int | None = None, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.outcome = outcome


class FhirNotFound(FhirError):
    code = "fhir_not_found"


class FhirAuthError(FhirError):
    code = "fhir_auth_failed"


class FhirThrottled(FhirError):
    """The server kept answering 429 (too many requests) until the retries ran out."""

    code = "fhir_throttled"


class FhirUnavailable(FhirError):
    """The server could not be reached, dropped the connection, or kept answering 5xx."""

    code = "fhir_unavailable"


class FhirRejected(FhirError):
    """The server refused a resource as invalid (400/409/412/422): retrying will not help."""

    code = "fhir_rejected"
