"""The partner metrics API (``/api/partner/v1``), with a partner app's bearer access token:
send a batch of readings for the token's patient (or, from a gateway a clinician authorized, for
the patient of the clinician's tenant the batch names) (202 with a receipt id; each reading accepted
or refused with its reason), and read a receipt: what became of each reading. Calls outside the
token's scopes are 403; each app has ``PARTNER_CALLS_PER_MINUTE`` calls a minute (429)."""

from __future__ import annotations

import json

import azure.functions as func

from shared.api.callers import ANONYMOUS, partner_caller
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, read_json_model
from shared.errors import BadRequest, Forbidden, InsufficientScope, Unprocessable

bp = func.Blueprint()  # type: ignore[no-untyped-call]

BATCH_MAX_BYTES = 4 * 1024 * 1024  # 500 readings, ECGs included
CLIENT_ATTRIBUTE = "clientId"


@bp.route(route="api/partner/v1/readings", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def partner_readings(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    user, client_id, scopes = partner_caller(context, req)
    from shared.api.answers import PartnerAccepted, RefusedReading
    from shared.measurement import Kind
    from shared.partners.scopes import metric_scope
    from shared.pipeline.envelope import TENANT_ATTRIBUTE, new_receipt_id
    from shared.pipeline.processing import PARTNER_SOURCE, PATIENT_ATTRIBUTE
    from shared.sources.partner.readings import PartnerBatch, kinds_of, vet_batch
    from shared.tenants import DEFAULT_TENANT

    batch = read_json_model(req, PartnerBatch, BATCH_MAX_BYTES)
    if user.patient_id is not None:
        if batch.patient_id not in (None, user.patient_id):
            raise Forbidden("a patient's token sends that patient's readings only")
        patient_id = user.patient_id
    else:  # a gateway a clinician authorized: the readings name a patient of the clinician's tenant
        if not batch.patient_id:
            raise BadRequest("a gateway authorized by a clinician names the patient (patientId)")
        patient_id = context.patients_of(user.tenant).resolve(batch.patient_id)
    accepted, refused = vet_batch(batch)
    outside = sorted(kind for kind in kinds_of(accepted) if metric_scope(Kind(kind)) not in scopes)
    if outside:
        raise InsufficientScope(f"the token's scopes do not cover: {', '.join(outside)}")
    refusals = [RefusedReading(id=r.id, reason=r.reason) for r in refused]
    if not accepted:
        raise Unprocessable("no reading of the batch was accepted", details=[r.model_dump() for r in refusals])
    receipt_id = new_receipt_id(tenant=user.tenant)
    queued, rejected = [r["id"] for r in accepted], [(r.id, r.reason) for r in refused]
    context.partner_receipts.open(receipt_id, client_id, user.tenant, patient_id, queued, rejected)
    attributes = {PATIENT_ATTRIBUTE: patient_id, CLIENT_ATTRIBUTE: client_id}
    if user.tenant != DEFAULT_TENANT:
        attributes[TENANT_ATTRIBUTE] = user.tenant
    body = json.dumps({"clientId": client_id, "readings": accepted}, separators=(",", ":"))
    context.ingress_store.accept(
        source=PARTNER_SOURCE, format="partner-json", body=body, content_type="application/json",
        attributes=attributes, receipt_id=receipt_id,
    )  # fmt: skip
    answer = PartnerAccepted(receipt_id=receipt_id, accepted=len(accepted), refused=refusals)
    return json_response(answer, status=202)


@bp.route(route="api/partner/v1/receipts/{id}", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def partner_receipt(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    user, client_id, _ = partner_caller(context, req)
    from shared.errors import NotFound

    receipt = context.partner_receipts.get(str(req.route_params.get("id", "")), client_id)
    mine = receipt.tenant_id == user.tenant and user.patient_id in (None, receipt.patient_id)
    if not mine:  # a patient's token: that patient's receipts; a clinician's gateway: its tenant's
        raise NotFound(f"no receipt {receipt.id!r}")
    return json_response(receipt)
