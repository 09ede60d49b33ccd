"""HealthKit uploads, from two callers with the same vetting and code path:

- the built-in BFF: ``POST /api/health-data/{format}`` with the app's session cookie;
- a BFF hosted elsewhere (Device Manager contract): ``POST /api/health-data/healthkit/{format}``,
  service to service: an Entra ID token for the hub's app carrying the ingest app role, and the
  patient in ``x-patient-id`` (which must be a Patient of the service's tenant). A service that
  is a member of several tenants names one: ``/api/tenants/{tenantId}/health-data/healthkit/...``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.callers import ANONYMOUS, current_session, ingest_service, tenant_routes
from shared.api.context import get_context
from shared.api.http import decode_utf8, endpoint, json_response, read_body, require_media_type
from shared.errors import BadRequest, Unprocessable
from shared.sources.healthkit.parser import FORMAT
from shared.sources.parsing import load_json
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from shared.composition import AppContext

bp = func.Blueprint()  # type: ignore[no-untyped-call]

PATIENT_HEADER = "x-patient-id"
SUPPORTED_UPLOAD_FORMATS = (FORMAT,)


@bp.route(route="api/health-data/{format}", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def upload_health_data(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    session = current_session(context, req)
    return _ingest(context, req, session.profile.patient_id, session.profile.sub, session.profile.tenant)


@tenant_routes(bp, "health-data/healthkit/{format}", ["POST"])
@endpoint
def healthkit_ingest(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    caller, tenant = ingest_service(context, req)
    reference = (req.headers.get(PATIENT_HEADER) or "").strip()
    if not reference:
        raise BadRequest(f"the {PATIENT_HEADER} header names the patient the upload belongs to")
    patient_id = context.patients_of(tenant).resolve(reference)
    return _ingest(context, req, patient_id, caller.subject, tenant)


def _ingest(
    context: AppContext, req: func.HttpRequest, patient_id: str, recorded_by: str, tenant: str = DEFAULT_TENANT
) -> func.HttpResponse:
    format_name = req.route_params.get("format", "")
    if format_name not in SUPPORTED_UPLOAD_FORMATS:
        raise BadRequest(f"unknown format {format_name!r}; supported: {', '.join(SUPPORTED_UPLOAD_FORMATS)}")
    require_media_type(req, ("application/json",))
    document = load_json(decode_utf8(read_body(req, context.settings.max_body_bytes)))
    outcome = context.healthkit_ingestion.ingest(document, patient_id, recorded_by, tenant)
    if outcome.receipt_id is None:
        raise Unprocessable("no sample of the upload was accepted", details=outcome.rejected)
    from shared.api.answers import RejectedSample, UploadAnswer

    rejected = [RejectedSample(**sample) for sample in outcome.rejected]
    answer = UploadAnswer(
        receipt_id=outcome.receipt_id, accepted=outcome.accepted, deleted=outcome.deleted, rejected=rejected
    )
    return json_response(answer, status=202)
