"""Parked readings: readings whose device has no patient at their measured time. The raw
payload stays archived under its receipt id; a parked item per raw record says which devices
and which period it is waiting for. An assignment covering that period re-drives the record
(within the look-back); older ones are reported and kept for manual handling."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from azure.cosmos import ContainerProxy

from shared.clients.cosmos import delete_if_present, update_item
from shared.clock import instant_text, utc_now
from shared.devices.registry import Assignment, assignments_of
from shared.devices.types import registry_id
from shared.measurement import Measurement


class ParkedReadings:
    def __init__(
        self, container: ContainerProxy, lookback: dt.timedelta, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self.container = container
        self.lookback = lookback
        self.clock = clock

    def park(self, receipt_id: str, source: str, readings: Sequence[Measurement]) -> None:
        device_ids: set[str] = set()
        identifiers: set[str] = set()
        for measurement in readings:
            if measurement.device is not None:
                for _, value in measurement.device.identifiers:
                    device_ids.add(registry_id(source, value))
                    identifiers.add(value)
        moments = [m.effective_start for m in readings]
        def record(current: dict[str, Any] | None) -> dict[str, Any]:
            # A re-driven record keeps its first parking time: the look-back does not restart.
            parked_at = current["parkedAt"] if current is not None else instant_text(self.clock())
            return {
                "id": receipt_id,
                "receiptId": receipt_id,
                "source": source,
                "deviceIds": sorted(device_ids),
                "deviceIdentifiers": sorted(identifiers),
                "measuredFrom": instant_text(min(moments)),
                "measuredTo": instant_text(max(moments)),
                "readings": len(readings),
                "sourceIds": [m.source_id for m in readings][:100],
                "parkedAt": parked_at,
            }

        update_item(self.container, receipt_id, receipt_id, record)

    def release(self, receipt_id: str) -> None:
        """The record's readings are all attributed now."""
        delete_if_present(self.container, receipt_id, receipt_id)

    def all(self) -> Iterator[dict[str, Any]]:
        for item in self.container.query_items("SELECT * FROM c ORDER BY c.id", enable_cross_partition_query=True):
            yield {**{k: v for k, v in item.items() if not k.startswith("_")}, "stale": self.is_stale(item)}

    def is_stale(self, item: dict[str, Any]) -> bool:
        return dt.datetime.fromisoformat(item["parkedAt"]) < self.clock() - self.lookback

    def waiting_for(self, device: dict[str, Any]) -> list[str]:
        """Receipt ids of the parked records this device's assignments now cover (within the
        look-back); the caller re-drives them."""
        assignments = assignments_of(device)
        items = self.container.query_items(
            "SELECT * FROM c WHERE ARRAY_CONTAINS(c.deviceIds, @device)",
            parameters=[{"name": "@device", "value": device["id"]}],
            enable_cross_partition_query=True,
        )
        return [item["receiptId"] for item in items if not self.is_stale(item) and _covered(item, assignments)]


def _covered(item: dict[str, Any], assignments: list[Assignment]) -> bool:
    start = dt.datetime.fromisoformat(item["measuredFrom"])
    end = dt.datetime.fromisoformat(item["measuredTo"])
    return any(a.covers(start) or a.covers(end) for a in assignments)
