"""The tenant registry (Cosmos DB, one item per tenant). The default tenant is never stored: it
is the deployment itself, with the deployment's settings, and it is always active."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.cosmos import NoChange, read_or_none, update_item
from shared.clock import utc_now
from shared.errors import BadRequest, Conflict, NotFound
from shared.tenants import DEFAULT_TENANT
from shared.tenants.records import TenantRecord, TenantSettings, TenantStatus


class TenantRegistry:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def create(
        self,
        tenant_id: str,
        name: str,
        *,
        fhir_url: str | None = None,
        lookback_days: int | None = None,
        medisante_key_hashes: Sequence[str] = (),
    ) -> TenantRecord:
        if tenant_id == DEFAULT_TENANT:
            raise Conflict(f"{DEFAULT_TENANT!r} is the deployment's own tenant; it needs no registration")
        now = self.clock()
        try:
            settings = TenantSettings(
                attribution_lookback_days=lookback_days, medisante_api_key_hashes=list(medisante_key_hashes)
            )
            tenant = TenantRecord(
                id=tenant_id, name=name, fhir_url=fhir_url, settings=settings, created_at=now, updated_at=now
            )
        except ValueError as exc:  # pydantic's ValidationError: its first message names the field
            raise BadRequest(f"the tenant is not valid: {_first_problem(exc)}") from None
        try:
            self.container.create_item(tenant.to_item())
        except cosmos_errors.CosmosResourceExistsError:
            raise Conflict(f"a tenant {tenant_id!r} exists already") from None
        return tenant

    def get(self, tenant_id: str) -> TenantRecord:
        item = read_or_none(self.container, tenant_id, tenant_id) if tenant_id != DEFAULT_TENANT else None
        if item is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return TenantRecord.from_item(item)

    def list(self) -> list[TenantRecord]:
        items = self.container.query_items("SELECT * FROM c ORDER BY c.id", enable_cross_partition_query=True)
        return [TenantRecord.from_item(item) for item in items]

    def set_status(self, tenant_id: str, status: TenantStatus) -> TenantRecord:
        """Suspend or reactivate (``shared.workflows.tenants``: held records are re-driven);
        the same status again changes nothing."""

        def change(item: dict[str, object] | None) -> dict[str, object]:
            if item is None:
                raise NotFound(f"no tenant {tenant_id!r}")
            tenant = TenantRecord.from_item(item)
            if tenant.status == status:
                raise NoChange
            return tenant.model_copy(update={"status": status, "updated_at": self.clock()}).to_item()

        if tenant_id == DEFAULT_TENANT:
            raise Conflict(f"{DEFAULT_TENANT!r} is the deployment itself; it cannot be suspended")
        stored = update_item(self.container, tenant_id, tenant_id, change)
        if stored is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return TenantRecord.from_item(stored)


def _first_problem(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_input=False, include_url=False)[0]
        return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    return "invalid value"
