"""The durable ingestion pipeline on Azurite: accept before answering, claim check, worker,
rejected records, poison queue with the reason, replay."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from shared.api import medisante as medisante_api
from shared.api import pipeline as pipeline_api
from shared.composition import AppContext
from shared.consent.models import ConsentGrant
from shared.errors import DependencyError
from shared.pipeline import replay
from shared.pipeline.envelope import RawEnvelope
from shared.pipeline.processing import PATIENT_ATTRIBUTE
from shared.pipeline.store import INLINE_ENVELOPE_LIMIT_BYTES, RawRecordStore
from shared.pipeline.worker import ProcessingResult, RawRecordWorker
from tests.helpers.common import FIXTURES, MEDISANTE_KEY, http_request
from tests.helpers.stack import drive_queue, search

BP_FIXTURE = FIXTURES / "medisante" / "blood-pressure.json"


def _webhook(body: bytes):
    return medisante_api.medisante_webhook(
        http_request(
            "POST",
            "http://localhost/api/health-data/medisante/medisante-json",
            body=body,
            headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/json"},
            route_params={"format": "medisante-json"},
        )
    )


def test_accepted_payload_is_on_the_queue_before_the_answer(store: RawRecordStore):
    response = _webhook(BP_FIXTURE.read_bytes())
    assert response.status_code == 202
    receipt = json.loads(response.get_body())["receiptId"]
    messages = list(store.queue.peek_messages(max_messages=32))
    assert len(messages) == 1
    envelope = RawEnvelope.from_json(messages[0].content)
    assert envelope.receipt_id == receipt
    assert envelope.body == BP_FIXTURE.read_text()


@pytest.mark.usefixtures("clean_fhir")
def test_worker_writes_observations_for_a_record_with_a_patient(
    store: RawRecordStore, fhir_url: str, clean_cosmos: AppContext
):
    grant = ConsentGrant(patient_id="pipeline-p1", source="medisante", scopes=["blood-pressure", "heart-rate"])
    clean_cosmos.consents.grant(grant, "test")
    store.accept(
        source="medisante",
        format="medisante-json",
        body=BP_FIXTURE.read_text(),
        content_type="application/json",
        attributes={PATIENT_ATTRIBUTE: "pipeline-p1"},
    )
    assert drive_queue(store, pipeline_api.process_raw_record) == 1
    observations = search(fhir_url, "Observation", subject="Patient/pipeline-p1")
    assert sorted(o["code"]["coding"][0]["code"] for o in observations) == ["85354-9", "8867-4"]
    assert len(search(fhir_url, "Device")) == 1
    assert list(store.rejected.list_blobs()) == []


def test_record_without_patient_is_parked_not_rejected_and_archived(store: RawRecordStore, clean_cosmos: AppContext):
    envelope = store.accept(
        source="medisante", format="medisante-json", body=BP_FIXTURE.read_text(), content_type="application/json"
    )
    drive_queue(store, pipeline_api.process_raw_record)
    assert list(store.rejected_records()) == []
    parked = list(clean_cosmos.parked.all())
    assert [(p.receipt_id, p.readings) for p in parked] == [(envelope.receipt_id, 2)]
    assert store.load_body(store.archived_envelope(envelope.receipt_id)) == BP_FIXTURE.read_text()
    assert replay.replay_archived(store, [envelope.receipt_id]) == [envelope.receipt_id]
    assert (
        store.load_body(RawEnvelope.from_json(next(iter(store.queue.peek_messages())).content))
        == BP_FIXTURE.read_text()
    )


def test_record_with_an_implausible_reading_is_rejected_with_reason_and_replayable(store: RawRecordStore):
    document = json.loads(BP_FIXTURE.read_text())
    document["measurements"]["systolicBloodPressure"]["value"] = 900
    envelope = store.accept(
        source="medisante", format="medisante-json", body=json.dumps(document), content_type="application/json"
    )
    drive_queue(store, pipeline_api.process_raw_record)
    records = list(store.rejected_records())
    assert [r["receiptId"] for r in records] == [envelope.receipt_id]
    assert "plausible" in records[0]["details"][0]["reason"]
    assert replay.replay_rejected(store) == [envelope.receipt_id]
    assert list(store.rejected_records()) == []
    assert len(list(store.queue.peek_messages())) == 1


def test_unparseable_record_is_rejected_at_once_not_retried(store: RawRecordStore):
    store.accept(source="medisante", format="medisante-json", body='{"metadata": {}}', content_type="application/json")
    assert drive_queue(store, pipeline_api.process_raw_record) == 1
    [record] = list(store.rejected_records())
    assert "metadata.correlationId" in record["reason"]


class FlakyProcessor:
    """Fails with a dependency error until told otherwise; records what it was given."""

    def __init__(self) -> None:
        self.healthy = False
        self.calls = 0
        self.bodies: list[str] = []

    def __call__(self, envelope: RawEnvelope, body: str) -> ProcessingResult:
        self.calls += 1
        if not self.healthy:
            raise DependencyError("FHIR server unavailable (test)")
        self.bodies.append(body)
        return ProcessingResult(written=1)


def _worker_handler(worker: RawRecordWorker):
    def handle(msg: func.QueueMessage) -> None:
        worker.handle(msg.get_body(), msg.dequeue_count or 1)

    return handle


def test_failing_record_lands_in_poison_with_reason_after_max_tries_and_replays(store: RawRecordStore):
    processor = FlakyProcessor()
    worker = RawRecordWorker(store=store, processors={"medisante": processor}, max_attempts=3)
    envelope = store.accept(
        source="medisante", format="medisante-json", body=BP_FIXTURE.read_text(), content_type="application/json"
    )
    assert drive_queue(store, _worker_handler(worker)) == 3
    assert processor.calls == 3
    [poisoned] = list(store.poison_queue.peek_messages(max_messages=32))
    poisoned_envelope = RawEnvelope.from_json(poisoned.content)
    assert poisoned_envelope.receipt_id == envelope.receipt_id
    assert poisoned_envelope.failure is not None
    assert poisoned_envelope.failure["attempts"] == 3
    assert "FHIR server unavailable" in poisoned_envelope.failure["reason"]

    processor.healthy = True
    assert replay.replay_poison(store) == [envelope.receipt_id]
    assert list(store.poison_queue.peek_messages()) == []
    assert drive_queue(store, _worker_handler(worker)) == 1
    assert processor.bodies == [BP_FIXTURE.read_text()]


def test_payload_above_queue_limit_goes_by_claim_check_and_arrives_whole(store: RawRecordStore):
    document = json.loads(BP_FIXTURE.read_text())
    document["metadata"]["deviceGroups"] = [f"group-{i:06d}" for i in range(INLINE_ENVELOPE_LIMIT_BYTES // 10)]
    body = json.dumps(document)
    assert len(body) > 64 * 1024
    envelope = store.accept(source="medisante", format="medisante-json", body=body, content_type="application/json")
    [message] = list(store.queue.peek_messages())
    queued = RawEnvelope.from_json(message.content)
    assert queued.body is None
    assert queued.blob_name == envelope.receipt_id
    processor = FlakyProcessor()
    processor.healthy = True
    worker = RawRecordWorker(store=store, processors={"medisante": processor}, max_attempts=3)
    drive_queue(store, _worker_handler(worker))
    assert processor.bodies == [body]
