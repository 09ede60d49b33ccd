"""Raw records of a tenant that is suspended (or not served): the worker holds them here, the
payload stays archived under its receipt id, and reactivating the tenant re-drives them. Held,
never lost, never processed while the tenant is suspended."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from azure.cosmos import ContainerProxy
from pydantic import Field

from shared.clients.cosmos import delete_if_present
from shared.clock import utc_now
from shared.records import Instant, Record


class HeldRecord(Record):
    id: str
    tenant_id: str = Field(alias="tenantId")
    receipt_id: str = Field(alias="receiptId")
    source: str
    reason: str
    held_at: Instant = Field(alias="heldAt")


class HeldRecords:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def hold(self, tenant_id: str, receipt_id: str, source: str, reason: str) -> None:
        record = HeldRecord(
            id=receipt_id, tenant_id=tenant_id, receipt_id=receipt_id, source=source, reason=reason,
            held_at=self.clock(),
        )  # fmt: skip
        self.container.upsert_item(record.to_item())  # a redelivery holds the same record once

    def of(self, tenant_id: str) -> list[HeldRecord]:
        items = self.container.query_items(
            "SELECT * FROM c WHERE c.tenantId = @tenant ORDER BY c.heldAt",
            parameters=[{"name": "@tenant", "value": tenant_id}],
            partition_key=tenant_id,
        )
        return [HeldRecord.from_item(item) for item in items]

    def release(self, tenant_id: str, receipt_id: str) -> None:
        delete_if_present(self.container, receipt_id, tenant_id)
