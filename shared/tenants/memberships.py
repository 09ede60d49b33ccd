"""Which medical centre an admin token works in: a membership names a principal (its Entra
object id) or an Entra group, and a tenant. Platform operators (``PLATFORM_ROLE``) may work in
any tenant. A deployment that registers no tenant needs no membership: every admin works in the
default tenant, as before tenants existed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from azure.cosmos import ContainerProxy
from pydantic import Field

from shared.clients.cosmos import delete_if_present
from shared.clock import utc_now
from shared.errors import BadRequest, Forbidden
from shared.records import Instant, Record
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from shared.auth import Principal
    from shared.tenants.directory import TenantDirectory


class MembershipRecord(Record):
    id: str
    principal: str = Field(description="oid:<object id> or group:<group object id>")
    tenant_id: str = Field(alias="tenantId")
    role: str = "admin"
    created_at: Instant = Field(alias="createdAt")


class MembershipList(Record):
    items: list[MembershipRecord]


def principal_key(principal: str) -> str:
    kind, _, value = principal.partition(":")
    if kind not in ("oid", "group") or not value.strip():
        raise BadRequest("a member is oid:<object id> or group:<group object id>")
    return f"{kind}:{value.strip()}"


class Memberships:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def grant(self, tenant_id: str, principal: str) -> MembershipRecord:
        key = principal_key(principal)
        record = MembershipRecord(id=f"{tenant_id}|{key}", principal=key, tenant_id=tenant_id, created_at=self.clock())
        self.container.upsert_item(record.to_item())  # granting again changes nothing that matters
        return record

    def of_tenant(self, tenant_id: str) -> list[MembershipRecord]:
        query = "SELECT * FROM c WHERE c.tenantId = @tenant ORDER BY c.id"
        parameters: list[dict[str, object]] = [{"name": "@tenant", "value": tenant_id}]
        items = self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True)
        return [MembershipRecord.from_item(item) for item in items]

    def revoke(self, tenant_id: str, principal: str) -> None:
        key = principal_key(principal)
        delete_if_present(self.container, f"{tenant_id}|{key}", key)

    def tenants_of(self, keys: Sequence[str]) -> set[str]:
        items = self.container.query_items(
            "SELECT * FROM c WHERE ARRAY_CONTAINS(@keys, c.principal)",
            parameters=[{"name": "@keys", "value": list(keys)}],
            enable_cross_partition_query=True,
        )
        return {MembershipRecord.from_item(item).tenant_id for item in items}


def tenant_of_admin(
    principal: Principal,
    named: str | None,
    memberships: Memberships,
    directory: TenantDirectory,
    platform_role: str,
) -> str:
    """The tenant an admin call runs in: the one its path names (``/api/tenants/{tenantId}/``),
    which must be one of the principal's, or its only one. 403 for a token with no membership
    (once the deployment serves tenants); 404 for a tenant that does not exist."""
    from shared.errors import NotFound

    if named is not None and directory.status(named) is None:
        raise NotFound(f"no tenant {named!r}")
    if platform_role in principal.roles:
        return named or DEFAULT_TENANT
    if not directory.serves_tenants():
        if named not in (None, DEFAULT_TENANT):
            raise Forbidden("this token is not a member of that medical centre")
        return DEFAULT_TENANT
    mine = memberships.tenants_of(principal.member_keys)
    if named is not None:
        if named not in mine:
            raise Forbidden("this token is not a member of that medical centre")
        return named
    if not mine:
        raise Forbidden("this token has no membership in a medical centre this hub serves")
    if len(mine) > 1:
        raise BadRequest("this token is a member of several medical centres: call /api/tenants/{tenantId}/...")
    return next(iter(mine))
