"""The raw record that travels on the ingest queue: the payload exactly as received (inline,
or by reference to its archived blob above the queue's size limit) and where it came from."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import InvalidPayload
from shared.tenants import DEFAULT_TENANT

ENVELOPE_VERSION = 1
REDRIVEN_ATTRIBUTE = "redriven"
TENANT_ATTRIBUTE = "tenantId"  # absent: the default tenant (every record before tenants existed)


def new_receipt_id(now: dt.datetime | None = None, tenant: str = DEFAULT_TENANT) -> str:
    """Sortable by arrival time, unguessable, and safe as a blob name; a tenant's begins with
    ``<tenant>.`` (the default tenant's as before tenants)."""
    moment = now or dt.datetime.now(dt.UTC)
    receipt = f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{secrets.token_hex(8)}"
    return receipt if tenant == DEFAULT_TENANT else f"{tenant}.{receipt}"


def blob_path(receipt_id: str) -> str:
    """Where a raw record's blobs live: under its tenant's prefix (``clinic-a/clinic-a.2026...``),
    at the top for the default tenant."""
    tenant, dot, _ = receipt_id.partition(".")
    return f"{tenant}/{receipt_id}" if dot else receipt_id


# No tenant id (``[a-z0-9][a-z0-9-]*``) or receipt id (a timestamp) begins with "_".
ARCHIVE_BATCHES = "_batches"


def batch_prefix(receipt_id: str) -> str:
    """Where the archive batches that may hold a record live: under its tenant's prefix, then
    by the minute it arrived (``_batches/20261203T0852/``), so a look-up lists one minute."""
    tenant, dot, stamp = receipt_id.partition(".")
    root = f"{tenant}/" if dot else ""
    return f"{root}{ARCHIVE_BATCHES}/{(stamp if dot else receipt_id)[:13]}/"


def is_batch(blob_name: str) -> bool:
    return f"{ARCHIVE_BATCHES}/" in blob_name


@dataclass(frozen=True)
class RawEnvelope:
    receipt_id: str
    source: str
    format: str
    content_type: str
    received_at: str
    body: str | None = None
    blob_name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    failure: dict[str, Any] | None = None
    attempt: int = field(default=1, compare=False)  # this delivery's try (the queue's dequeue count)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "v": ENVELOPE_VERSION,
            "receiptId": self.receipt_id,
            "source": self.source,
            "format": self.format,
            "contentType": self.content_type,
            "receivedAt": self.received_at,
            "attributes": self.attributes,
        }
        if self.body is not None:
            data["body"] = self.body
        if self.blob_name is not None:
            data["blob"] = self.blob_name
        if self.failure is not None:
            data["failure"] = self.failure
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> RawEnvelope:
        try:
            data = json.loads(text)
            return cls(
                receipt_id=str(data["receiptId"]),
                source=str(data["source"]),
                format=str(data["format"]),
                content_type=str(data["contentType"]),
                received_at=str(data["receivedAt"]),
                body=data.get("body"),
                blob_name=data.get("blob"),
                attributes={str(k): str(v) for k, v in (data.get("attributes") or {}).items()},
                failure=data.get("failure"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidPayload(
                "not a raw-record envelope (a JSON object with receiptId, source, format, …)"
            ) from None

    def without_body(self, blob_name: str) -> RawEnvelope:
        return replace(self, body=None, blob_name=blob_name)

    @property
    def tenant(self) -> str:
        return self.attributes.get(TENANT_ATTRIBUTE) or DEFAULT_TENANT

    @property
    def seen_before(self) -> bool:
        """Processed before, so it may have left a parked item: a retry, or a re-drive."""
        return self.attempt > 1 or self.attributes.get(REDRIVEN_ATTRIBUTE) == "1"

    def redriven(self) -> RawEnvelope:
        return replace(self, attributes={**self.attributes, REDRIVEN_ATTRIBUTE: "1"})

    def with_failure(self, failure: dict[str, Any] | None) -> RawEnvelope:
        return replace(self, failure=failure)
