"""The HTTP API's contract, as data: every operation with its handler, route, method, callers,
parameters, body and answers. The OpenAPI document is generated from it (``shared.api.openapi``)
and from the models and tables the handlers use themselves (providers, device types, statuses,
formats and media types), and a test holds it to the routes the app registers, the media types
and enums the handlers enforce and the statuses they answer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.consent import CONSENT_STATUSES
from shared.devices.types import DEVICE_STATUSES, PROVIDERS
from shared.sources.healthkit.parser import FORMAT as HEALTHKIT_FORMAT
from shared.sources.medisante.formats import MEDIA_TYPES as MEDISANTE_MEDIA_TYPES

if TYPE_CHECKING:
    from pydantic import BaseModel

JSON = "application/json"
ADMIN = "entraBearer"
SESSION = "sessionCookie"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # query, path or header
    description: str = ""
    enum: tuple[str, ...] | None = None
    required: bool = False


@dataclass(frozen=True)
class Body:
    model: type[BaseModel] | None  # None: described by its media types only
    media_types: tuple[str, ...] = (JSON,)
    description: str = ""


@dataclass(frozen=True)
class Answer:
    status: int
    description: str
    model: type[BaseModel] | None = None
    media_type: str = JSON
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    function: str  # the handler's name, as the Functions host registers it
    method: str
    path: str
    operation_id: str
    summary: str
    security: tuple[str, ...]  # any one of these schemes; () = no credential
    answers: tuple[Answer, ...]
    errors: tuple[int, ...] = ()  # error statuses besides 500 and 503, answered with the error body
    params: tuple[Param, ...] = ()
    body: Body | None = None
    description: str = ""
    json_errors: bool = field(default=True)  # answered through ``endpoint``: 500 and 503 are possible

    def in_named_tenant(self) -> Operation:
        """The same operation at ``/api/tenants/{tenantId}/...``, in the tenant the path names."""
        return dataclasses.replace(
            self,
            function=f"tenant_{self.function}",
            path="/api/tenants/{tenantId}" + self.path.removeprefix("/api"),
            operation_id="tenant" + self.operation_id[0].upper() + self.operation_id[1:],
            summary=f"{self.summary} (in the tenant the path names)",
            params=(Param("tenantId", "path", "the medical centre; one of the caller's", required=True), *self.params),
            errors=tuple(sorted({*self.errors, 403, 404})),
        )

    @property
    def statuses(self) -> set[int]:
        always = {500, 503} if self.json_errors else set()
        return {answer.status for answer in self.answers} | set(self.errors) | always


ERROR_TEXTS = {
    400: "malformed or invalid request (the message names the problem)",
    401: "missing, invalid or expired credentials",
    403: "valid credentials without the required role, or a refused origin or network",
    404: "not found",
    409: "conflicts with the current state",
    413: "body larger than the limit",
    415: "unsupported content type",
    422: "the patient does not exist in the FHIR server, or nothing of the request could be accepted",
    429: "too many attempts; retry after the Retry-After header's seconds",
    500: "unexpected error; the body holds a request id to quote, never a stack trace",
    503: "a dependency is unavailable; retry after the Retry-After header's seconds",
}


def _id(description: str) -> Param:
    return Param("id", "path", description, required=True)


def operations() -> tuple[Operation, ...]:
    base = _operations()
    return (*base, *(op.in_named_tenant() for op in base if op.function in TENANT_SCOPED))


# Operations that also exist at /api/tenants/{tenantId}/... (``callers.tenant_routes``): the admin
# operations, the Withings link of a tenant's patient (connect, disconnect, its notifications) and
# the HealthKit ingestion of a BFF hosted elsewhere.
TENANT_SCOPED = {
    "register_device", "list_devices", "get_device", "assign_device", "unassign_device", "correct_attribution",
    "grant_consent", "list_consents", "get_consent", "revoke_consent",
    "withings_connect", "withings_disconnect", "withings_notify", "healthkit_ingest",
    "list_tenant_apps", "enable_app", "disable_app",
}  # fmt: skip


def _partner_api_operations() -> tuple[Operation, ...]:
    from shared.api.answers import PartnerAccepted
    from shared.partners.receipts import Receipt
    from shared.sources.partner.readings import PartnerBatch

    bearer = (
        "A partner app's access token (Authorization: Bearer) of an approved app the patient's medical centre "
        "enabled; PARTNER_CALLS_PER_MINUTE calls a minute per app (429 rate_limit_exceeded with Retry-After)."
    )
    return (
        Operation(
            "partner_readings", "post", "/api/partner/v1/readings", "partnerReadings",
            "Send a batch of readings (up to 500) for the token's patient", ("partnerToken",),
            (Answer(202, "accepted: each reading accepted or refused with its reason", PartnerAccepted),),
            (400, 401, 403, 413, 415, 422, 429), body=Body(PartnerBatch),
            description=bearer + " A reading of a kind outside the token's scopes makes the call 403 "
            "insufficient_scope. Units are converted to UCUM or the reading is refused; the partner's id makes "
            "a reading idempotent (the same id again updates the same Observation).",
        ),
        Operation(
            "partner_receipt", "get", "/api/partner/v1/receipts/{id}", "partnerReceipt",
            "What became of each reading of a batch: queued, written (FHIR id), parked, refused-by-consent, "
            "rejected (reason)", ("partnerToken",), (Answer(200, "the receipt", Receipt),),
            (401, 403, 404, 429), params=(_id("receipt id"),), description=bearer,
        ),
    )  # fmt: skip


def _oauth_operations() -> tuple[Operation, ...]:
    from shared.api.answers import OAuthErrorAnswer, TokenAnswer, UserInfo

    client_auth = (
        "A confidential app authenticates with its client secret (HTTP Basic, or client_id and client_secret in "
        "the form); a public app sends its client_id. Errors are OAuth's own body (RFC 6749 5.2)."
    )
    form = Body(None, ("application/x-www-form-urlencoded",))
    errors = (
        Answer(400, "an OAuth error: invalid_request, invalid_grant, invalid_scope, unsupported_grant_type",
               OAuthErrorAnswer),
        Answer(401, "invalid_client: unknown, unapproved or suspended app, or a wrong secret", OAuthErrorAnswer),
    )  # fmt: skip
    return (
        Operation(
            "partner_token", "post", "/api/oauth2/token", "partnerToken",
            "Partner apps' token endpoint: authorization_code (with the PKCE code_verifier) or refresh_token", (),
            (Answer(200, "tokens", TokenAnswer), *errors), (413, 415), body=form,
            description=client_auth + " Codes are single use and live 60 s; refresh tokens rotate, and a rotated "
            "one used again revokes every token of its grant.",
        ),
        *(
            Operation(
                "partner_authorize", method, "/api/oauth2/authorize", f"partnerAuthorize{method.title()}",
                "The authorization endpoint: the sign-in and consent pages (HTML), then the redirect to the app",
                (), (
                    Answer(200, "a page: sign in, or the consent page (each metric scope untickable)",
                           media_type="text/html"),
                    Answer(302, "back to the app's redirect URI: code and state, or error=access_denied",
                           headers=("Location",)),
                    Answer(400, "the app's request is not valid (unknown app, redirect URI, PKCE): a page",
                           media_type="text/html"),
                    Answer(401, "a wrong password: the sign-in page again", media_type="text/html"),
                    Answer(403, "a form without this page's CSRF token, or the app not enabled: a page",
                           media_type="text/html"),
                    Answer(413, "a form too large: a page", media_type="text/html"),
                    Answer(429, "too many sign-in attempts: a page", media_type="text/html"),
                    Answer(500, "an error on our side: a page", media_type="text/html"),
                    Answer(503, "a dependency unavailable: a page", media_type="text/html"),
                ),
                params=(() if method == "post" else tuple(
                    Param(name, "query", text, required=True) for name, text in (
                        ("response_type", "code"), ("client_id", "the app"), ("redirect_uri", "registered, exactly"),
                        ("scope", "space separated"), ("state", "the app's"),
                        ("code_challenge", "PKCE: base64url(SHA-256(verifier))"), ("code_challenge_method", "S256"),
                    )
                )),
                body=Body(None, ("application/x-www-form-urlencoded",)) if method == "post" else None,
                description="Strict Content-Security-Policy, no script, a CSRF cookie (SameSite=Strict) checked on "
                "every form; the sign-in is the hub's identity adapter, under the login limits.",
                json_errors=False,
            )
            for method in ("get", "post")
        ),
        Operation(
            "partner_device_authorization", "post", "/api/oauth2/device_authorization", "partnerDeviceAuthorization",
            "RFC 8628: a device without a browser asks for a user code to show (device apps only)", (),
            (Answer(200, "device_code, user_code, verification_uri(_complete), expires_in (600), interval (5)"),
             *errors), (413, 415), body=form, description=client_auth + " The device then polls the token "
            "endpoint (grant_type urn:ietf:params:oauth:grant-type:device_code): authorization_pending, slow_down "
            "(sooner than the interval), access_denied, expired_token, then the tokens once; the device code is "
            "spent with them.",
        ),
        *(
            Operation(
                "partner_device", method, "/api/oauth2/device", f"partnerDevice{method.title()}",
                "The verification page of the device grant (HTML): type the device's code, sign in, allow or deny",
                (), (
                    Answer(200, "a page: the code and sign-in, the consent page, or done", media_type="text/html"),
                    Answer(400, "an unknown or expired code, an expired page: a page", media_type="text/html"),
                    Answer(401, "a wrong password: the page again", media_type="text/html"),
                    Answer(403, "a form without this page's CSRF token, or the code already used: a page",
                           media_type="text/html"),
                    Answer(413, "a form too large: a page", media_type="text/html"),
                    Answer(429, "too many sign-in attempts: a page", media_type="text/html"),
                    Answer(500, "an error on our side: a page", media_type="text/html"),
                    Answer(503, "a dependency unavailable: a page", media_type="text/html"),
                ),
                params=((Param("user_code", "query", "the code the device shows (prefills the page)"),)
                        if method == "get" else ()),
                body=Body(None, ("application/x-www-form-urlencoded",)) if method == "post" else None,
                json_errors=False,
            )
            for method in ("get", "post")
        ),
        Operation(
            "partner_metadata", "get", "/.well-known/oauth-authorization-server", "partnerMetadata",
            "RFC 8414 metadata of the partner authorization server", (),
            (Answer(200, "the metadata: endpoints, scopes, grants, PKCE S256"),),
        ),
        Operation(
            "partner_userinfo", "get", "/api/oauth2/userinfo", "partnerUserInfo",
            "Who consented: sub, name, tenants [{id, name}], patient (the profile scope)", ("partnerToken",),
            (Answer(200, "the user", UserInfo),), (401, 403, 429),
        ),
        Operation(
            "partner_revoke", "post", "/api/oauth2/revoke", "partnerRevoke",
            "Revoke a token (RFC 7009): the app's whole grant ends", (),
            (Answer(200, "revoked (also for a token that was not valid)"), *errors), (413, 415), body=form,
            description=client_auth,
        ),
    )  # fmt: skip


def _partner_app_operations() -> tuple[Operation, ...]:
    from shared.partners.records import (
        APP_STATUSES,
        AppList,
        AppRegistration,
        AppView,
        RegisteredApp,
        TenantAppList,
        TenantAppView,
    )

    operator = "The admin bearer token must also carry the platform operator's app role (PLATFORM_ROLE)."
    client_id = Param("clientId", "path", "the app's client_id", required=True)
    return (
        Operation(
            "register_app", "post", "/api/partner/apps", "registerApp",
            "Register a partner app (pending until a platform operator approves it)", (),
            (Answer(201, "registered; a confidential app's secret is in the answer, once", RegisteredApp),),
            (400, 413, 415, 429), body=Body(AppRegistration),
            description="No credential: a new app can do nothing until approved. Limited per client address "
            "(429 with Retry-After). web apps are confidential (a client secret); native apps are public and must "
            "use PKCE (S256); device apps use the device authorization grant. Redirect URIs are matched exactly.",
        ),
        Operation(
            "list_apps", "get", "/api/platform/apps", "listApps", "Every registered app", (ADMIN,),
            (Answer(200, "the apps", AppList),), (400, 401, 403),
            params=(Param("status", "query", "status", APP_STATUSES),), description=operator,
        ),
        Operation(
            "approve_app", "post", "/api/platform/apps/{clientId}/approve", "approveApp", "Approve an app", (ADMIN,),
            (Answer(200, "approved", AppView),), (401, 403, 404), params=(client_id,), description=operator,
        ),
        Operation(
            "suspend_app", "post", "/api/platform/apps/{clientId}/suspend", "suspendApp",
            "Suspend an app: it can do nothing until approved again", (ADMIN,),
            (Answer(200, "suspended", AppView),), (401, 403, 404), params=(client_id,), description=operator,
        ),
        Operation(
            "list_tenant_apps", "get", "/api/apps", "listTenantApps",
            "The approved apps, each with whether the caller's tenant enabled it", (ADMIN,),
            (Answer(200, "the apps", TenantAppList),), (401, 403),
        ),
        Operation(
            "enable_app", "post", "/api/apps/{clientId}/enable", "enableApp",
            "Let the tenant's patients and staff use an approved app", (ADMIN,),
            (Answer(200, "enabled", TenantAppView),), (401, 403, 404, 409), params=(client_id,),
        ),
        Operation(
            "disable_app", "post", "/api/apps/{clientId}/disable", "disableApp",
            "Stop the tenant's use of an app (harmless when it was not enabled)", (ADMIN,),
            (Answer(200, "disabled", TenantAppView),), (401, 403, 404), params=(client_id,),
        ),
    )  # fmt: skip


def _platform_operations() -> tuple[Operation, ...]:
    from shared.tenants.memberships import MembershipList, MembershipRecord
    from shared.tenants.records import ActivatedTenant, NewMember, NewTenant, TenantList, TenantRecord

    operator = (ADMIN,)
    described = "The admin bearer token must also carry the platform operator's app role (PLATFORM_ROLE): 403 else."
    tenant_id = _id("tenant id")
    return (
        Operation(
            "list_tenants", "get", "/api/platform/tenants", "listTenants", "The medical centres this hub serves",
            operator, (Answer(200, "the tenants", TenantList),), (401, 403), description=described,
        ),
        Operation(
            "create_tenant", "post", "/api/platform/tenants", "createTenant", "Serve a new medical centre", operator,
            (Answer(201, "created", TenantRecord),), (400, 401, 403, 409, 413, 415), body=Body(NewTenant),
            description=described,
        ),
        Operation(
            "get_tenant", "get", "/api/platform/tenants/{id}", "getTenant", "One tenant", operator,
            (Answer(200, "the tenant", TenantRecord),), (401, 403, 404), params=(tenant_id,), description=described,
        ),
        Operation(
            "suspend_tenant", "post", "/api/platform/tenants/{id}/suspend", "suspendTenant",
            "Suspend a tenant: its credentials are refused and its queued work is held", operator,
            (Answer(200, "suspended", TenantRecord),), (401, 403, 404), params=(tenant_id,), description=described,
        ),
        Operation(
            "activate_tenant", "post", "/api/platform/tenants/{id}/activate", "activateTenant",
            "Reactivate a tenant: its held records go through the pipeline again", operator,
            (Answer(200, "active", ActivatedTenant),), (401, 403, 404), params=(tenant_id,), description=described,
        ),
        Operation(
            "list_members", "get", "/api/platform/tenants/{id}/members", "listTenantMembers",
            "Who administers the tenant (principals and groups)", operator,
            (Answer(200, "the memberships", MembershipList),), (401, 403, 404), params=(tenant_id,),
            description=described,
        ),
        Operation(
            "add_member", "post", "/api/platform/tenants/{id}/members", "addTenantMember",
            "Let a principal (oid:...) or an Entra group (group:...) administer the tenant", operator,
            (Answer(201, "a member", MembershipRecord),), (400, 401, 403, 404, 413, 415), params=(tenant_id,),
            body=Body(NewMember), description=described,
        ),
        Operation(
            "remove_member", "delete", "/api/platform/tenants/{id}/members/{member}", "removeTenantMember",
            "End a membership (harmless when there is none)", operator, (Answer(204, "removed"),),
            (400, 401, 403, 404),
            params=(tenant_id, Param("member", "path", "oid:<object id> or group:<group object id>", required=True)),
            description=described,
        ),
    )  # fmt: skip


def _operations() -> tuple[Operation, ...]:
    from shared.api.answers import (
        Accepted,
        Health,
        HealthKitUpload,
        LoginAnswer,
        Profile,
        UploadAnswer,
        WithingsConnect,
    )
    from shared.bff.requests import LoginRequest, ResetConfirmation, ResetRequest
    from shared.consent.models import ConsentGrant
    from shared.consent.records import ConsentList, ConsentRecord
    from shared.devices.models import AssignRequest, CorrectionRequest, DeviceRegistration
    from shared.devices.records import DevicePage, DeviceRecord
    from shared.workflows.corrections import CorrectionOutcome

    admin = (ADMIN,)
    upload_format = Param("format", "path", "the upload's format", (HEALTHKIT_FORMAT,), required=True)
    patient = Param("patient", "query", "Patient id or system|value identifier (admin callers)")
    notify_secret = Param("secret", "path", "the secret path segment of the registered URL", required=True)
    return (
        Operation(
            "health", "get", "/api/health", "health", "Reachability of Storage, Cosmos DB, Key Vault and FHIR",
            ("functionKey",), (Answer(200, "healthy", Health), Answer(503, "a dependency is down", Health)),
        ),
        Operation(
            "medisante_webhook", "post", "/api/health-data/medisante/{format}", "medisanteWebhook",
            "Medisanté portal webhook: accept one device payload", ("medisanteApiKey",),
            (Answer(202, "accepted", Accepted),), (400, 401, 403, 413, 415),
            params=(Param("format", "path", "the payload's format", tuple(MEDISANTE_MEDIA_TYPES), required=True),),
            body=Body(
                None,
                tuple(dict.fromkeys(m for media in MEDISANTE_MEDIA_TYPES.values() for m in media)),
                "; ".join(f"{name}: {', '.join(media)}" for name, media in MEDISANTE_MEDIA_TYPES.items()),
            ),
        ),
        Operation(
            "register_device", "post", "/api/devices", "registerDevice",
            "Register a device (idempotent on provider + providerDeviceId)", admin,
            (Answer(201, "registered", DeviceRecord), Answer(200, "already registered", DeviceRecord)),
            (400, 401, 403, 413, 415), body=Body(DeviceRegistration),
        ),
        Operation(
            "list_devices", "get", "/api/devices", "listDevices", "List devices, filtered and paged", admin,
            (Answer(200, "a page of devices", DevicePage),), (400, 401, 403),
            params=(
                Param("provider", "query", "provider", PROVIDERS),
                Param("patientId", "query", "patient of the open assignment"),
                Param("status", "query", "device status", DEVICE_STATUSES),
                Param("pageSize", "query", "items per page, 1-200 (default 50)"),
                Param("continuationToken", "query", "from the previous page"),
            ),
        ),
        Operation(
            "get_device", "get", "/api/devices/{id}", "getDevice", "One device with its assignment history", admin,
            (Answer(200, "the device", DeviceRecord),), (401, 403, 404), params=(_id("device id"),),
        ),
        Operation(
            "assign_device", "post", "/api/devices/assign", "assignDevice",
            "Register the device if unknown and assign it to a patient from `from` (default now)",
            (ADMIN, SESSION), (Answer(200, "assigned", DeviceRecord),), (400, 401, 403, 409, 413, 415, 422),
            body=Body(AssignRequest),
            description="With an admin token: also records the clinic's consent for the kinds the device type "
            "measures, and re-drives parked readings the assignment covers. With the app's session cookie: the "
            "patient is the session's (assignedPatientId and from are ignored), only a patient's own (HealthKit) "
            "devices, and no clinic consent is recorded.",
        ),
        Operation(
            "unassign_device", "post", "/api/devices/{id}/unassign", "unassignDevice",
            "Close the open assignment now (harmless when none is open)", admin,
            (Answer(204, "unassigned"),), (401, 403, 404, 409), params=(_id("device id"),),
        ),
        Operation(
            "correct_attribution", "post", "/api/devices/{id}/correct-attribution", "correctAttribution",
            "The device's readings from `from` (to `to`, or from then on) belong to `patientId`", admin,
            (Answer(200, "corrected", CorrectionOutcome),), (400, 401, 403, 404, 409, 413, 415, 422),
            params=(_id("device id"),), body=Body(CorrectionRequest),
            description="Rewrites the assignment history for the period, records the clinic's consent for the "
            "device type's kinds, writes each Observation of the period again for the right patient (a new "
            "resource: ids derive from the patient) and marks the wrong patient's entered-in-error. Nothing "
            "changes subject.",
        ),
        Operation(
            "grant_consent", "post", "/api/consents", "grantConsent",
            "Record a patient's consent for a source and its scopes (replaces the scopes)", admin,
            (Answer(201, "recorded", ConsentRecord), Answer(200, "updated", ConsentRecord)),
            (400, 401, 403, 413, 415, 422), body=Body(ConsentGrant),
        ),
        Operation(
            "list_consents", "get", "/api/consents", "listConsents", "List consent records", admin,
            (Answer(200, "consent records", ConsentList),), (400, 401, 403),
            params=(
                Param("patientId", "query", "patient"),
                Param("source", "query", "source", PROVIDERS),
                Param("status", "query", "status", CONSENT_STATUSES),
            ),
        ),
        Operation(
            "get_consent", "get", "/api/consents/{id}", "getConsent", "One consent record", admin,
            (Answer(200, "the consent record", ConsentRecord),), (401, 403, 404),
            params=(_id("consent id: <source>.<patientId>"),),
        ),
        Operation(
            "revoke_consent", "post", "/api/consents/{id}/revoke", "revokeConsent", "Revoke a consent", admin,
            (Answer(200, "revoked", ConsentRecord),), (401, 403, 404),
            params=(_id("consent id: <source>.<patientId>"),),
        ),
        Operation(
            "login", "post", "/api/oauth/token", "login",
            "Log in; the session comes back as an HttpOnly cookie, never as a token in the body", (),
            (Answer(200, "logged in; Set-Cookie: sid=...; HttpOnly; Secure; SameSite=Strict; Path=/", LoginAnswer,
                    headers=("Set-Cookie",)),),
            (400, 401, 403, 413, 415, 422, 429), body=Body(LoginRequest),
        ),
        Operation(
            "profile", "get", "/api/profile", "profile", "The logged-in user's profile", (SESSION,),
            (Answer(200, "OIDC UserInfo claims and the patient", Profile),), (401, 403),
        ),
        Operation(
            "reset_password", "post", "/api/reset-password", "resetPassword",
            "Start a password reset; always 204, whether or not the email is known", (),
            (Answer(204, "done (or nothing to do)"),), (400, 403, 413, 415, 429), body=Body(ResetRequest),
        ),
        Operation(
            "confirm_password_reset", "post", "/api/reset-password/confirm", "confirmPasswordReset",
            "Set a new password with the single-use token mailed by the built-in directory", (),
            (Answer(204, "password changed"),), (400, 403, 404, 413, 415), body=Body(ResetConfirmation),
        ),
        Operation(
            "logout", "post", "/api/logout", "logout", "End the session; the cookie is cleared", (SESSION,),
            (Answer(204, "session ended"),), (403,),
        ),
        Operation(
            "upload_health_data", "post", "/api/health-data/{format}", "uploadHealthData",
            "Upload HealthKit samples and deletions (partial acceptance)", (SESSION,),
            (Answer(202, "accepted (rejected samples listed with their reasons)", UploadAnswer),),
            (400, 401, 403, 413, 415, 422), params=(upload_format,), body=Body(HealthKitUpload),
        ),
        Operation(
            "healthkit_ingest", "post", "/api/health-data/healthkit/{format}", "ingestHealthKit",
            "Device Manager HealthKit ingestion for a BFF hosted elsewhere (patient in x-patient-id)", admin,
            (Answer(202, "accepted (rejected samples listed with their reasons)", UploadAnswer),),
            (400, 401, 403, 413, 415, 422),
            params=(upload_format, Param("x-patient-id", "header", "the patient", required=True)),
            body=Body(HealthKitUpload),
            description="The bearer token must carry the ingest app role (INGEST_ROLE).",
        ),
        Operation(
            "withings_connect", "get", "/api/withings/connect", "withingsConnect",
            "Redirect to Withings' consent page for a patient (the session's patient with the app's cookie)",
            (ADMIN, SESSION), (Answer(302, "to Withings; the URL is also in the body", WithingsConnect,
                                      headers=("Location",)),),
            (400, 401, 403, 422), params=(patient,),
        ),
        Operation(
            "withings_callback", "get", "/api/withings/callback", "withingsCallback",
            "Withings' OAuth redirect: exchanges the code, stores the tokens, records the consent, subscribes to "
            "notifications and starts the backfill; answers an HTML page", (),
            (
                Answer(200, "connected (HTML)", media_type="text/html"),
                Answer(400, "denied, forged, expired or replayed (HTML)", media_type="text/html"),
                Answer(500, "failed on our side (HTML)", media_type="text/html"),
                Answer(502, "Withings failed (HTML)", media_type="text/html"),
            ),
            params=(Param("code", "query", "authorization code"), Param("state", "query", "signed, single-use state")),
            json_errors=False,
        ),
        Operation(
            "withings_disconnect", "post", "/api/withings/disconnect", "withingsDisconnect",
            "Unsubscribe, delete the tokens, revoke the consent; data already written stays", (ADMIN, SESSION),
            (Answer(204, "disconnected"),), (400, 401, 403, 404, 422), params=(patient,),
        ),
        Operation(
            "withings_notify", "head", "/api/withings/notify/{secret}", "withingsNotifyProbe",
            "Withings' probe when subscribing", ("notifySecret",), (Answer(200, "reachable"),), (403, 404),
            params=(notify_secret,),
        ),
        Operation(
            "withings_notify", "post", "/api/withings/notify/{secret}", "withingsNotify",
            "A Withings notification (form: userid, appli, startdate, enddate[, action]): one sync job",
            ("notifySecret",), (Answer(200, "queued"),), (400, 403, 404, 413),
            params=(notify_secret,), body=Body(None, ("application/x-www-form-urlencoded",)),
        ),
        *_platform_operations(),
        *_partner_app_operations(),
        *_oauth_operations(),
        *_partner_api_operations(),
        Operation(
            "openapi", "get", "/api/openapi.json", "openapi", "This document", ("functionKey",),
            (Answer(200, "the OpenAPI 3.1 document"),),
        ),
    )
