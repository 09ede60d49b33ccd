"""Device Manager endpoints (clinic back office): register, list, read, assign, unassign.

Every call carries an Entra ID bearer token with the admin app role. Assigning a device
records the clinic's consent for the kinds the device measures, and re-drives readings that
were parked waiting for this assignment."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.bff import current_session, session_id
from shared.api.context import get_context
from shared.api.http import endpoint, int_param, json_response, query_param, read_json_model
from shared.auth import Principal, admin_validator
from shared.devices.types import DEVICE_TYPE_KINDS, PATIENT_ASSIGNABLE_PROVIDERS, PROVIDERS, public_view, registry_id
from shared.errors import Forbidden

if TYPE_CHECKING:
    from shared.composition import AppContext
    from shared.devices.models import AssignRequest

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

ANONYMOUS = func.AuthLevel.ANONYMOUS  # authenticated in code: Entra ID bearer token + app role


def admin(context: AppContext, req: func.HttpRequest) -> Principal:
    return admin_validator(context.settings).validate(req.headers.get("authorization"))


@bp.route(route="devices", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def register_device(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    admin(context, req)
    from shared.devices.models import DeviceRegistration
    registration = read_json_model(req, DeviceRegistration, context.settings.max_body_bytes)
    device, created = context.devices.register(registration)
    return json_response(public_view(device), status=201 if created else 200)


@bp.route(route="devices", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def list_devices(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    admin(context, req)
    items, continuation = context.devices.list(
        provider=query_param(req, "provider", PROVIDERS),
        patient_id=query_param(req, "patientId"),
        status=query_param(req, "status", ("active", "retired")),
        page_size=int_param(req, "pageSize", 50, 1, 200),
        continuation=query_param(req, "continuationToken"),
    )
    return json_response({"items": [public_view(item) for item in items], "continuationToken": continuation})


@bp.route(route="devices/{id}", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def get_device(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    admin(context, req)
    return json_response(public_view(context.devices.get(req.route_params.get("id", ""))))


@bp.route(route="devices/assign", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def assign_device(req: func.HttpRequest) -> func.HttpResponse:
    """Two callers: a clinic back office (admin bearer token) or the patient's app (session
    cookie; the patient is forced to the session's, and consent comes from the app's uploads)."""
    context = get_context()
    if req.headers.get("authorization") or not session_id(req):
        principal = admin(context, req)
        from shared.devices.models import AssignRequest
        request = read_json_model(req, AssignRequest, context.settings.max_body_bytes)
        return json_response(public_view(assign(context, request, principal.subject)))
    session = current_session(context, req)
    from shared.devices.models import AssignRequest
    request = read_json_model(req, AssignRequest, context.settings.max_body_bytes)
    if request.device_provider not in PATIENT_ASSIGNABLE_PROVIDERS:
        raise Forbidden(
            f"{request.device_provider} devices are assigned by the clinic; the app may assign only "
            f"{', '.join(PATIENT_ASSIGNABLE_PROVIDERS)} devices"
        )
    request = request.model_copy(update={"assigned_patient_id": session.profile.patient_id, "valid_from": None})
    device = assign(context, request, session.profile.sub, clinic_attests=False, patient_checked=True)
    return json_response(public_view(device))


def assign(
    context: AppContext,
    request: AssignRequest,
    recorded_by: str,
    *,
    clinic_attests: bool = True,
    patient_checked: bool = False,
) -> dict[str, object]:
    """Registers the device if unknown, opens the assignment, records the clinic's consent for
    the device's kinds (``clinic_attests``), and re-drives the parked readings the assignment
    now covers."""
    from shared.consent.models import ConsentGrant

    patient_id = request.assigned_patient_id
    if not patient_checked:
        patient_id = context.patients.resolve(patient_id)
    registration = request.registration()
    context.devices.register(registration)
    device_id = registry_id(registration.provider, registration.provider_device_id)
    device = context.devices.assign(device_id, patient_id, request.valid_from)
    if clinic_attests:
        scopes = [kind.value for kind in DEVICE_TYPE_KINDS[registration.type]]
        context.consents.grant(
            ConsentGrant(patientId=patient_id, source=registration.provider, scopes=scopes, attestation="clinic"),
            recorded_by,
            merge=True,
        )
    waiting = context.parked.waiting_for(device)
    if waiting:
        from shared.pipeline.replay import replay_archived

        replay_archived(context.raw_store, waiting)
        log.info("device %s: %d parked records re-driven", device_id, len(waiting))
    return device


@bp.route(route="devices/{id}/unassign", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def unassign_device(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    admin(context, req)
    context.devices.unassign(req.route_params.get("id", ""))
    return func.HttpResponse(status_code=204)


@bp.route(route="devices/{id}/correct-attribution", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def correct_attribution(req: func.HttpRequest) -> func.HttpResponse:
    """The device was assigned to the wrong patient: its readings of the period become the
    right patient's (new Observations; the wrong patient's are marked entered-in-error)."""
    context = get_context()
    principal = admin(context, req)
    from shared.devices.models import CorrectionRequest
    request = read_json_model(req, CorrectionRequest, context.settings.max_body_bytes)
    context.devices.get(req.route_params.get("id", ""))  # 404 before anything else
    patient_id = context.patients.resolve(request.patient_id)
    outcome = context.corrections.correct(
        req.route_params.get("id", ""), patient_id, request.valid_from, request.valid_to, principal.subject
    )
    return json_response({**outcome, "device": public_view(outcome["device"])})
