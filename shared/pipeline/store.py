"""Where raw records live: the ingest queue (Azurite locally), the raw archive, the rejected
records and the poison queue. Built once per worker process and shared by every function."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from shared import names
from shared.clients.storage import container_client, queue_client
from shared.errors import DependencyError, NotFound
from shared.pipeline.envelope import (
    TENANT_ATTRIBUTE,
    RawEnvelope,
    batch_prefix,
    blob_path,
    is_batch,
    new_receipt_id,
)
from shared.settings import Settings
from shared.tenants import DEFAULT_TENANT

NDJSON = "application/x-ndjson"
# Azure Storage queue messages are at most 64 KiB *after* base64 encoding (4/3 growth).
QUEUE_MESSAGE_LIMIT_BYTES = 64 * 1024
INLINE_ENVELOPE_LIMIT_BYTES = QUEUE_MESSAGE_LIMIT_BYTES * 3 // 4 - 1024


@dataclass
class RawRecordStore:
    queue: QueueClient
    poison_queue: QueueClient
    archive: ContainerClient
    rejected: ContainerClient

    @classmethod
    def from_settings(cls, settings: Settings, *, fast: bool = False) -> RawRecordStore:
        """``fast``: for ingress, which answers 503 quickly rather than keep a sender waiting."""
        return cls(
            queue=queue_client(settings, names.RAW_QUEUE, fast=fast),
            poison_queue=queue_client(settings, names.RAW_POISON_QUEUE, fast=fast),
            archive=container_client(settings, names.RAW_CONTAINER, fast=fast),
            rejected=container_client(settings, names.REJECTED_CONTAINER, fast=fast),
        )

    def ensure_exists(self) -> None:
        """Creates the queues and containers (local stack; infra/ declares them in Azure)."""
        for queue in (self.queue, self.poison_queue):
            with contextlib.suppress(ResourceExistsError):
                queue.create_queue()
        for container in (self.archive, self.rejected):
            with contextlib.suppress(ResourceExistsError):
                container.create_container()

    # -- ingress ----------------------------------------------------------------------------
    def accept(
        self,
        *,
        source: str,
        format: str,  # noqa: A002 - the payload format, as in the route
        body: str,
        content_type: str,
        attributes: dict[str, str] | None = None,
        receipt_id: str | None = None,
    ) -> RawEnvelope:
        """Makes the payload durable and returns its envelope; only then may ingress answer.
        ``receipt_id``: one made beforehand (``new_receipt_id``), when something must name the
        record before it can be processed."""
        attributes = attributes or {}
        envelope = RawEnvelope(
            receipt_id=receipt_id or new_receipt_id(tenant=attributes.get(TENANT_ATTRIBUTE) or DEFAULT_TENANT),
            source=source,
            format=format,
            content_type=content_type,
            received_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            body=body,
            attributes=attributes,
        )
        self.enqueue(envelope)
        return envelope

    def enqueue(self, envelope: RawEnvelope) -> None:
        message = envelope.to_json().encode("utf-8")
        try:
            if len(message) > INLINE_ENVELOPE_LIMIT_BYTES and envelope.body is not None:
                # Claim check: the archive blob carries the payload, the message the reference.
                self.archive_body(envelope)
                message = envelope.without_body(blob_path(envelope.receipt_id)).to_json().encode("utf-8")
            self.queue.send_message(message)
        except DependencyError:
            raise
        except Exception as exc:  # any storage failure: the caller must not acknowledge
            raise DependencyError("could not persist the payload: storage is unavailable; retry") from exc

    # -- archive ----------------------------------------------------------------------------
    def archive_body(self, envelope: RawEnvelope) -> None:
        """Keeps one raw payload for replay in a blob of its own, under its receipt id: the
        claim check, written before the record is queued. Idempotent."""
        assert envelope.body is not None
        metadata = {
            "source": envelope.source,
            "format": envelope.format,
            "receivedat": envelope.received_at,
            "attributes": json.dumps(envelope.attributes),
        }
        with contextlib.suppress(ResourceExistsError):
            self.archive.upload_blob(
                blob_path(envelope.receipt_id),
                envelope.body.encode("utf-8"),
                overwrite=False,
                metadata=metadata,
                content_settings=_content_settings(envelope.content_type),
            )

    def archive_bodies(self, envelopes: Sequence[RawEnvelope]) -> list[str]:
        """Keeps the raw payloads of records processed together for replay, in one write per
        tenant and minute of arrival: an NDJSON blob of their envelopes (payload included), named
        by the first and last receipt id it holds. Returns where each record's payload is."""
        batches: dict[str, list[RawEnvelope]] = {}
        for envelope in envelopes:
            assert envelope.body is not None
            batches.setdefault(batch_prefix(envelope.receipt_id), []).append(envelope)
        where: dict[str, str] = {}
        for prefix, members in batches.items():
            receipts = sorted(e.receipt_id for e in members)
            # Unique: a re-delivered record can meet other records under the same first and last.
            name = f"{prefix}{receipts[0]}~{receipts[-1]}~{secrets.token_hex(6)}.ndjson"
            lines = "".join(replace(e, blob_name=None, failure=None).to_json() + "\n" for e in members)
            try:
                self.archive.upload_blob(
                    name, lines.encode("utf-8"), overwrite=False, content_settings=_content_settings(NDJSON)
                )
            except Exception as exc:  # any storage failure: the records must not be deleted
                raise DependencyError("could not archive the raw payloads: storage is unavailable") from exc
            where |= dict.fromkeys(receipts, name)
        return [where[e.receipt_id] for e in envelopes]

    def load_body(self, envelope: RawEnvelope) -> str:
        if envelope.body is not None:
            return envelope.body
        if envelope.blob_name is None:
            raise NotFound(f"raw record {envelope.receipt_id} has neither a body nor a blob")
        batches = _BatchIndex(self.archive)
        if is_batch(envelope.blob_name):
            found = batches.read(envelope.blob_name, envelope.receipt_id)
        else:
            try:
                return self.archive.download_blob(envelope.blob_name).readall().decode("utf-8")
            except ResourceNotFoundError:
                found = None
        found = found or batches.find(envelope.receipt_id)  # e.g. named by its receipt id
        if found is None or found[1].body is None:
            raise NotFound(f"raw payload {envelope.blob_name} is not in the archive")
        return found[1].body

    def archived_envelope(self, receipt_id: str) -> RawEnvelope:
        """Rebuilds the envelope of an archived payload, for replaying any past reading: the
        payload is referenced (its own blob, or the batch holding it), not copied."""
        return self._archived_envelope(receipt_id, _BatchIndex(self.archive))

    def archived_envelopes(self, receipt_ids: Iterable[str]) -> Iterator[RawEnvelope]:
        """``archived_envelope`` of each receipt id in turn, for replaying many: each minute's
        batches are listed once and each batch is read once."""
        batches = _BatchIndex(self.archive)
        for receipt_id in receipt_ids:
            yield self._archived_envelope(receipt_id, batches)

    def _archived_envelope(self, receipt_id: str, batches: _BatchIndex) -> RawEnvelope:
        blob = self.archive.get_blob_client(blob_path(receipt_id))
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            found = batches.find(receipt_id)
            if found is None:
                raise NotFound(f"no archived payload with receipt id {receipt_id}") from None
            return found[1].without_body(found[0])
        meta = props.metadata or {}
        attributes = json.loads(meta.get("attributes", "{}"))
        return RawEnvelope(
            receipt_id=receipt_id,
            source=meta.get("source", ""),
            format=meta.get("format", ""),
            content_type=props.content_settings.content_type or "application/octet-stream",
            received_at=meta.get("receivedat", ""),
            blob_name=blob_path(receipt_id),
            attributes=attributes,
        )

    # -- rejected records and poison ----------------------------------------------------------
    def reject(self, envelope: RawEnvelope, reason: str, details: Any = None) -> None:
        record = {
            "receiptId": envelope.receipt_id,
            "source": envelope.source,
            "format": envelope.format,
            "reason": reason,
            "details": details,
            "rejectedAt": dt.datetime.now(dt.UTC).isoformat(),
            "envelope": json.loads(
                envelope.without_body(envelope.blob_name or blob_path(envelope.receipt_id)).to_json()
            ),
        }
        self.rejected.upload_blob(
            f"{blob_path(envelope.receipt_id)}.json",
            json.dumps(record).encode(),
            overwrite=True,
            content_settings=_content_settings("application/json"),
        )

    def rejected_records(self) -> Iterator[dict[str, Any]]:
        for blob in self.rejected.list_blobs():
            yield json.loads(self.rejected.download_blob(blob.name).readall())

    def delete_rejected(self, receipt_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.rejected.delete_blob(f"{blob_path(receipt_id)}.json")

    def to_poison(self, envelope: RawEnvelope, reason: str, attempts: int) -> None:
        failure = {
            "reason": reason,
            "attempts": attempts,
            "failedAt": dt.datetime.now(dt.UTC).isoformat(),
        }
        # The poison message carries the payload only if it could not be archived.
        kept = envelope if envelope.blob_name is None else envelope.without_body(envelope.blob_name)
        self.poison_queue.send_message(kept.with_failure(failure).to_json().encode())


class _BatchIndex:
    """The archive batches read during one look-up or one replay: each minute's batches listed
    once, each batch downloaded once (replays are rare; writes are not)."""

    def __init__(self, archive: ContainerClient) -> None:
        self.archive = archive
        self._listings: dict[str, list[str]] = {}
        self._lines: dict[str, list[str]] = {}

    def find(self, receipt_id: str) -> tuple[str, RawEnvelope] | None:
        """The batch holding ``receipt_id`` and its envelope there: a batch's name gives the
        range of receipt ids it holds."""
        prefix = batch_prefix(receipt_id)
        if prefix not in self._listings:
            self._listings[prefix] = [blob.name for blob in self.archive.list_blobs(name_starts_with=prefix)]
        for name in self._listings[prefix]:
            first, _, rest = name[len(prefix) :].partition("~")
            if first <= receipt_id <= rest.partition("~")[0]:
                found = self.read(name, receipt_id)
                if found is not None:
                    return found
        return None

    def read(self, name: str, receipt_id: str) -> tuple[str, RawEnvelope] | None:
        if name not in self._lines:
            try:
                self._lines[name] = self.archive.download_blob(name).readall().decode("utf-8").splitlines()
            except ResourceNotFoundError:
                self._lines[name] = []
        marker = json.dumps({"receiptId": receipt_id}, separators=(",", ":"))[1:-1]
        for line in self._lines[name]:
            if marker in line:  # the payload inside a line is a JSON string: its quotes are escaped
                envelope = RawEnvelope.from_json(line)
                if envelope.receipt_id == receipt_id:
                    return name, envelope
        return None


def _content_settings(content_type: str) -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type=content_type)
