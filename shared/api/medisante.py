"""Medisanté webhook: ``POST /api/health-data/medisante/{format}``.

Authenticated by the ``x-api-key`` header; the body is size-limited, shape-checked by the
pure parser, made durable on the ingest queue, and answered 202 with a receipt id. It never
talks to FHIR. Re-deliveries (same ``correlationId``) are harmless: the writes are PUTs."""

from __future__ import annotations

import azure.functions as func

from shared.api.callers import ANONYMOUS, device_key
from shared.api.context import get_context
from shared.api.http import decode_utf8, endpoint, json_response, read_body, require_media_type
from shared.errors import BadRequest
from shared.pipeline.envelope import TENANT_ATTRIBUTE
from shared.sources.medisante.formats import MEDIA_TYPES
from shared.tenants import DEFAULT_TENANT

bp = func.Blueprint()  # type: ignore[no-untyped-call]

SOURCE = "medisante"
API_KEY_HEADER = "x-api-key"


@bp.route(route="api/health-data/medisante/{format}", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def medisante_webhook(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    settings = context.settings
    tenant = device_key(context, req, API_KEY_HEADER)
    format_name = req.route_params.get("format", "")
    if format_name not in MEDIA_TYPES:
        raise BadRequest(f"unknown format {format_name!r}; supported: {', '.join(MEDIA_TYPES)}")
    content_type = require_media_type(req, MEDIA_TYPES[format_name])
    text = decode_utf8(read_body(req, settings.max_body_bytes))
    from shared import conversion

    conversion.parse(SOURCE, format_name, text)  # shape check: raises InvalidPayload (400)
    attributes = {TENANT_ATTRIBUTE: tenant} if tenant != DEFAULT_TENANT else {}
    envelope = context.ingress_store.accept(
        source=SOURCE, format=format_name, body=text, content_type=content_type, attributes=attributes
    )
    from shared.api.answers import Accepted

    return json_response(Accepted(receipt_id=envelope.receipt_id), status=202)
