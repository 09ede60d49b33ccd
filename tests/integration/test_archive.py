"""The raw archive on Azurite: the payloads of the records one worker process runs at once are
archived in one write (an NDJSON batch per tenant and minute of arrival), and every one of them
can still be found and replayed by its receipt id alone."""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest

from shared.api import pipeline as pipeline_api
from shared.composition import AppContext
from shared.pipeline import replay
from shared.pipeline.batching import Batcher, GroupArchive
from shared.pipeline.envelope import TENANT_ATTRIBUTE, RawEnvelope, blob_path, is_batch, new_receipt_id
from shared.pipeline.store import RawRecordStore
from shared.pipeline.worker import ProcessingResult, RawRecordWorker
from tests.helpers.clinic import fixture_text
from tests.helpers.common import run_together
from tests.helpers.stack import drive_queue


def envelope_at(moment: dt.datetime, body: str, tenant: str = "default") -> RawEnvelope:
    attributes = {} if tenant == "default" else {TENANT_ATTRIBUTE: tenant}
    return RawEnvelope(
        receipt_id=new_receipt_id(moment, tenant),
        source="medisante",
        format="medisante-json",
        content_type="application/json",
        received_at=moment.isoformat(),
        body=body,
        attributes=attributes,
    )


def test_concurrent_records_are_archived_in_shared_writes_and_each_replays_by_its_receipt(
    context: AppContext, store: RawRecordStore
):
    bodies = [fixture_text("weight").replace("f1e2d3c4", f"c{n:07d}") for n in range(24)]
    for body in bodies:
        store.accept(source="medisante", format="medisante-json", body=body, content_type="application/json")
    messages = list(store.queue.receive_messages(max_messages=32, visibility_timeout=60))
    assert len(messages) == 24
    seen: dict[str, str] = {}
    lock = threading.Lock()

    def keep(envelope: RawEnvelope, body: str) -> ProcessingResult:
        with lock:
            seen[envelope.receipt_id] = body
        return ProcessingResult(written=1)

    group = GroupArchive(store.archive_bodies, max_records=100, max_wait_s=2.0)
    worker = RawRecordWorker(store=store, processors={"medisante": keep}, max_attempts=3, archive=group)
    outcomes = run_together([functools.partial(worker.handle, m.content, m.dequeue_count or 1) for m in messages])
    assert outcomes == ["processed"] * 24
    assert group.writes < 24 / 4  # the records in flight share their archive writes
    assert sorted(seen.values()) == sorted(bodies)
    for receipt_id, body in seen.items():
        archived = store.archived_envelope(receipt_id)
        assert archived.blob_name is not None
        assert is_batch(archived.blob_name)
        assert (archived.receipt_id, archived.body, store.load_body(archived)) == (receipt_id, None, body)


def test_a_batch_holds_one_tenants_minute_and_a_look_up_finds_each_record_in_it(store: RawRecordStore):
    minute = dt.datetime.now(dt.UTC).replace(second=59, microsecond=0)
    # A payload that quotes another record's receipt id must not be mistaken for it.
    later = envelope_at(minute + dt.timedelta(seconds=1), "{}")
    decoy = json.dumps({"note": json.dumps({"receiptId": later.receipt_id})})
    envelopes = [envelope_at(minute, decoy), later, envelope_at(minute, '{"a": 1}', tenant="clinic-a")]
    where = store.archive_bodies(envelopes)
    assert len(set(where)) == 3  # two minutes of the default tenant, one of clinic-a
    assert where[2].startswith("clinic-a/_batches/")
    assert not where[0].startswith("clinic-a/")
    for envelope, name in zip(envelopes, where, strict=True):
        archived = store.archived_envelope(envelope.receipt_id)
        assert archived == envelope.without_body(name)
        assert store.load_body(archived) == envelope.body


def test_a_message_naming_the_receipts_own_blob_still_finds_a_batched_payload(store: RawRecordStore):
    envelope = envelope_at(dt.datetime.now(dt.UTC), fixture_text("weight"))
    store.archive_bodies([envelope])
    # As the poison and rejected records referenced payloads before the archive was batched.
    assert store.load_body(envelope.without_body(blob_path(envelope.receipt_id))) == fixture_text("weight")


def test_replaying_many_records_lists_their_minute_once_and_reads_each_batch_once(
    store: RawRecordStore, monkeypatch: pytest.MonkeyPatch
):
    minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    rounds = [[envelope_at(minute + dt.timedelta(seconds=r), f'{{"n": {r}{n}}}') for n in range(5)] for r in range(2)]
    names = [store.archive_bodies(envelopes)[0] for envelopes in rounds]
    calls: list[str] = []

    def counted(name: str) -> Callable[..., Any]:  # the real call, counted
        call = getattr(store.archive, name)

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return call(*args, **kwargs)

        return counting

    monkeypatch.setattr(store.archive, "list_blobs", counted("list_blobs"))
    monkeypatch.setattr(store.archive, "download_blob", counted("download_blob"))
    receipts = [e.receipt_id for envelopes in rounds for e in envelopes]
    replayed = replay.replay_archived(store, receipts)
    assert replayed == receipts
    assert sorted(calls) == ["download_blob", "download_blob", "list_blobs"]
    queued = [RawEnvelope.from_json(m.content) for m in store.queue.receive_messages(max_messages=32)]
    assert sorted((e.receipt_id, e.blob_name) for e in queued) == sorted(
        (e.receipt_id, name) for envelopes, name in zip(rounds, names, strict=True) for e in envelopes
    )
    bodies = {e.receipt_id: e.body for envelopes in rounds for e in envelopes}
    assert {e.receipt_id: store.load_body(e) for e in queued} == bodies


def test_a_record_never_archived_is_not_found_by_its_receipt(store: RawRecordStore):
    from shared.errors import NotFound

    missing = envelope_at(dt.datetime.now(dt.UTC), "{}")
    with pytest.raises(NotFound, match=missing.receipt_id):
        store.archived_envelope(missing.receipt_id)
    with pytest.raises(NotFound):
        store.load_body(missing.without_body(blob_path(missing.receipt_id)))


def test_when_the_archive_cannot_be_written_the_poison_message_keeps_the_payload(
    context: AppContext, store: RawRecordStore
):
    from shared.clients.storage import container_client

    broken = RawRecordStore(
        queue=store.queue,
        poison_queue=store.poison_queue,
        archive=container_client(context.settings, "no-such-container"),  # every write is refused
        rejected=store.rejected,
    )
    envelope = store.accept(
        source="medisante", format="medisante-json", body=fixture_text("weight"), content_type="application/json"
    )
    worker = RawRecordWorker(store=broken, processors={}, max_attempts=2)

    def handle(msg: func.QueueMessage) -> None:
        worker.handle(msg.get_body(), msg.dequeue_count or 1)

    assert drive_queue(store, handle) == 2
    [poisoned] = store.poison_queue.peek_messages()
    kept = RawEnvelope.from_json(poisoned.content)
    assert (kept.receipt_id, kept.body) == (envelope.receipt_id, fixture_text("weight"))
    assert kept.failure is not None
    assert kept.failure["attempts"] == 2
    assert "could not archive" in kept.failure["reason"]

    assert replay.replay_poison(store) == [envelope.receipt_id]  # the archive is back
    assert drive_queue(store, pipeline_api.process_raw_record) == 1
    assert store.load_body(store.archived_envelope(envelope.receipt_id)) == fixture_text("weight")


def test_a_round_waits_while_the_previous_one_is_written_so_callers_one_by_one_meet():
    rounds: list[list[int]] = []
    writing = threading.Event()
    release = threading.Event()

    def work(items: list[int]) -> list[int]:
        rounds.append(items)
        if len(rounds) == 1:
            writing.set()
            release.wait(30)
        return items

    batcher: Batcher[int, int] = Batcher(
        work, max_items=100, max_wait_s=30.0, wait_for_participants=True, one_at_a_time=True
    )
    first = threading.Thread(target=batcher.submit, args=([0],))
    first.start()
    assert writing.wait(30)
    later = [threading.Thread(target=batcher.submit, args=([n],)) for n in range(1, 6)]
    for thread in later:
        thread.start()
    with batcher._lock:  # every later caller has joined the next round
        assert batcher._lock.wait_for(lambda: batcher._count == 5, timeout=30)
    release.set()
    for thread in (first, *later):
        thread.join(30)
    assert [sorted(r) for r in rounds] == [[0], [1, 2, 3, 4, 5]]
