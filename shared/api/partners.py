"""The partner platform's application registry over HTTP:

- integrators register an app (``POST /api/partner/apps``, no credential: a new app is pending
  and can do nothing until a platform operator approves it; limited per client address);
- platform operators list, approve and suspend apps (``/api/platform/apps``);
- a tenant's admins see the approved apps and enable or disable them for the tenant
  (``/api/apps``, also under ``/api/tenants/{tenantId}/``)."""

from __future__ import annotations

import azure.functions as func

from shared.api.callers import ANONYMOUS, admin_in_tenant, client_address, platform_operator, tenant_routes
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, query_param, read_json_model

bp = func.Blueprint()  # type: ignore[no-untyped-call]

REGISTRATIONS_PER_WINDOW = 5  # per client address, per THROTTLE_WINDOW_MINUTES


def _client_id(req: func.HttpRequest) -> str:
    return str(req.route_params.get("clientId", ""))


@bp.route(route="api/partner/apps", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def register_app(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    from shared.partners.records import AppRegistration, RegisteredApp

    registration = read_json_model(req, AppRegistration, context.settings.max_body_bytes)
    address = client_address(req, context.settings.client_address_trusted_hops)
    context.throttle.take("app-registration", address, REGISTRATIONS_PER_WINDOW, "too many app registrations")
    app, secret = context.partner_apps.register(registration)
    return json_response(RegisteredApp(app=app.view(), client_secret=secret), status=201)


@bp.route(route="api/platform/apps", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def list_apps(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    from shared.partners.records import APP_STATUSES, AppList

    apps = context.partner_apps.list(query_param(req, "status", APP_STATUSES))
    return json_response(AppList(items=[app.view() for app in apps]))


@bp.route(route="api/platform/apps/{clientId}/approve", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def approve_app(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    return json_response(context.partner_apps.set_status(_client_id(req), "approved"))


@bp.route(route="api/platform/apps/{clientId}/suspend", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def suspend_app(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    return json_response(context.partner_apps.set_status(_client_id(req), "suspended"))


@tenant_routes(bp, "apps", ["GET"])
@endpoint
def list_tenant_apps(req: func.HttpRequest) -> func.HttpResponse:
    """The approved apps, each with whether this tenant enabled it."""
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    from shared.partners.records import TenantAppList

    apps = context.partner_apps.list("approved")
    return json_response(TenantAppList(items=[app.for_tenant(tenant) for app in apps]))


@tenant_routes(bp, "apps/{clientId}/enable", ["POST"])
@endpoint
def enable_app(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    return json_response(context.partner_apps.enable(_client_id(req), tenant).for_tenant(tenant))


@tenant_routes(bp, "apps/{clientId}/disable", ["POST"])
@endpoint
def disable_app(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    _, tenant = admin_in_tenant(context, req)
    return json_response(context.partner_apps.disable(_client_id(req), tenant).for_tenant(tenant))
