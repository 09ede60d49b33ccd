"""Consent endpoints (clinic back office): grant, list, read, revoke, in the caller's tenant. Admin
bearer token."""

from __future__ import annotations

import azure.functions as func

from shared.api.callers import admin_in_tenant, tenant_routes
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, query_param, read_json_model
from shared.consent import CONSENT_STATUSES
from shared.devices.types import PROVIDERS

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@tenant_routes(bp, "consents", ["POST"])
@endpoint
def grant_consent(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    principal, tenant = admin_in_tenant(context, req)
    from shared.consent.models import ConsentGrant

    grant = read_json_model(req, ConsentGrant, context.settings.max_body_bytes)
    patient_id = context.patients_of(tenant).resolve(grant.patient_id)
    consents = context.consents.for_tenant(tenant)
    record, created = consents.grant(grant.model_copy(update={"patient_id": patient_id}), principal.subject)
    return json_response(record, status=201 if created else 200)


@tenant_routes(bp, "consents", ["GET"])
@endpoint
def list_consents(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    records = context.consents.for_tenant(tenant).list(
        patient_id=query_param(req, "patientId"),
        source=query_param(req, "source", PROVIDERS),
        status=query_param(req, "status", CONSENT_STATUSES),
    )
    from shared.consent.records import ConsentList

    return json_response(ConsentList(items=records))


@tenant_routes(bp, "consents/{id}", ["GET"])
@endpoint
def get_consent(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    return json_response(context.consents.for_tenant(tenant).get(req.route_params.get("id", "")))


@tenant_routes(bp, "consents/{id}/revoke", ["POST"])
@endpoint
def revoke_consent(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    principal, tenant = admin_in_tenant(context, req)
    record = context.consents.for_tenant(tenant).revoke(req.route_params.get("id", ""), principal.subject)
    return json_response(record)
