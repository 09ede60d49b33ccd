"""Consent endpoints (clinic back office): grant, list, read, revoke. Admin bearer token."""

from __future__ import annotations

import azure.functions as func

from shared.api.callers import ANONYMOUS, admin
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, query_param, read_json_model
from shared.consent import CONSENT_STATUSES
from shared.devices.types import PROVIDERS

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.route(route="consents", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def grant_consent(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    principal = admin(context, req)
    from shared.consent.models import ConsentGrant
    grant = read_json_model(req, ConsentGrant, context.settings.max_body_bytes)
    patient_id = context.patients.resolve(grant.patient_id)
    record, created = context.consents.grant(grant.model_copy(update={"patient_id": patient_id}), principal.subject)
    return json_response(record, status=201 if created else 200)


@bp.route(route="consents", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def list_consents(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    admin(context, req)
    records = context.consents.list(
        patient_id=query_param(req, "patientId"),
        source=query_param(req, "source", PROVIDERS),
        status=query_param(req, "status", CONSENT_STATUSES),
    )
    from shared.consent.records import ConsentList

    return json_response(ConsentList(items=records))


@bp.route(route="consents/{id}", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def get_consent(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    admin(context, req)
    return json_response(context.consents.get(req.route_params.get("id", "")))


@bp.route(route="consents/{id}/revoke", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def revoke_consent(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    principal = admin(context, req)
    record = context.consents.revoke(req.route_params.get("id", ""), principal.subject)
    return json_response(record)
