"""Suspending and reactivating a tenant: a suspended tenant's credentials are refused at once in
this process (within TENANT_CACHE_SECONDS elsewhere) and its queued records are held; on
reactivation every held record is re-driven through the ingest queue, then released."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.pipeline.replay import replay_archived

if TYPE_CHECKING:
    from shared.pipeline.store import RawRecordStore
    from shared.tenants.directory import TenantDirectory
    from shared.tenants.held import HeldRecords
    from shared.tenants.memberships import MembershipRecord, Memberships
    from shared.tenants.records import TenantRecord
    from shared.tenants.registry import TenantRegistry


@dataclass
class TenantAdministration:
    registry: TenantRegistry
    directory: TenantDirectory
    held: HeldRecords
    raw_store: RawRecordStore
    memberships: Memberships

    def create(self, tenant_id: str, name: str, **options: Any) -> TenantRecord:
        tenant = self.registry.create(tenant_id, name, **options)
        self.directory.invalidate()
        return tenant

    def suspend(self, tenant_id: str) -> TenantRecord:
        tenant = self.registry.set_status(tenant_id, "suspended")
        self.directory.invalidate()
        return tenant

    def activate(self, tenant_id: str) -> tuple[TenantRecord, list[str]]:
        """(the tenant, the receipt ids re-driven)."""
        tenant = self.registry.set_status(tenant_id, "active")
        self.directory.invalidate()
        redriven = []
        for record in self.held.of(tenant_id):
            replay_archived(self.raw_store, [record.receipt_id])  # queued before it is released
            self.held.release(tenant_id, record.receipt_id)
            redriven.append(record.receipt_id)
        return tenant, redriven

    def add_member(self, tenant_id: str, member: str) -> MembershipRecord:
        self.registry.get(tenant_id)  # 404 for a tenant that does not exist
        return self.memberships.grant(tenant_id, member)

    def remove_member(self, tenant_id: str, member: str) -> None:
        self.registry.get(tenant_id)
        self.memberships.revoke(tenant_id, member)

    def members(self, tenant_id: str) -> list[MembershipRecord]:
        self.registry.get(tenant_id)
        return self.memberships.of_tenant(tenant_id)
