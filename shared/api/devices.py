"""Device Manager endpoints (clinic back office): register, list, read, assign, unassign.

Every call carries an Entra ID bearer token with the admin app role. Assigning a device
records the clinic's consent for the kinds the device measures, and re-drives readings that
were parked waiting for this assignment."""

from __future__ import annotations

import azure.functions as func

from shared.api.callers import admin_in_tenant, current_session, is_back_office, tenant_routes
from shared.api.context import get_context
from shared.api.http import endpoint, int_param, json_response, query_param, read_json_model
from shared.devices.types import DEVICE_STATUSES, PROVIDERS
from shared.errors import Forbidden

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@tenant_routes(bp, "devices", ["POST"])
@endpoint
def register_device(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    from shared.devices.models import DeviceRegistration

    registration = read_json_model(req, DeviceRegistration, context.settings.max_body_bytes)
    device, created = context.devices.for_tenant(tenant).register(registration)
    return json_response(device, status=201 if created else 200)


@tenant_routes(bp, "devices", ["GET"])
@endpoint
def list_devices(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    items, continuation = context.devices.for_tenant(tenant).list(
        provider=query_param(req, "provider", PROVIDERS),
        patient_id=query_param(req, "patientId"),
        status=query_param(req, "status", DEVICE_STATUSES),
        page_size=int_param(req, "pageSize", 50, 1, 200),
        continuation=query_param(req, "continuationToken"),
    )
    from shared.devices.records import DevicePage

    return json_response(DevicePage(items=items, continuation_token=continuation))


@tenant_routes(bp, "devices/{id}", ["GET"])
@endpoint
def get_device(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    return json_response(context.devices.for_tenant(tenant).get(req.route_params.get("id", "")))


@tenant_routes(bp, "devices/assign", ["POST"])
@endpoint
def assign_device(req: func.HttpRequest) -> func.HttpResponse:
    """Two callers: a clinic back office (admin bearer token) or the patient's app (session
    cookie; the patient is forced to the session's, and consent comes from the app's uploads)."""
    context = get_context()
    if is_back_office(req):
        principal, tenant = admin_in_tenant(context, req)
        from shared.devices.models import AssignRequest

        request = read_json_model(req, AssignRequest, context.settings.max_body_bytes)
        device = context.assignment.by_clinic(request, principal.subject, tenant, context.patients_of(tenant))
        return json_response(device)
    session = current_session(context, req)
    if req.route_params.get("tenantId") not in (None, session.profile.tenant):
        raise Forbidden("this session belongs to another medical centre")
    from shared.devices.models import AssignRequest

    request = read_json_model(req, AssignRequest, context.settings.max_body_bytes)
    profile = session.profile
    device = context.assignment.by_patient(request, profile.patient_id, profile.sub, profile.tenant)
    return json_response(device)


@tenant_routes(bp, "devices/{id}/unassign", ["POST"])
@endpoint
def unassign_device(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    context.devices.for_tenant(tenant).unassign(req.route_params.get("id", ""))
    return func.HttpResponse(status_code=204)


@tenant_routes(bp, "devices/{id}/correct-attribution", ["POST"])
@endpoint
def correct_attribution(req: func.HttpRequest) -> func.HttpResponse:
    """The device was assigned to the wrong patient: its readings of the period become the
    right patient's (new Observations; the wrong patient's are marked entered-in-error)."""
    context = get_context()
    principal, tenant = admin_in_tenant(context, req)
    from shared.devices.models import CorrectionRequest

    request = read_json_model(req, CorrectionRequest, context.settings.max_body_bytes)
    context.devices.for_tenant(tenant).get(req.route_params.get("id", ""))  # 404 before anything else
    patient_id = context.patients_of(tenant).resolve(request.patient_id)
    outcome = context.corrections.for_tenant(tenant, context.own_fhir(tenant)).correct(
        req.route_params.get("id", ""), patient_id, request.valid_from, request.valid_to, principal.subject
    )
    return json_response(outcome)
