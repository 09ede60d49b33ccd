"""``GET /api/openapi.json``: the OpenAPI 3.1 description of the HTTP API. Request schemas come
from the same pydantic models the handlers validate with; a test checks that every route the
app registers is described and that real answers validate against the response schemas."""

from __future__ import annotations

import functools
from typing import Any

import azure.functions as func

from shared.api.http import endpoint, json_response
from shared.devices.types import DEVICE_TYPE_KINDS, PROVIDERS
from shared.measurement import Kind

bp = func.Blueprint()  # type: ignore[no-untyped-call]

ADMIN: list[dict[str, list[str]]] = [{"entraBearer": []}]
SESSION: list[dict[str, list[str]]] = [{"sessionCookie": []}]
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {_JSON: {"schema": _ref(schema)}}
    return answer


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "malformed or invalid request (the message names the problem)",
        401: "missing, invalid or expired credentials",
        403: "valid credentials without the required role",
        404: "not found",
        409: "conflicts with the current state",
        413: "body larger than the limit",
        415: "unsupported content type",
        422: "the patient does not exist in the FHIR server",
        429: "too many attempts; retry after the Retry-After header's seconds",
        503: "a dependency is unavailable; retry later",
    }
    return {str(status): _answer(texts[status], "Error") for status in statuses}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": _ref(schema)}}}


def _path_id(description: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _query(name: str, description: str, enum: tuple[str, ...] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = list(enum)
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _model_schema(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    return schema


_NULLABLE_TEXT = {"type": ["string", "null"]}
_INSTANT = {"type": "string", "format": "date-time"}
_DEVICE = {
    "type": "object",
    "required": ["id", "provider", "providerDeviceId", "type", "status", "assignments", "createdAt", "updatedAt"],
    "properties": {
        "id": {"type": "string"},
        "provider": {"enum": list(PROVIDERS)},
        "providerDeviceId": {"type": "string"},
        "type": {"enum": list(DEVICE_TYPE_KINDS)},
        "name": _NULLABLE_TEXT,
        "model": _NULLABLE_TEXT,
        "manufacturer": _NULLABLE_TEXT,
        "status": {"enum": ["active", "retired"]},
        "patientId": {**_NULLABLE_TEXT, "description": "patient of the open assignment"},
        "assignments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["patientId", "from", "to"],
                "properties": {
                    "patientId": {"type": "string"},
                    "from": _INSTANT,
                    "to": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        },
        "createdAt": _INSTANT,
        "updatedAt": _INSTANT,
    },
}
_CONSENT = {
    "type": "object",
    "required": ["id", "patientId", "source", "scopes", "status", "grantedAt", "recordedBy"],
    "properties": {
        "id": {"type": "string", "description": "<source>.<patientId>"},
        "patientId": {"type": "string"},
        "source": {"enum": list(PROVIDERS)},
        "scopes": {"type": "array", "items": {"enum": [kind.value for kind in Kind]}},  # SCOPES
        "status": {"enum": ["active", "revoked", "needs-reconsent"]},
        "attestation": {"enum": ["patient", "clinic"]},
        "grantedAt": _INSTANT,
        "revokedAt": {"type": ["string", "null"], "format": "date-time"},
        "recordedBy": {"type": "string"},
        "accountId": {"type": ["string", "null"], "description": "the source's user id (Withings userid)"},
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}


@functools.cache
def document() -> dict[str, Any]:
    from shared.bff.requests import LoginRequest, ResetConfirmation, ResetRequest
    from shared.consent.models import ConsentGrant
    from shared.devices.models import AssignRequest, CorrectionRequest, DeviceRegistration

    schemas: dict[str, Any] = {
        "DeviceRegistration": _model_schema(DeviceRegistration),
        "AssignRequest": _model_schema(AssignRequest),
        "CorrectionRequest": _model_schema(CorrectionRequest),
        "Correction": {
            "type": "object",
            "required": ["device", "moved", "reDriven"],
            "properties": {
                "device": _ref("Device"),
                "moved": {"type": "integer", "description": "Observations written for the right patient"},
                "reDriven": {"type": "integer", "description": "parked records re-driven"},
            },
        },
        "ConsentGrant": _model_schema(ConsentGrant),
        "Device": _DEVICE,
        "DevicePage": {
            "type": "object",
            "required": ["items", "continuationToken"],
            "properties": {"items": {"type": "array", "items": _ref("Device")}, "continuationToken": _NULLABLE_TEXT},
        },
        "Consent": _CONSENT,
        "ConsentList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref("Consent")}},
        },
        "Accepted": {
            "type": "object",
            "required": ["status", "receiptId"],
            "properties": {"status": {"const": "accepted"}, "receiptId": {"type": "string"}},
        },
        "Health": {"type": "object", "required": ["status", "dependencies"]},
        "LoginRequest": _model_schema(LoginRequest),
        "ResetRequest": _model_schema(ResetRequest),
        "ResetConfirmation": _model_schema(ResetConfirmation),
        "LoginAnswer": {
            "type": "object",
            "required": ["status", "expiresAt"],
            "properties": {"status": {"const": "authenticated"}, "expiresAt": _INSTANT},
        },
        "Profile": {
            "type": "object",
            "required": ["sub", "patient_id"],
            "properties": {
                "sub": {"type": "string"},
                "patient_id": {"type": "string"},
                "name": {"type": "string"},
                "email": {"type": "string"},
                "preferred_username": {"type": "string"},
            },
        },
        "HealthKitUpload": {
            "type": "object",
            "properties": {
                "permissions": {"type": "array", "items": {"type": "string"}, "description": "granted HealthKit types"},
                "samples": {"type": "array", "items": {"type": "object", "required": ["uuid", "type"]}},
                "deleted": {"type": "array", "items": {"type": "object", "required": ["uuid"]}},
            },
        },
        "UploadAnswer": {
            "type": "object",
            "required": ["status", "receiptId", "accepted", "deleted", "rejected"],
            "properties": {
                "status": {"const": "accepted"},
                "receiptId": {"type": "string"},
                "accepted": {"type": "integer"},
                "deleted": {"type": "integer"},
                "rejected": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["uuid", "reason"],
                        "properties": {"uuid": {"type": "string"}, "reason": {"type": "string"}},
                    },
                },
            },
        },
        "Error": _ERROR,
        "WithingsConnect": {
            "type": "object",
            "required": ["authorizeUrl"],
            "properties": {"authorizeUrl": {"type": "string"}},
        },
    }
    admin_errors = (401, 403)
    paths: dict[str, Any] = {
        "/api/devices": {
            "post": {
                "operationId": "registerDevice",
                "summary": "Register a device (idempotent on provider + providerDeviceId)",
                "security": ADMIN,
                "requestBody": _body("DeviceRegistration"),
                "responses": {
                    "201": _answer("registered", "Device"),
                    "200": _answer("already registered", "Device"),
                    **_errors(400, *admin_errors, 413, 415),
                },
            },
            "get": {
                "operationId": "listDevices",
                "summary": "List devices, filtered and paged",
                "security": ADMIN,
                "parameters": [
                    _query("provider", "provider", PROVIDERS),
                    _query("patientId", "patient of the open assignment"),
                    _query("status", "device status", ("active", "retired")),
                    _query("pageSize", "items per page, 1-200 (default 50)"),
                    _query("continuationToken", "from the previous page"),
                ],
                "responses": {"200": _answer("a page of devices", "DevicePage"), **_errors(400, *admin_errors)},
            },
        },
        "/api/devices/{id}": {
            "get": {
                "operationId": "getDevice",
                "security": ADMIN,
                "parameters": [_path_id("device id")],
                "responses": {"200": _answer("the device", "Device"), **_errors(*admin_errors, 404)},
            }
        },
        "/api/devices/assign": {
            "post": {
                "operationId": "assignDevice",
                "summary": "Register the device if unknown and assign it to a patient from `from` (default now)",
                "description": "With an admin token: also records the clinic's consent for the kinds the device type "
                "measures, and re-drives parked readings the assignment covers. With the app's session cookie: the "
                "patient is the session's (assignedPatientId and from are ignored), no clinic consent is recorded.",
                "security": [*ADMIN, *SESSION],
                "requestBody": _body("AssignRequest"),
                "responses": {
                    "200": _answer("assigned", "Device"),
                    **_errors(400, *admin_errors, 409, 413, 415, 422),
                },
            }
        },
        "/api/devices/{id}/correct-attribution": {
            "post": {
                "operationId": "correctAttribution",
                "summary": "The device's readings from `from` (to `to`, or from then on) belong to `patientId`",
                "description": "Rewrites the assignment history for the period, records the clinic's consent for the "
                "device type's kinds, writes each Observation of the period again for the right patient (a new "
                "resource: ids derive from the patient) and marks the wrong patient's entered-in-error. Nothing "
                "changes subject.",
                "security": ADMIN,
                "parameters": [_path_id("device id")],
                "requestBody": _body("CorrectionRequest"),
                "responses": {
                    "200": _answer("corrected", "Correction"),
                    **_errors(400, *admin_errors, 404, 409, 413, 415, 422),
                },
            }
        },
        "/api/devices/{id}/unassign": {
            "post": {
                "operationId": "unassignDevice",
                "summary": "Close the open assignment now (harmless when none is open)",
                "security": ADMIN,
                "parameters": [_path_id("device id")],
                "responses": {"204": _answer("unassigned"), **_errors(*admin_errors, 404, 409)},
            }
        },
        "/api/consents": {
            "post": {
                "operationId": "grantConsent",
                "summary": "Record a patient's consent for a source and its scopes (replaces the scopes)",
                "security": ADMIN,
                "requestBody": _body("ConsentGrant"),
                "responses": {
                    "201": _answer("recorded", "Consent"),
                    "200": _answer("updated", "Consent"),
                    **_errors(400, *admin_errors, 413, 415, 422),
                },
            },
            "get": {
                "operationId": "listConsents",
                "security": ADMIN,
                "parameters": [
                    _query("patientId", "patient"),
                    _query("source", "source", PROVIDERS),
                    _query("status", "status", ("active", "revoked", "needs-reconsent")),
                ],
                "responses": {"200": _answer("consent records", "ConsentList"), **_errors(400, *admin_errors)},
            },
        },
        "/api/consents/{id}": {
            "get": {
                "operationId": "getConsent",
                "security": ADMIN,
                "parameters": [_path_id("consent id: <source>.<patientId>")],
                "responses": {"200": _answer("the consent record", "Consent"), **_errors(*admin_errors, 404)},
            }
        },
        "/api/consents/{id}/revoke": {
            "post": {
                "operationId": "revokeConsent",
                "security": ADMIN,
                "parameters": [_path_id("consent id: <source>.<patientId>")],
                "responses": {"200": _answer("revoked", "Consent"), **_errors(*admin_errors, 404)},
            }
        },
        "/api/health-data/medisante/{format}": {
            "post": {
                "operationId": "medisanteWebhook",
                "summary": "Medisanté portal webhook: accept one device payload",
                "security": [{"medisanteApiKey": []}],
                "parameters": [
                    {
                        "name": "format",
                        "in": "path",
                        "required": True,
                        "schema": {"enum": ["medisante-json", "medisante-xml", "fhir-json", "fhir-xml"]},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        media: {"schema": {}}
                        for media in ("application/json", "application/xml", "application/fhir+json")
                    },
                },
                "responses": {"202": _answer("accepted", "Accepted"), **_errors(400, 401, 413, 415)},
            }
        },
        "/api/oauth/token": {
            "post": {
                "operationId": "login",
                "summary": "Log in; the session comes back as an HttpOnly cookie, never as a token in the body",
                "security": [],
                "requestBody": _body("LoginRequest"),
                "responses": {
                    "200": {
                        "description": "logged in; Set-Cookie: sid=...; HttpOnly; Secure; SameSite=Strict; Path=/",
                        "headers": {"Set-Cookie": {"schema": {"type": "string"}}},
                        "content": {_JSON: {"schema": _ref("LoginAnswer")}},
                    },
                    **_errors(400, 401, 403, 413, 415, 429),
                },
            }
        },
        "/api/profile": {
            "get": {
                "operationId": "profile",
                "summary": "The logged-in user's profile (OIDC UserInfo claims + patient_id)",
                "security": SESSION,
                "responses": {"200": _answer("the profile", "Profile"), **_errors(401, 403)},
            }
        },
        "/api/reset-password": {
            "post": {
                "operationId": "resetPassword",
                "summary": "Start a password reset; always 204, whether or not the email is known",
                "security": [],
                "requestBody": _body("ResetRequest"),
                "responses": {"204": _answer("done (or nothing to do)"), **_errors(400, 403, 413, 415, 429)},
            }
        },
        "/api/reset-password/confirm": {
            "post": {
                "operationId": "confirmPasswordReset",
                "summary": "Set a new password with the single-use token mailed by the built-in directory",
                "security": [],
                "requestBody": _body("ResetConfirmation"),
                "responses": {"204": _answer("password changed"), **_errors(400, 403, 404, 413, 415)},
            }
        },
        "/api/logout": {
            "post": {
                "operationId": "logout",
                "security": SESSION,
                "responses": {"204": _answer("session ended; the cookie is cleared"), **_errors(403)},
            }
        },
        "/api/health-data/{format}": {
            "post": {
                "operationId": "uploadHealthData",
                "summary": "Upload HealthKit samples and deletions (partial acceptance)",
                "security": SESSION,
                "parameters": [
                    {"name": "format", "in": "path", "required": True, "schema": {"enum": ["healthkit-json"]}}
                ],
                "requestBody": _body("HealthKitUpload"),
                "responses": {
                    "202": _answer("accepted (rejected samples listed with their reasons)", "UploadAnswer"),
                    "422": _answer("no sample accepted", "Error"),
                    **_errors(400, 401, 403, 413, 415),
                },
            }
        },
        "/api/health-data/healthkit/{format}": {
            "post": {
                "operationId": "ingestHealthKit",
                "summary": "Device Manager HealthKit ingestion for a BFF hosted elsewhere (patient in x-patient-id)",
                "security": [{"entraBearer": []}],
                "parameters": [
                    {"name": "format", "in": "path", "required": True, "schema": {"enum": ["healthkit-json"]}},
                    {"name": "x-patient-id", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": _body("HealthKitUpload"),
                "responses": {
                    "202": _answer("accepted (rejected samples listed with their reasons)", "UploadAnswer"),
                    "422": _answer("unknown patient, or no sample accepted", "Error"),
                    **_errors(400, 401, 403, 413, 415),
                },
            }
        },
        "/api/withings/connect": {
            "get": {
                "operationId": "withingsConnect",
                "summary": "Redirect to Withings' consent page for a patient (?patient=… with an admin token; the "
                "session's patient with the app's cookie)",
                "security": [*ADMIN, *SESSION],
                "parameters": [_query("patient", "Patient id or system|value identifier (admin callers)")],
                "responses": {
                    "302": {
                        "description": "to Withings; the URL is also in the body",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {_JSON: {"schema": _ref("WithingsConnect")}},
                    },
                    **_errors(400, 401, 403, 422),
                },
            }
        },
        "/api/withings/callback": {
            "get": {
                "operationId": "withingsCallback",
                "summary": "Withings' OAuth redirect: exchanges the code, stores the tokens, records the consent, "
                "subscribes to notifications and starts the backfill; answers an HTML page",
                "security": [],
                "parameters": [_query("code", "authorization code"), _query("state", "signed, single-use state")],
                "responses": {
                    "200": {"description": "connected (HTML)", "content": {"text/html": {}}},
                    "400": {"description": "denied, forged, expired or replayed (HTML)", "content": {"text/html": {}}},
                    "502": {"description": "Withings failed (HTML)", "content": {"text/html": {}}},
                },
            }
        },
        "/api/withings/disconnect": {
            "post": {
                "operationId": "withingsDisconnect",
                "summary": "Unsubscribe, delete the tokens, revoke the consent; data already written stays",
                "security": [*ADMIN, *SESSION],
                "parameters": [_query("patient", "Patient id or system|value identifier (admin callers)")],
                "responses": {"204": _answer("disconnected"), **_errors(400, 401, 403, 404, 422)},
            }
        },
        "/api/withings/notify/{secret}": {
            "head": {
                "operationId": "withingsNotifyProbe",
                "summary": "Withings' probe when subscribing",
                "security": [{"notifySecret": []}],
                "parameters": [{"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _answer("reachable"), "404": _answer("wrong secret")},
            },
            "post": {
                "operationId": "withingsNotify",
                "summary": "A Withings notification (form: userid, appli, startdate, enddate[, action]): one sync job",
                "security": [{"notifySecret": []}],
                "parameters": [{"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {}}},
                "responses": {"200": _answer("queued"), **_errors(400, 403, 404, 413, 503)},
            },
        },
        "/api/health": {
            "get": {
                "operationId": "health",
                "security": [{"functionKey": []}],
                "responses": {"200": _answer("healthy", "Health"), "503": _answer("a dependency is down", "Health")},
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "security": [{"functionKey": []}],
                "responses": {"200": {"description": "this document"}},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IoMT ingestion hub",
            "version": "1.0.0",
            "description": "Device readings in, FHIR R4 out. Admin endpoints take an Entra ID access token "
            "for the hub's app (audience ADMIN_TOKEN_AUDIENCE) carrying the ADMIN_ROLE app role.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "entraBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "medisanteApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
                "notifySecret": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "secret",
                    "description": "the secret is a path segment of the registered notification URL",
                },
            },
        },
    }


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(document())
