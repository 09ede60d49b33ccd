"""Device Manager HealthKit endpoint for a BFF hosted elsewhere:
``POST /api/health-data/healthkit/{format}``. Service to service: an Entra ID token for the
hub's app carrying the ingest app role, and the patient in ``x-patient-id`` (which must exist
in the FHIR server). Same vetting and code path as the built-in BFF."""

from __future__ import annotations

import azure.functions as func

from shared.api.bff import ingest_healthkit
from shared.api.context import get_context
from shared.api.http import endpoint
from shared.auth import admin_validator
from shared.errors import BadRequest

bp = func.Blueprint()  # type: ignore[no-untyped-call]

PATIENT_HEADER = "x-patient-id"


@bp.route(route="health-data/healthkit/{format}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def healthkit_ingest(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    caller = admin_validator(context.settings, context.settings.ingest_role).validate(req.headers.get("authorization"))
    reference = (req.headers.get(PATIENT_HEADER) or "").strip()
    if not reference:
        raise BadRequest(f"the {PATIENT_HEADER} header names the patient the upload belongs to")
    patient_id = context.patients.resolve(reference)
    return ingest_healthkit(context, req, patient_id, caller.subject)
