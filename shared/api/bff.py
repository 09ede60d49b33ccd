"""The mobile app's backend-for-frontend: login, profile, password reset, logout and HealthKit
uploads. The app holds only an opaque ``sid`` cookie (HttpOnly, Secure, SameSite=Strict);
tokens never reach it.

CSRF: the cookie is SameSite=Strict, state-changing calls take ``application/json`` bodies
(which an HTML form cannot send cross-site without a CORS preflight, and none is allowed), and a
request carrying an ``Origin`` not in ``BFF_ALLOWED_ORIGINS`` is refused."""

from __future__ import annotations

import datetime as dt
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.context import get_context
from shared.api.http import decode_utf8, endpoint, json_response, read_body, read_json_model, require_media_type
from shared.errors import BadRequest, Forbidden, HubError, NotFound, Unauthorized, Unprocessable
from shared.sources.healthkit.parser import FORMAT
from shared.sources.parsing import load_json

if TYPE_CHECKING:
    from shared.bff.sessions import Session
    from shared.composition import AppContext

COOKIE_NAME = "sid"  # the session cookie: HttpOnly, Secure, SameSite=Strict

bp = func.Blueprint()  # type: ignore[no-untyped-call]
ANONYMOUS = func.AuthLevel.ANONYMOUS  # authenticated in code: the session cookie
SUPPORTED_UPLOAD_FORMATS = (FORMAT,)


def client_address(req: func.HttpRequest, trusted_hops: int) -> str:
    """The caller's address: the entry ``trusted_hops`` from the right of X-Forwarded-For, the
    one the nearest proxy we trust appended (entries to its left are the caller's own words).
    With 0 trusted hops, or no header, the address is unknown."""
    hops = [hop.strip() for hop in (req.headers.get("x-forwarded-for") or "").split(",")]
    hops = [hop for hop in hops if hop]
    if trusted_hops == 0 or not hops:
        return "unknown"
    entry = hops[-trusted_hops] if len(hops) >= trusted_hops else hops[0]
    if entry.startswith("["):  # [IPv6]:port
        return entry[1:].split("]", 1)[0]
    return entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry


def require_allowed_origin(context: AppContext, req: func.HttpRequest) -> None:
    origin = req.headers.get("origin")
    if origin is None:
        return  # native apps send none
    if origin not in context.settings.bff_allowed_origins:
        raise Forbidden("requests from this origin are not accepted")


def session_id(req: func.HttpRequest) -> str | None:
    header = req.headers.get("cookie")
    if not header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


def current_session(context: AppContext, req: func.HttpRequest) -> Session:
    require_allowed_origin(context, req)
    return context.sessions.resolve(session_id(req))


def _cookie(value: str, max_age: int) -> str:
    return f"{COOKIE_NAME}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}"


@bp.route(route="oauth/token", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def login(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    settings = context.settings
    require_allowed_origin(context, req)
    from shared.sources.healthkit.requests import LoginRequest

    credentials = read_json_model(req, LoginRequest, settings.max_body_bytes)
    address = client_address(req, settings.client_address_trusted_hops)
    limits = [
        ("login-address", address, settings.login_max_failures_per_address),
        ("login-account", credentials.username, settings.login_max_failures_per_account),
    ]
    context.throttle.take_all(limits, "too many failed logins; try again later")  # counted before checking
    try:
        profile = context.identity.authenticate(credentials.username, credentials.password)
    except Unauthorized:
        raise  # a wrong password: it stays counted
    except HubError:  # the provider failed, or the account has no patient: not a guess
        for kind, subject, _ in limits:
            context.throttle.give_back(kind, subject)
        raise
    context.throttle.clear("login-account", credentials.username)
    context.throttle.give_back("login-address", address)  # only failures count against an address
    sid, session = context.sessions.create(profile)
    max_age = int((session.absolute_expiry - dt.datetime.now(dt.UTC)).total_seconds())
    return json_response(
        {"status": "authenticated", "expiresAt": session.absolute_expiry.isoformat()},
        headers={"Set-Cookie": _cookie(sid, max_age), "Cache-Control": "no-store"},
    )


@bp.route(route="profile", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def profile(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    session = current_session(context, req)
    return json_response(session.profile.userinfo(), headers={"Cache-Control": "no-store"})


@bp.route(route="reset-password", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def reset_password(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    settings = context.settings
    require_allowed_origin(context, req)
    from shared.sources.healthkit.requests import ResetRequest

    request = read_json_model(req, ResetRequest, settings.max_body_bytes)
    limit = settings.reset_max_requests_per_hour
    address = client_address(req, settings.client_address_trusted_hops)
    limits = [("reset-address", address, limit * 10), ("reset-email", request.email, limit)]
    context.throttle.take_all(limits, "too many password reset requests; try again later")
    context.identity.request_password_reset(request.email)
    return func.HttpResponse(status_code=204)


@bp.route(route="reset-password/confirm", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def confirm_password_reset(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    require_allowed_origin(context, req)
    from shared.bff.identity import DirectoryIdentityProvider

    identity = context.identity
    if not isinstance(identity, DirectoryIdentityProvider):
        raise NotFound("password resets are completed at the identity provider")
    from shared.sources.healthkit.requests import ResetConfirmation

    request = read_json_model(req, ResetConfirmation, context.settings.max_body_bytes)
    identity.confirm_password_reset(request.token, request.new_password)
    return func.HttpResponse(status_code=204)


@bp.route(route="logout", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def logout(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    require_allowed_origin(context, req)
    sid = session_id(req)
    if sid:
        context.sessions.end(sid)
    return func.HttpResponse(status_code=204, headers={"Set-Cookie": _cookie("", 0)})


@bp.route(route="health-data/{format}", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def upload_health_data(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    session = current_session(context, req)
    return ingest_healthkit(context, req, session.profile.patient_id, session.profile.sub)


def ingest_healthkit(
    context: AppContext, req: func.HttpRequest, patient_id: str, recorded_by: str
) -> func.HttpResponse:
    """Shared by the BFF and the Device Manager's service-to-service endpoint."""
    format_name = req.route_params.get("format", "")
    if format_name not in SUPPORTED_UPLOAD_FORMATS:
        raise BadRequest(f"unknown format {format_name!r}; supported: {', '.join(SUPPORTED_UPLOAD_FORMATS)}")
    require_media_type(req, ("application/json",))
    document = load_json(decode_utf8(read_body(req, context.settings.max_body_bytes)))
    outcome = context.healthkit_ingestion.ingest(document, patient_id, recorded_by)
    if outcome.receipt_id is None:
        raise Unprocessable("no sample of the upload was accepted", details=outcome.rejected)
    return json_response(outcome.to_json(), status=202)
