"""What became of every reading a partner sent: a receipt per accepted batch (Cosmos DB), opened
by the metrics API with each reading ``queued`` or ``rejected`` (with the reason), and settled
by the worker once the batch is processed: ``written`` (with the Observation's FHIR id),
``parked`` (waiting for an assignment), ``refused-by-consent`` (with the reason) or
``rejected``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

from azure.cosmos import ContainerProxy
from pydantic import Field

from shared.clients.cosmos import NoChange, read_or_none, update_item
from shared.clock import utc_now
from shared.errors import NotFound
from shared.records import Instant, Record

ReadingStatus = Literal["queued", "written", "parked", "refused-by-consent", "rejected"]


class ReceiptReading(Record):
    id: str = Field(description="the partner's own id of the reading")
    status: ReadingStatus
    fhir_id: str | None = Field(default=None, alias="fhirId", description="Observation/<id>, once written")
    reason: str | None = None


class Receipt(Record):
    id: str = Field(description="the receipt id")
    client_id: str = Field(alias="clientId")
    tenant_id: str = Field(alias="tenantId")
    patient_id: str = Field(alias="patientId")
    created_at: Instant = Field(alias="createdAt")
    settled_at: Instant | None = Field(default=None, alias="settledAt")
    readings: list[ReceiptReading]

    def public(self) -> dict[str, Any]:
        item = self.to_item()
        item.pop("clientId", None)
        return item


class ReceiptBook:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def open(
        self,
        receipt_id: str,
        client_id: str,
        tenant: str,
        patient_id: str,
        queued: Sequence[str],
        rejected: Sequence[tuple[str, str]],
    ) -> Receipt:
        readings = [ReceiptReading(id=i, status="queued") for i in queued]
        readings += [ReceiptReading(id=i, status="rejected", reason=reason) for i, reason in rejected]
        receipt = Receipt(
            id=receipt_id, client_id=client_id, tenant_id=tenant, patient_id=patient_id, created_at=self.clock(),
            readings=readings,
        )  # fmt: skip
        self.container.upsert_item(receipt.to_item())
        return receipt

    def settle(self, receipt_id: str, outcomes: dict[str, tuple[str, str | None]]) -> None:
        """Each reading's fate (status, FHIR id or reason), as the worker found it. A replay
        settles again, with what it found then."""

        def apply(item: dict[str, Any] | None) -> dict[str, Any]:
            if item is None:
                raise NoChange  # the receipt was not opened (its answer failed): nothing to tell
            receipt = Receipt.from_item(item)
            for reading in receipt.readings:
                if reading.id in outcomes:
                    status, detail = outcomes[reading.id]
                    reading.status = cast(ReadingStatus, status)
                    reading.fhir_id = detail if status == "written" else None
                    reading.reason = detail if status != "written" else None
            receipt.settled_at = self.clock()
            return receipt.to_item()

        update_item(self.container, receipt_id, receipt_id, apply)

    def get(self, receipt_id: str, client_id: str) -> Receipt:
        """The app's own receipt; another app's is not found."""
        item = read_or_none(self.container, receipt_id, receipt_id) if receipt_id else None
        if item is None or item.get("clientId") != client_id:
            raise NotFound(f"no receipt {receipt_id!r}")
        return Receipt.from_item(item)
