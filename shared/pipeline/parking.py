"""Parked readings: readings whose device has no patient at their measured time. The raw
payload stays archived under its receipt id; a parked item per raw record says which devices
and which period it is waiting for. An assignment covering that period re-drives the record
(within the look-back); older ones are reported and kept for manual handling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence

from azure.cosmos import ContainerProxy
from pydantic import Field

from shared.clients.cosmos import delete_if_present, filtered_query, update_item
from shared.clock import utc_now
from shared.devices.records import DeviceRecord
from shared.devices.types import registry_id
from shared.measurement import Measurement
from shared.records import Instant, Record
from shared.tenants import DEFAULT_TENANT


class ParkedRecord(Record):
    id: str
    tenant_id: str = Field(default=DEFAULT_TENANT, alias="tenantId")
    receipt_id: str = Field(alias="receiptId")
    source: str
    device_ids: list[str] = Field(alias="deviceIds")
    device_identifiers: list[str] = Field(alias="deviceIdentifiers")
    measured_from: Instant = Field(alias="measuredFrom")
    measured_to: Instant = Field(alias="measuredTo")
    readings: int
    source_ids: list[str] = Field(alias="sourceIds", description="the first 100")
    parked_at: Instant = Field(alias="parkedAt")


class ParkedView(ParkedRecord):
    """What ``parked`` lists: the record, and whether it is past the look-back."""

    stale: bool


class ParkedReadings:
    def __init__(
        self,
        container: ContainerProxy,
        lookback: dt.timedelta,
        clock: Callable[[], dt.datetime] = utc_now,
        lookback_of: Callable[[str], dt.timedelta | None] | None = None,
    ) -> None:
        self.container = container
        self.lookback = lookback
        self.lookback_of = lookback_of  # a tenant's own look-back, if it set one
        self.clock = clock

    def park(
        self, receipt_id: str, source: str, readings: Sequence[Measurement], tenant: str = DEFAULT_TENANT
    ) -> None:
        device_ids: set[str] = set()
        identifiers: set[str] = set()
        for measurement in readings:
            if measurement.device is not None:
                for _, value in measurement.device.identifiers:
                    device_ids.add(registry_id(source, value, tenant))
                    identifiers.add(value)
        moments = [m.effective_start for m in readings]
        def record(current: dict[str, object] | None) -> dict[str, object]:
            # A re-driven record keeps its first parking time: the look-back does not restart.
            parked_at = ParkedRecord.from_item(current).parked_at if current is not None else self.clock()
            return ParkedRecord(
                id=receipt_id,
                tenant_id=tenant,
                receipt_id=receipt_id,
                source=source,
                device_ids=sorted(device_ids),
                device_identifiers=sorted(identifiers),
                measured_from=min(moments),
                measured_to=max(moments),
                readings=len(readings),
                source_ids=[m.source_id for m in readings][:100],
                parked_at=parked_at,
            ).to_item()

        update_item(self.container, receipt_id, receipt_id, record)

    def release(self, receipt_id: str) -> None:
        """The record's readings are all attributed now."""
        delete_if_present(self.container, receipt_id, receipt_id)

    def all(self, tenant: str | None = None) -> Iterator[ParkedView]:
        """Every parked record (only ``tenant``'s, when one is named)."""
        query, parameters = filtered_query({}, tenant)
        for item in self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True):
            record = ParkedRecord.from_item(item)
            yield ParkedView(**dict(record), stale=self.is_stale(record))

    def is_stale(self, record: ParkedRecord) -> bool:
        own = self.lookback_of(record.tenant_id) if self.lookback_of is not None else None
        return record.parked_at < self.clock() - (own if own is not None else self.lookback)

    def waiting_for(self, device: DeviceRecord) -> list[str]:
        """Receipt ids of the parked records this device's assignments now cover (within the
        look-back); the caller re-drives them."""
        items = self.container.query_items(
            "SELECT * FROM c WHERE ARRAY_CONTAINS(c.deviceIds, @device)",
            parameters=[{"name": "@device", "value": device.id}],
            enable_cross_partition_query=True,
        )
        records = [ParkedRecord.from_item(item) for item in items]
        return [r.receipt_id for r in records if not self.is_stale(r) and _covered(r, device)]


def _covered(record: ParkedRecord, device: DeviceRecord) -> bool:
    return any(a.covers(record.measured_from) or a.covers(record.measured_to) for a in device.assignments)
