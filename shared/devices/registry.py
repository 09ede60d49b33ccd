"""The device registry: devices (one per provider + provider device id) and their assignments
to patients, each with a validity period. A reading belongs to the patient to whom its device
was assigned when it was measured.

One Cosmos item per device holds its assignment history, so every change is one conditional
replace (etag): two concurrent assignments cannot both win."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.cosmos import NoChange, filtered_query, update_item
from shared.clock import instant_text, utc_now
from shared.devices.models import DeviceRegistration
from shared.devices.types import registry_id
from shared.errors import BadRequest, Conflict, NotFound
from shared.measurement import DeviceIdentity, Measurement

_MAX_CONFLICT_RETRIES = 5


def _decode_continuation(token: str) -> str:
    """The API's continuation token is Cosmos DB's, base64url-encoded (URL-safe, opaque)."""
    try:
        decoded = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        json.loads(decoded)
    except (ValueError, UnicodeError):
        raise BadRequest("continuationToken is not valid") from None
    return decoded


@dataclass(frozen=True)
class Assignment:
    patient_id: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None

    def covers(self, moment: dt.datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)

    def to_item(self) -> dict[str, Any]:
        end = instant_text(self.valid_to) if self.valid_to is not None else None
        return {"patientId": self.patient_id, "from": instant_text(self.valid_from), "to": end}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Assignment:
        end = item.get("to")
        return cls(
            item["patientId"],
            dt.datetime.fromisoformat(item["from"]),
            dt.datetime.fromisoformat(end) if end else None,
        )


def _earlier(end: dt.datetime | None, moment: dt.datetime) -> dt.datetime:
    return moment if end is None else min(end, moment)


def assignments_of(device: dict[str, Any]) -> list[Assignment]:
    return [Assignment.from_item(item) for item in device.get("assignments", [])]


def patient_at(device: dict[str, Any], moment: dt.datetime) -> str | None:
    for assignment in assignments_of(device):
        if assignment.covers(moment):
            return assignment.patient_id
    return None


class DeviceRegistry:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def get(self, device_id: str) -> dict[str, Any]:
        try:
            item: dict[str, Any] = self.container.read_item(device_id, partition_key=device_id)
        except cosmos_errors.CosmosResourceNotFoundError:
            raise NotFound(f"no device with id {device_id!r}") from None
        return item

    def find(self, provider: str, provider_device_id: str) -> dict[str, Any] | None:
        try:
            return self.get(registry_id(provider, provider_device_id))
        except NotFound:
            return None

    def find_by_identity(self, identity: DeviceIdentity) -> dict[str, Any] | None:
        """The registered device a reading came from: any of its identifiers (IMEI, serial,
        the provider's id) may be the one the clinic registered."""
        for _, value in identity.identifiers:
            device = self.find(identity.source, value)
            if device is not None:
                return device
        return None

    def find_many(self, device_ids: list[str]) -> list[dict[str, Any] | None]:
        """The devices with these registry ids (None where there is none): one query."""
        unique = sorted(set(device_ids))
        found = {
            item["id"]: item
            for item in self.container.query_items(
                "SELECT * FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
                parameters=[{"name": "@ids", "value": unique}],
                enable_cross_partition_query=True,
            )
        }
        return [found.get(device_id) for device_id in device_ids]

    def register(self, registration: DeviceRegistration) -> tuple[dict[str, Any], bool]:
        """(device, created). Idempotent on provider + provider device id."""
        device_id = registry_id(registration.provider, registration.provider_device_id)
        now = instant_text(self.clock())
        item: dict[str, Any] = {
            "id": device_id,
            "provider": registration.provider,
            "providerDeviceId": registration.provider_device_id,
            "type": registration.type,
            "name": registration.name,
            "model": registration.model,
            "manufacturer": registration.manufacturer,
            "status": "active",
            "patientId": None,  # the patient of the open assignment, for filtering
            "assignments": [],
            "createdAt": now,
            "updatedAt": now,
        }
        try:
            return self.container.create_item(item), True
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
    ) -> tuple[list[dict[str, Any]], str | None]:
        query, parameters = filtered_query({"provider": provider, "patientId": patient_id, "status": status})
        pages = self.container.query_items(
            query,
            parameters=parameters,
            enable_cross_partition_query=True,
            max_item_count=page_size,
        ).by_page(_decode_continuation(continuation) if continuation else None)
        try:
            page = list(next(pages))
        except StopIteration:
            return [], None
        except cosmos_errors.CosmosHttpResponseError as exc:
            if exc.status_code == 400:
                raise BadRequest("continuationToken is not valid") from None
            raise
        token = getattr(pages, "continuation_token", None)
        return page, base64.urlsafe_b64encode(token.encode()).decode() if token else None

    def _update(self, device_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        """Read, change, conditional replace; again on a concurrent change. ``change`` returns
        None when there is nothing to do."""

        def apply(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise NotFound(f"no device with id {device_id!r}")
            updated = change(current)
            if updated is None:
                raise NoChange
            updated["updatedAt"] = instant_text(self.clock())
            return updated

        result = update_item(self.container, device_id, device_id, apply)
        assert result is not None  # apply raises rather than leave nothing
        return result

    def assign(self, device_id: str, patient_id: str, valid_from: dt.datetime | None = None) -> dict[str, Any]:
        start = valid_from or self.clock()

        def open_assignment(device: dict[str, Any]) -> dict[str, Any] | None:
            history = assignments_of(device)
            current = next((a for a in history if a.valid_to is None), None)
            if current is not None:
                if current.patient_id == patient_id:
                    return None  # already assigned to this patient: nothing to do
                raise Conflict(
                    "the device is assigned to another patient; unassign it first",
                    details={"deviceId": device_id},
                )
            latest_end = max((a.valid_to for a in history if a.valid_to is not None), default=None)
            if latest_end is not None and start < latest_end:
                raise Conflict(
                    "the new assignment would start before the previous one ended",
                    details={"previousEnd": instant_text(latest_end)},
                )
            device["assignments"] = [
                *device.get("assignments", []),
                {"patientId": patient_id, "from": instant_text(start), "to": None},
            ]
            device["patientId"] = patient_id
            return device

        return self._update(device_id, open_assignment)

    def reassign_period(
        self, device_id: str, patient_id: str, start: dt.datetime, end: dt.datetime | None
    ) -> dict[str, Any]:
        """A correction: [start, end) (open-ended without ``end``) belongs to ``patient_id``;
        whatever assignments overlapped it are clipped around it."""

        def rewrite(device: dict[str, Any]) -> dict[str, Any]:
            kept: list[Assignment] = []
            for a in assignments_of(device):
                if a.valid_from < start:
                    kept.append(Assignment(a.patient_id, a.valid_from, _earlier(a.valid_to, start)))
                if end is not None and (a.valid_to is None or a.valid_to > end):
                    kept.append(Assignment(a.patient_id, max(a.valid_from, end), a.valid_to))
            kept.append(Assignment(patient_id, start, end))
            kept.sort(key=lambda a: a.valid_from)
            device["assignments"] = [a.to_item() for a in kept]
            device["patientId"] = next((a.patient_id for a in kept if a.valid_to is None), None)
            return device

        return self._update(device_id, rewrite)

    def unassign(self, device_id: str, at: dt.datetime | None = None) -> dict[str, Any]:
        end = at or self.clock()

        def close(device: dict[str, Any]) -> dict[str, Any] | None:
            items = device.get("assignments", [])
            open_items = [item for item in items if item.get("to") is None]
            if not open_items:
                return None  # nothing open: unassigning again is harmless
            item = open_items[0]
            if end < dt.datetime.fromisoformat(item["from"]):
                raise Conflict("the assignment would end before it started")
            item["to"] = instant_text(end)
            device["patientId"] = None
            return device

        return self._update(device_id, close)


@dataclass
class Attribution:
    """Patient resolution for one raw record: a patient fixed by the ingress (an app session,
    a Withings consent) or the device's assignment at the measured time."""

    registry: DeviceRegistry
    fixed_patient: str | None = None
    # The worker's look-ups of many records at once (one query); the registry's reads otherwise.
    lookup: Callable[[list[str]], list[dict[str, Any] | None]] | None = None
    _devices: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def patient_for(self, measurement: Measurement) -> str | None:
        if self.fixed_patient:
            return self.fixed_patient
        identity = measurement.device
        if identity is None:
            return None
        if identity.key not in self._devices:
            self._devices[identity.key] = self._find(identity)
        device = self._devices[identity.key]
        return patient_at(device, measurement.effective_start) if device is not None else None

    def _find(self, identity: DeviceIdentity) -> dict[str, Any] | None:
        if self.lookup is None:
            return self.registry.find_by_identity(identity)
        candidates = self.lookup([registry_id(identity.source, value) for _, value in identity.identifiers])
        return next((device for device in candidates if device is not None), None)  # most specific first
