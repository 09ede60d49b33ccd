"""The mobile app's backend-for-frontend: login, profile, password reset and logout (its
HealthKit uploads: ``shared.api.healthkit``). The app holds only an opaque ``sid`` cookie
(HttpOnly, Secure, SameSite=Strict); tokens never reach it.

CSRF: the cookie is SameSite=Strict, state-changing calls take ``application/json`` bodies
(which an HTML form cannot send cross-site without a CORS preflight, and none is allowed), and a
request carrying an ``Origin`` not in ``BFF_ALLOWED_ORIGINS`` is refused."""

from __future__ import annotations

import datetime as dt

import azure.functions as func

from shared.api.callers import (
    ANONYMOUS,
    client_address,
    current_session,
    require_allowed_origin,
    session_cookie,
    session_id,
)
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, read_json_model
from shared.errors import NotFound

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.route(route="api/oauth/token", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def login(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    settings = context.settings
    require_allowed_origin(context, req)
    from shared.bff.requests import LoginRequest

    credentials = read_json_model(req, LoginRequest, settings.max_body_bytes)
    address = client_address(req, settings.client_address_trusted_hops)
    sid, session = context.login.login(credentials.username, credentials.password, address, credentials.tenant_id)
    max_age = int((session.absolute_expiry - dt.datetime.now(dt.UTC)).total_seconds())
    from shared.api.answers import LoginAnswer

    return json_response(
        LoginAnswer(expires_at=session.absolute_expiry),
        headers={"Set-Cookie": session_cookie(sid, max_age), "Cache-Control": "no-store"},
    )


@bp.route(route="api/profile", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def profile(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    session = current_session(context, req)
    from shared.api.answers import Profile

    return json_response(Profile(**session.profile.userinfo()), headers={"Cache-Control": "no-store"})


@bp.route(route="api/reset-password", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def reset_password(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    settings = context.settings
    require_allowed_origin(context, req)
    from shared.bff.requests import ResetRequest

    request = read_json_model(req, ResetRequest, settings.max_body_bytes)
    context.login.request_password_reset(request.email, client_address(req, settings.client_address_trusted_hops))
    return func.HttpResponse(status_code=204)


@bp.route(route="api/reset-password/confirm", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def confirm_password_reset(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    require_allowed_origin(context, req)
    from shared.bff.identity import DirectoryIdentityProvider

    identity = context.identity
    if not isinstance(identity, DirectoryIdentityProvider):
        raise NotFound("password resets are completed at the identity provider")
    from shared.bff.requests import ResetConfirmation

    request = read_json_model(req, ResetConfirmation, context.settings.max_body_bytes)
    identity.confirm_password_reset(request.token, request.new_password)
    return func.HttpResponse(status_code=204)


@bp.route(route="api/logout", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def logout(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    require_allowed_origin(context, req)
    sid = session_id(req)
    if sid:
        context.sessions.end(sid)
    return func.HttpResponse(status_code=204, headers={"Set-Cookie": session_cookie("", 0)})
