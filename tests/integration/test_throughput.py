"""Group commit in the worker, on the local stack: concurrent one-reading records share FHIR
batch bundles, each message is deleted only once its own readings are written, per-entry
refusals go back to their own record, a crash between the flush and the delete repeats
nothing; the consent cache's invalidation rule; no call that does nothing."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from shared.api import pipeline as pipeline_api
from shared.composition import AppContext, get_context, reset_context
from shared.consent.models import consent_id
from shared.consent.registry import ConsentCache
from shared.fhir.client import FhirClient
from shared.pipeline.batching import Batcher, GroupCommit
from shared.pipeline.store import RawRecordStore
from tests.helpers.clinic import FIXTURE_DEVICES, assign, deliver, payload_at
from tests.helpers.common import run_together
from tests.helpers.stack import FaultyProxy, drive_queue, put_patient, search

START = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


@pytest.fixture
def stack(clean_cosmos: AppContext, clean_fhir: str, store: RawRecordStore, admin_token: str) -> AppContext:
    put_patient(clean_fhir, "anna")
    for imei, device_type in FIXTURE_DEVICES.values():
        assert assign(admin_token, imei, device_type, "anna")[0] == 200
    return clean_cosmos


def received(store: RawRecordStore, count: int) -> list[Any]:
    messages = list(store.queue.receive_messages(max_messages=32, visibility_timeout=60))
    assert len(messages) == count
    return messages


def handle(context: AppContext, message: Any) -> str:
    return context.worker.handle(message.content, message.dequeue_count)


def deliver_weights(count: int) -> None:
    for n in range(count):
        deliver(payload_at("weight", f"group-{n}", START + dt.timedelta(minutes=n)))


def test_concurrent_records_share_one_batch_and_each_is_confirmed_before_it_returns(
    stack: AppContext, store: RawRecordStore, fhir_url: str, monkeypatch: pytest.MonkeyPatch
):
    deliver_weights(24)
    with FaultyProxy(fhir_url, []) as proxy:
        monkeypatch.setenv("FHIR_URL", proxy.url)
        monkeypatch.setenv("FHIR_GROUP_WAIT_MS", "2000")  # long enough for the 24 to meet
        reset_context()
        context = get_context()  # a worker process of its own, writing through the proxy
        messages = received(store, 24)
        outcomes = run_together([functools.partial(handle, context, m) for m in messages])
        flushes = proxy.seen["pass"]
    monkeypatch.undo()
    reset_context()
    assert outcomes == ["processed"] * 24
    assert flushes < 24 / 4  # one round holds many records (usually exactly one)
    assert context.group_commit.requests == flushes
    weights = search(fhir_url, "Observation", code="29463-7", _count="100")
    assert len(weights) == 24


def test_per_entry_refusals_go_back_to_their_own_record_only(stack: AppContext, store: RawRecordStore):
    written: list[list[str]] = []

    class HalfRefusingFhir:
        """The second half of every batch is refused by the server (400), the rest written."""

        def write(self, resources, *, raise_on_rejected=True):
            from shared.fhir.client import BatchReport

            report = BatchReport()
            keep = len(resources) // 2
            written.append([r["id"] for r in resources[:keep]])
            report.written = keep
            report.rejected = [(f"{r['resourceType']}/{r['id']}", "HTTP 400: invalid") for r in resources[keep:]]
            return report

    group = GroupCommit(HalfRefusingFhir(), max_entries=500, max_wait_s=30.0)
    batches = [[{"resourceType": "Observation", "id": f"r{n}-{k}"} for k in range(2)] for n in range(4)]
    everyone_in = threading.Barrier(len(batches))  # all four records are in flight before any writes
    outcomes = run_together([functools.partial(_outcome, group, batch, everyone_in) for batch in batches])
    assert len(written) == 1  # one flush for the four callers
    assert outcomes.count("written") == 2
    assert outcomes.count("rejected") == 2


def _outcome(group: GroupCommit, batch: list[dict[str, Any]], everyone_in: threading.Barrier) -> str:
    from shared.errors import FhirRejected

    with group.participant():
        everyone_in.wait()
        try:
            group.write(batch)
        except FhirRejected:
            return "rejected"
    return "written"


def test_a_lone_record_is_written_at_once_and_a_round_waits_only_for_records_in_flight():
    flushed: list[int] = []

    def work(items: list[int]) -> list[int]:
        flushed.append(len(items))
        return items

    batcher: Batcher[int, int] = Batcher(work, max_items=500, max_wait_s=60.0, wait_for_participants=True)
    with batcher.participant():
        assert batcher.submit([1]) == [1]  # nobody else in flight: no 60 s wait
    assert flushed == [1]


def test_records_the_host_starts_one_after_another_share_a_round_that_closes_once_they_stop_arriving():
    rounds: list[list[str]] = []

    def work(items: list[str]) -> list[str]:
        rounds.append(items)
        return items

    # Without a settle time the first record, alone in flight when it hands in, goes alone.
    batcher: Batcher[str, str] = Batcher(work, max_items=100, max_wait_s=60.0, wait_for_participants=True, settle_s=1.0)

    def record(name: str) -> list[str]:
        with batcher.participant():
            return batcher.submit([name])

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(record, "first")
        with batcher._lock:  # the first record has handed in: its round is gathering
            assert batcher._lock.wait_for(lambda: batcher._count == 1, timeout=30)
        second = pool.submit(record, "second")
        assert first.result(timeout=30) == ["first"]  # well before max_wait_s
        assert second.result(timeout=30) == ["second"]
    assert rounds == [["first", "second"]]


def test_a_look_up_round_closes_once_callers_stop_arriving_not_at_its_longest_wait():
    batcher: Batcher[str, str] = Batcher(
        lambda ids: [i.upper() for i in ids], max_items=100, max_wait_s=60.0, settle_s=0.1
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(batcher.submit, ["device-1"]).result(timeout=30) == ["DEVICE-1"]


def test_a_failed_flush_fails_every_record_of_the_round_and_the_host_retries_each(
    stack: AppContext, store: RawRecordStore, fhir_url: str, monkeypatch: pytest.MonkeyPatch
):
    deliver_weights(6)
    with FaultyProxy(fhir_url, ["503"] * 3) as proxy:
        monkeypatch.setenv("FHIR_URL", proxy.url)
        monkeypatch.setenv("FHIR_MAX_ATTEMPTS", "1")
        reset_context()
        try:
            deliveries = drive_queue(store, pipeline_api.process_raw_record)
        finally:
            monkeypatch.undo()
            reset_context()
    assert deliveries > 6  # the failed round was retried
    assert len(search(fhir_url, "Observation", code="29463-7", _count="100")) == 6
    assert list(store.poison_queue.peek_messages()) == []


def test_a_crash_between_the_flush_and_the_delete_repeats_nothing(
    stack: AppContext, store: RawRecordStore, fhir_url: str
):
    deliver_weights(3)
    for message in received(store, 3):
        assert handle(stack, message) == "processed"  # written ... and the process dies: no delete
        store.queue.update_message(message, visibility_timeout=0)
    assert drive_queue(store, pipeline_api.process_raw_record) == 3  # the host delivers them again
    for n in range(3):
        found = search(fhir_url, "Observation", identifier=f"urn:iomt-hub:medisante:reading|group-{n}/bodyWeight")
        assert len(found) == 1


def test_a_record_never_parked_issues_no_release(stack: AppContext, store: RawRecordStore, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(type(stack.parked), "release", lambda self, receipt: calls.append(receipt))
    deliver_weights(1)
    assert drive_queue(store, pipeline_api.process_raw_record) == 1
    assert calls == []  # the first delivery of a receipt cannot have been parked


def status(cache: ConsentCache) -> str:
    record = cache.find("anna", "medisante")
    assert record is not None
    return str(record.status)


def test_a_revocation_elsewhere_stops_writes_within_the_cache_time(stack: AppContext):
    now = [1000.0]
    cache = ConsentCache(stack.consents, ttl_s=30, clock=lambda: now[0])
    assert status(cache) == "active"
    other_instance = stack.consents.__class__(stack.consents.container)  # its changes are not seen here
    other_instance.revoke(consent_id("medisante", "anna"), "clinic")
    now[0] += 29
    assert status(cache) == "active"  # within CONSENT_CACHE_SECONDS
    now[0] += 2
    assert status(cache) == "revoked"  # past it: refused
    stack_cache = ConsentCache(stack.consents, ttl_s=30, clock=lambda: now[0])
    assert status(stack_cache) == "revoked"
    from shared.consent.models import ConsentGrant

    stack.consents.grant(
        ConsentGrant(patient_id="anna", source="medisante", scopes=["body-weight"], attestation="clinic"), "clinic"
    )
    assert status(stack_cache) == "active"  # this process's change: at once
    other_instance.revoke(consent_id("medisante", "anna"), "clinic")
    other_instance.grant(
        ConsentGrant(patient_id="anna", source="medisante", scopes=["body-weight"], attestation="clinic"), "clinic"
    )
    never_active = ConsentCache(stack.consents, ttl_s=30, clock=lambda: now[0])
    assert never_active.find("bob", "medisante") is None  # not consented: read again every time
    other_instance.grant(
        ConsentGrant(patient_id="bob", source="medisante", scopes=["body-weight"], attestation="clinic"), "clinic"
    )
    assert never_active.find("bob", "medisante") is not None  # a grant elsewhere applies at once


def test_the_batcher_flushes_when_full_without_waiting():
    rounds: list[int] = []

    def work(items: list[int]) -> list[int]:
        rounds.append(len(items))
        return [item * 2 for item in items]

    batcher: Batcher[int, int] = Batcher(work, max_items=4, max_wait_s=60.0)
    results = run_together([functools.partial(batcher.submit, [n]) for n in range(4)])
    assert sorted(r[0] for r in results) == [0, 2, 4, 6]
    assert rounds == [4]  # full at 4 items: no 60 s wait


def test_requests_are_counted_by_the_real_client(fhir_url: str):
    client = FhirClient(fhir_url)
    group = GroupCommit(client, max_entries=500, max_wait_s=0.0)
    patient = {"resourceType": "Patient", "id": "group-p"}
    assert group.write([patient]).written == 1
    assert requests.get(f"{fhir_url}/Patient/group-p", timeout=5).status_code == 200
    assert group.requests == 1


def test_importing_the_app_imports_no_sdk_or_jwt_library():
    """Every cold start of every function imports function_app: the SDKs load on first use."""
    import subprocess
    import sys

    from tests.helpers.common import REPO

    probe = (
        "import sys, function_app; "
        "print(sorted({m for m in sys.modules if m.split('.')[0] in ('jwt', 'authlib', 'requests', 'pydantic')"
        " or m.startswith(('azure.cosmos', 'azure.keyvault', 'azure.identity', 'azure.storage'))}))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
