"""Platform-operator endpoints: the medical centres this deployment serves and who administers
each (the same operations as ``python -m shared.cli tenant ...``). An admin bearer token with the
platform operator's app role (``PLATFORM_ROLE``)."""

from __future__ import annotations

import azure.functions as func

from shared.api.callers import ANONYMOUS, platform_operator
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, read_json_model

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _tenant_id(req: func.HttpRequest) -> str:
    return str(req.route_params.get("id", ""))


@bp.route(route="api/platform/tenants", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def list_tenants(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    from shared.tenants.records import TenantList

    return json_response(TenantList(items=context.tenants.list()))


@bp.route(route="api/platform/tenants", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def create_tenant(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    from shared.tenants.records import NewTenant

    new = read_json_model(req, NewTenant, context.settings.max_body_bytes)
    tenant = context.tenant_administration.create(
        new.id,
        new.name,
        fhir_url=new.fhir_url,
        lookback_days=new.attribution_lookback_days,
        medisante_key_hashes=new.medisante_api_key_hashes,
    )
    return json_response(tenant, status=201)


@bp.route(route="api/platform/tenants/{id}", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def get_tenant(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    return json_response(context.tenants.get(_tenant_id(req)))


@bp.route(route="api/platform/tenants/{id}/suspend", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def suspend_tenant(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    return json_response(context.tenant_administration.suspend(_tenant_id(req)))


@bp.route(route="api/platform/tenants/{id}/activate", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def activate_tenant(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    tenant, redriven = context.tenant_administration.activate(_tenant_id(req))
    from shared.tenants.records import ActivatedTenant

    return json_response(ActivatedTenant.model_validate({**tenant.to_item(), "reDriven": len(redriven)}))


@bp.route(route="api/platform/tenants/{id}/members", methods=["GET"], auth_level=ANONYMOUS)
@endpoint
def list_members(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    from shared.tenants.memberships import MembershipList

    return json_response(MembershipList(items=context.tenant_administration.members(_tenant_id(req))))


@bp.route(route="api/platform/tenants/{id}/members", methods=["POST"], auth_level=ANONYMOUS)
@endpoint
def add_member(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    from shared.tenants.records import NewMember

    new = read_json_model(req, NewMember, context.settings.max_body_bytes)
    return json_response(context.tenant_administration.add_member(_tenant_id(req), new.member), status=201)


@bp.route(route="api/platform/tenants/{id}/members/{member}", methods=["DELETE"], auth_level=ANONYMOUS)
@endpoint
def remove_member(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    platform_operator(context, req)
    context.tenant_administration.remove_member(_tenant_id(req), req.route_params.get("member", ""))
    return func.HttpResponse(status_code=204)
