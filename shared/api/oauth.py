"""The partner platform's OAuth 2.0 endpoints (``shared.partners.authorization``): the token
endpoint (authorization code with PKCE, refresh token) and revocation. Their errors are OAuth's
own (RFC 6749 5.2: ``{"error", "error_description"}``), which is what OAuth client libraries
read. The BFF's ``POST /api/oauth/token`` (the app's password login) is another endpoint."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from shared.api.callers import ANONYMOUS, partner_caller
from shared.api.context import get_context
from shared.api.http import decode_utf8, endpoint, json_response, read_body, require_media_type
from shared.errors import BadRequest, InsufficientScope

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.partners.authorization import OAuthAnswer, OAuthCall, PartnerAuthorizationServer

bp = func.Blueprint()  # type: ignore[no-untyped-call]

FORM = "application/x-www-form-urlencoded"
FORM_MAX_BYTES = 8192
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _call(req: func.HttpRequest) -> OAuthCall:
    from shared.partners.authorization import OAuthCall

    require_media_type(req, (FORM,))
    text = decode_utf8(read_body(req, FORM_MAX_BYTES))
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise BadRequest("the body is not a form-encoded body") from None
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise BadRequest("a parameter appears more than once")  # RFC 6749 3.2: parameters are single
    return OAuthCall(req.method, req.url, dict(pairs), dict(req.headers.items()))


def _response(answer: OAuthAnswer) -> func.HttpResponse:
    headers = {**answer.headers, **NO_STORE}
    headers.pop("Content-Type", None)
    return func.HttpResponse(answer.body, status_code=answer.status, headers=headers, mimetype="application/json")


def _invalid_request(message: str) -> func.HttpResponse:
    body = json.dumps({"error": "invalid_request", "error_description": message})
    return func.HttpResponse(body, status_code=400, headers=NO_STORE, mimetype="application/json")


def _form_endpoint(
    req: func.HttpRequest, answer: Callable[[PartnerAuthorizationServer, OAuthCall], OAuthAnswer]
) -> func.HttpResponse:
    """A form-encoded OAuth endpoint: a malformed form is OAuth's own ``invalid_request``."""
    try:
        call = _call(req)
    except BadRequest as exc:
        return _invalid_request(exc.message)
    return _response(answer(get_context().authorization_server, call))


@bp.route(route="api/oauth2/token", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def partner_token(req: func.HttpRequest) -> func.HttpResponse:
    return _form_endpoint(req, lambda server, call: server.token(call))


@bp.route(route="api/oauth2/revoke", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def partner_revoke(req: func.HttpRequest) -> func.HttpResponse:
    return _form_endpoint(req, lambda server, call: server.revoke(call))


@bp.route(route="api/oauth2/device_authorization", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def partner_device_authorization(req: func.HttpRequest) -> func.HttpResponse:
    """RFC 8628: a device without a browser asks for a user code to show."""
    return _form_endpoint(req, lambda server, call: server.device_authorization(call))


@bp.route(route=".well-known/oauth-authorization-server", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def partner_metadata(req: func.HttpRequest) -> func.HttpResponse:
    """RFC 8414: the authorization server's metadata, at the host's root."""
    parts = urlsplit(req.url)
    metadata = get_context().authorization_server.metadata(f"{parts.scheme}://{parts.netloc}")
    return json_response(metadata, headers={"Cache-Control": "public, max-age=3600"})


@bp.route(route="api/oauth2/userinfo", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def partner_userinfo(req: func.HttpRequest) -> func.HttpResponse:
    """Who consented (``profile`` scope): sub, name, the tenant, and the patient when a patient."""
    context = get_context()
    user, _, scopes = partner_caller(context, req)
    from shared.api.answers import UserInfo, UserInfoTenant
    from shared.partners.scopes import PROFILE

    if PROFILE not in scopes:
        raise InsufficientScope("UserInfo needs the profile scope")
    tenant = UserInfoTenant(id=user.tenant, name=context.tenant_directory.name(user.tenant))
    patient = f"Patient/{user.patient_id}" if user.patient_id else None
    return json_response(UserInfo(sub=user.sub, name=user.name, tenants=[tenant], patient=patient))
