"""Who is calling: the one place the HTTP layer authenticates its callers. Every route is
``ANONYMOUS`` to the Functions host and authenticated here, by the scheme that fits the caller:
a device's API key, a clinic back office's Entra ID bearer token (admin or ingest app role), the
mobile app's session cookie, or either of the last two where both may call."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.http import Handler, endpoint
from shared.auth import Principal, admin_validator
from shared.errors import BadRequest, ConfigurationError, Forbidden, RateLimited, TenantSuspended, Unauthorized

if TYPE_CHECKING:
    from shared.bff.sessions import Session
    from shared.composition import AppContext
    from shared.partners.authorization import PartnerUser

ANONYMOUS = func.AuthLevel.ANONYMOUS  # to the host; every handler authenticates its caller here
COOKIE_NAME = "sid"  # the session cookie: HttpOnly, Secure, SameSite=Strict


def device_key(context: AppContext, req: func.HttpRequest, header: str) -> str:
    """The tenant of a device webhook's key (a key belongs to exactly one tenant); 401 for a
    missing or unknown key, 403 when its tenant is suspended."""
    tenants = context.tenant_directory
    if not tenants.has_keys():
        raise ConfigurationError(f"no API key is configured for this endpoint ({header})")
    challenge = f'ApiKey header="{header}"'
    presented = req.headers.get(header)
    if not presented:
        raise Unauthorized(f"the {header} header is missing", challenge=challenge)
    tenant = tenants.tenant_of_key(presented)
    if tenant is None:
        raise Unauthorized(f"the {header} header does not hold a valid key", challenge=challenge)
    require_active(context, tenant)
    return tenant


def require_active(context: AppContext, tenant: str) -> None:
    if context.tenant_directory.status(tenant) != "active":
        raise TenantSuspended("this medical centre's account is suspended; nothing is accepted for it")


def tenant_routes(bp: func.Blueprint, route: str, methods: list[str]) -> Callable[[Handler], Handler]:
    """Registers an admin handler at ``/api/<route>`` (the caller's tenant: its token's only
    one) and at ``/api/tenants/{tenantId}/<route>`` (the tenant it names, which must be one of
    the caller's), the second as ``tenant_<name>``."""

    def register(handler: Handler) -> Handler:
        bp.route(route=f"api/{route}", methods=methods, auth_level=ANONYMOUS)(handler)
        original = inspect.unwrap(handler)

        def in_named_tenant(req: func.HttpRequest) -> func.HttpResponse:
            response: func.HttpResponse = original(req)
            return response

        in_named_tenant.__name__ = in_named_tenant.__qualname__ = f"tenant_{original.__name__}"
        in_named_tenant.__doc__ = original.__doc__
        bp.route(route=f"api/tenants/{{tenantId}}/{route}", methods=methods, auth_level=ANONYMOUS)(
            endpoint(in_named_tenant)
        )
        return handler

    return register


def admin(context: AppContext, req: func.HttpRequest) -> Principal:
    return admin_validator(context.settings).validate(req.headers.get("authorization"))


def admin_in_tenant(context: AppContext, req: func.HttpRequest) -> tuple[Principal, str]:
    """An admin call and the tenant it runs in: the one its path names
    (``/api/tenants/{tenantId}/...``) or the token's only one (``shared.tenants.memberships``)."""
    return _in_tenant(context, req, admin(context, req))


def platform_operator(context: AppContext, req: func.HttpRequest) -> Principal:
    """An admin token that also carries the platform operator's app role (``PLATFORM_ROLE``)."""
    principal = admin(context, req)
    if context.settings.platform_role not in principal.roles:
        raise Forbidden(f"managing tenants needs the {context.settings.platform_role} app role")
    return principal


def ingest_service(context: AppContext, req: func.HttpRequest) -> tuple[Principal, str]:
    """A BFF hosted elsewhere: an Entra ID token for the hub's app with the ingest app role, and
    the tenant it sends for, found like an admin's (its memberships, or the path's tenant)."""
    validator = admin_validator(context.settings, context.settings.ingest_role)
    return _in_tenant(context, req, validator.validate(req.headers.get("authorization")))


def _in_tenant(context: AppContext, req: func.HttpRequest, principal: Principal) -> tuple[Principal, str]:
    from shared.tenants.memberships import tenant_of_admin

    named = req.route_params.get("tenantId") or None
    settings = context.settings
    tenant = tenant_of_admin(principal, named, context.memberships, context.tenant_directory, settings.platform_role)
    require_active(context, tenant)
    return principal, tenant


def partner_caller(context: AppContext, req: func.HttpRequest) -> tuple[PartnerUser, str, set[str]]:
    """(user, client_id, scopes) of a live access token of an approved app its tenant enabled,
    within the app's calls per minute."""
    header = req.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a partner access token is needed (Authorization: Bearer)", challenge="Bearer")
    found = context.authorization_server.bearer(token.strip())
    if found is None:
        raise Unauthorized(
            "the access token is not valid: expired, revoked, or its app suspended",
            challenge='Bearer error="invalid_token"',
        )
    user, client_id, scopes = found
    require_active(context, user.tenant)
    if not context.partner_apps.usable_in(client_id, user.tenant):
        raise Forbidden("this app is not enabled for the medical centre")
    limit = context.settings.partner_calls_per_minute
    context.partner_rate.take(f"partner-{client_id}", limit, "this app's calls per minute are spent", error=RateLimited)
    return user, client_id, scopes


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


def session_cookie(value: str, max_age: int) -> str:
    return f"{COOKIE_NAME}={value}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={max_age}"


def current_session(context: AppContext, req: func.HttpRequest) -> Session:
    """The app's live session; refused (403) while its tenant is suspended."""
    require_allowed_origin(context, req)
    session = context.sessions.resolve(session_id(req))
    require_active(context, session.profile.tenant)
    return session


def is_back_office(req: func.HttpRequest) -> bool:
    """Token or cookie: a bearer token, or no session cookie at all, means the back office (so
    that a caller with neither is told about the token it lacks)."""
    return bool(req.headers.get("authorization")) or not session_id(req)


def patient_of_caller(context: AppContext, req: func.HttpRequest) -> tuple[str, str]:
    """(patient, tenant). The clinic back office names the patient (admin token, ``patient``
    query parameter), among its tenant's; the app's session is its patient, in the session's
    tenant, which a path's ``tenantId`` must name."""
    if is_back_office(req):
        _, tenant = admin_in_tenant(context, req)
        reference = req.params.get("patient") or ""
        if not reference:
            raise BadRequest("the patient query parameter names the patient to link")
        return context.patients_of(tenant).resolve(reference), tenant
    profile = current_session(context, req).profile
    named = req.route_params.get("tenantId")
    if named is not None and named != profile.tenant:
        raise Forbidden("this session belongs to another medical centre")
    return profile.patient_id, profile.tenant
