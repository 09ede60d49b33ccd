"""Re-drive raw records: from the poison queue, from the rejected records, or any archived
payload by its receipt id. Replays go through the ingest queue like a new delivery, and the
FHIR writes are idempotent, so replaying twice is harmless."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shared.errors import NotFound
from shared.pipeline.envelope import RawEnvelope
from shared.pipeline.store import RawRecordStore

_VISIBILITY_S = 300

OnEach = Callable[[str], None] | None  # told each receipt id replayed (the CLI's progress)


def replay_poison(
    store: RawRecordStore, limit: int | None = None, on_each: OnEach = None, tenant: str | None = None
) -> list[str]:
    """The poison queue's records (only ``tenant``'s, when one is named: the others stay)."""
    replayed: list[str] = []
    while limit is None or len(replayed) < limit:
        batch = list(
            store.poison_queue.receive_messages(messages_per_page=32, visibility_timeout=_VISIBILITY_S, max_messages=32)
        )
        if not batch:
            break
        for message in batch:
            if limit is not None and len(replayed) >= limit:
                # Leave the rest for the next run: make them visible again at once.
                store.poison_queue.update_message(message, visibility_timeout=0)
                continue
            envelope = RawEnvelope.from_json(message.content).with_failure(None).redriven()
            if tenant is not None and envelope.tenant != tenant:
                store.poison_queue.update_message(message, visibility_timeout=0)
                continue
            store.enqueue(envelope)
            store.poison_queue.delete_message(message)
            replayed.append(envelope.receipt_id)
            if on_each is not None:
                on_each(envelope.receipt_id)
    return replayed


def replay_rejected(
    store: RawRecordStore,
    receipt_ids: Iterable[str] | None = None,
    on_each: OnEach = None,
    tenant: str | None = None,
) -> list[str]:
    wanted = set(receipt_ids) if receipt_ids is not None else None
    replayed: list[str] = []
    chosen = [r["receiptId"] for r in store.rejected_records() if wanted is None or r["receiptId"] in wanted]
    for envelope in store.archived_envelopes(chosen):
        receipt_id = envelope.receipt_id
        if tenant is not None and envelope.tenant != tenant:
            continue
        store.enqueue(envelope.redriven())
        store.delete_rejected(receipt_id)
        replayed.append(receipt_id)
        if on_each is not None:
            on_each(receipt_id)
    return replayed


def replay_archived(
    store: RawRecordStore, receipt_ids: Iterable[str], on_each: OnEach = None, tenant: str | None = None
) -> list[str]:
    replayed = []
    for envelope in store.archived_envelopes(receipt_ids):
        receipt_id = envelope.receipt_id
        if tenant is not None and envelope.tenant != tenant:  # not that tenant's: as if absent
            raise NotFound(f"no archived payload with receipt id {receipt_id} in tenant {tenant}")
        store.enqueue(envelope.redriven())
        replayed.append(receipt_id)
        if on_each is not None:
            on_each(receipt_id)
    return replayed
