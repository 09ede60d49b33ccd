"""The device registry: devices (one per provider + provider device id) and their assignments
to patients, each with a validity period. A reading belongs to the patient to whom its device
was assigned when it was measured.

One Cosmos item per device holds its assignment history, so every change is one conditional
replace (etag): two concurrent assignments cannot both win."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.cosmos import (
    NoChange,
    decode_continuation,
    encode_continuation,
    filtered_query,
    read_or_none,
    update_item,
)
from shared.clock import instant_text, utc_now
from shared.devices.models import DeviceRegistration
from shared.devices.records import AssignmentRecord, DeviceRecord
from shared.devices.types import registry_id
from shared.errors import BadRequest, Conflict, NotFound
from shared.measurement import DeviceIdentity
from shared.tenants import DEFAULT_TENANT


class DeviceRegistry:
    """One tenant's devices: a device of another tenant is not found, by id or by serial."""

    def __init__(
        self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now, tenant: str = DEFAULT_TENANT
    ) -> None:
        self.container = container
        self.clock = clock
        self.tenant = tenant

    def for_tenant(self, tenant: str) -> DeviceRegistry:
        return self if tenant == self.tenant else DeviceRegistry(self.container, self.clock, tenant)

    def registry_id(self, provider: str, provider_device_id: str) -> str:
        return registry_id(provider, provider_device_id, self.tenant)

    def _mine(self, item: dict[str, object] | None) -> DeviceRecord | None:
        device = DeviceRecord.from_item(item) if item is not None else None
        return device if device is not None and device.tenant_id == self.tenant else None

    def get(self, device_id: str) -> DeviceRecord:
        device = self._mine(read_or_none(self.container, device_id, device_id))
        if device is None:
            raise NotFound(f"no device with id {device_id!r}")
        return device

    def find(self, provider: str, provider_device_id: str) -> DeviceRecord | None:
        try:
            return self.get(self.registry_id(provider, provider_device_id))
        except NotFound:
            return None

    def find_by_identity(self, identity: DeviceIdentity) -> DeviceRecord | None:
        """The registered device a reading came from: any of its identifiers (IMEI, serial,
        the provider's id) may be the one the clinic registered."""
        for _, value in identity.identifiers:
            device = self.find(identity.source, value)
            if device is not None:
                return device
        return None

    def find_many(self, device_ids: list[str]) -> list[DeviceRecord | None]:
        """The devices with these registry ids (None where there is none): one query."""
        unique = sorted(set(device_ids))
        items = self.container.query_items(
            "SELECT * FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
            parameters=[{"name": "@ids", "value": unique}],
            enable_cross_partition_query=True,
        )
        found = {device.id: device for device in map(DeviceRecord.from_item, items)}
        return [found.get(device_id) for device_id in device_ids]

    def register(self, registration: DeviceRegistration) -> tuple[DeviceRecord, bool]:
        """(device, created). Idempotent on provider + provider device id."""
        device_id = self.registry_id(registration.provider, registration.provider_device_id)
        now = self.clock()
        device = DeviceRecord(
            id=device_id,
            tenant_id=self.tenant,
            provider=registration.provider,
            provider_device_id=registration.provider_device_id,
            type=registration.type,
            name=registration.name,
            model=registration.model,
            manufacturer=registration.manufacturer,
            created_at=now,
            updated_at=now,
        )
        try:
            return DeviceRecord.from_item(self.container.create_item(device.to_item())), True
        except cosmos_errors.CosmosResourceExistsError:
            return self.get(device_id), False

    def list(
        self,
        *,
        provider: str | None = None,
        patient_id: str | None = None,
        status: str | None = None,
        page_size: int = 50,
        continuation: str | None = None,
    ) -> tuple[list[DeviceRecord], str | None]:
        filters = {"provider": provider, "patientId": patient_id, "status": status}
        query, parameters = filtered_query(filters, self.tenant)
        pages = self.container.query_items(
            query,
            parameters=parameters,
            enable_cross_partition_query=True,
            max_item_count=page_size,
        ).by_page(decode_continuation(continuation) if continuation else None)
        try:
            page = [DeviceRecord.from_item(item) for item in next(pages)]
        except StopIteration:
            return [], None
        except cosmos_errors.CosmosHttpResponseError as exc:
            if exc.status_code == 400:
                raise BadRequest("continuationToken is not valid") from None
            raise
        return page, encode_continuation(getattr(pages, "continuation_token", None))

    def _update(self, device_id: str, change: Callable[[DeviceRecord], DeviceRecord | None]) -> DeviceRecord:
        """Read, change, conditional replace; again on a concurrent change. ``change`` returns
        None when there is nothing to do."""

        def apply(current: dict[str, object] | None) -> dict[str, object]:
            device = self._mine(current)
            if device is None:
                raise NotFound(f"no device with id {device_id!r}")
            updated = change(device)
            if updated is None:
                raise NoChange
            updated.updated_at = self.clock()
            return updated.to_item()

        result = update_item(self.container, device_id, device_id, apply)
        assert result is not None  # apply raises rather than leave nothing
        return DeviceRecord.from_item(result)

    def assign(self, device_id: str, patient_id: str, valid_from: dt.datetime | None = None) -> DeviceRecord:
        start = valid_from or self.clock()

        def open_assignment(device: DeviceRecord) -> DeviceRecord | None:
            current = device.open_assignment
            if current is not None:
                if current.patient_id == patient_id:
                    return None  # already assigned to this patient: nothing to do
                raise Conflict(
                    "the device is assigned to another patient; unassign it first",
                    details={"deviceId": device_id},
                )
            latest_end = device.latest_end
            if latest_end is not None and start < latest_end:
                raise Conflict(
                    "the new assignment would start before the previous one ended",
                    details={"previousEnd": instant_text(latest_end)},
                )
            device.assignments.append(AssignmentRecord(patient_id=patient_id, valid_from=start))
            device.patient_id = patient_id
            return device

        return self._update(device_id, open_assignment)

    def reassign_period(
        self, device_id: str, patient_id: str, start: dt.datetime, end: dt.datetime | None
    ) -> DeviceRecord:
        """A correction: [start, end) (open-ended without ``end``) belongs to ``patient_id``;
        whatever assignments overlapped it are clipped around it."""

        def rewrite(device: DeviceRecord) -> DeviceRecord:
            kept: list[AssignmentRecord] = []
            for a in device.assignments:
                if a.valid_from < start:
                    clipped = start if a.valid_to is None else min(a.valid_to, start)
                    kept.append(AssignmentRecord(patient_id=a.patient_id, valid_from=a.valid_from, valid_to=clipped))
                if end is not None and (a.valid_to is None or a.valid_to > end):
                    after = max(a.valid_from, end)
                    kept.append(AssignmentRecord(patient_id=a.patient_id, valid_from=after, valid_to=a.valid_to))
            kept.append(AssignmentRecord(patient_id=patient_id, valid_from=start, valid_to=end))
            kept.sort(key=lambda a: a.valid_from)
            device.assignments = kept
            device.patient_id = next((a.patient_id for a in kept if a.valid_to is None), None)
            return device

        return self._update(device_id, rewrite)

    def unassign(self, device_id: str, at: dt.datetime | None = None) -> DeviceRecord:
        end = at or self.clock()

        def close(device: DeviceRecord) -> DeviceRecord | None:
            current = device.open_assignment
            if current is None:
                return None  # nothing open: unassigning again is harmless
            if end < current.valid_from:
                raise Conflict("the assignment would end before it started")
            current.valid_to = end
            device.patient_id = None
            return device

        return self._update(device_id, close)
