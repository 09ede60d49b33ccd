"""The fault suite: the whole pipeline (webhook → queue → worker → FHIR) with the FHIR server
behind a proxy that fails 30 % of calls (429 with x-ms-retry-after-ms on half a batch, 503,
connections dropped before and after forwarding). Every accepted reading ends in FHIR, or in
the poison queue or a rejected record with its reason; none is written twice."""

from __future__ import annotations

import datetime as dt
import os
import random

import pytest
import requests

from shared.api import pipeline as pipeline_api
from shared.composition import AppContext, get_context, reset_context
from shared.fhir.mapping import reading_identifier_system
from shared.pipeline.envelope import RawEnvelope
from shared.pipeline.store import RawRecordStore
from tests.helpers.clinic import FIXTURE_DEVICES, assign, deliver, payload_at
from tests.helpers.stack import FaultyProxy, drive_queue, put_patient

RECORDS_PER_FIXTURE = 12
FAULTS = ["503", "throttle-half", "drop", "drop-after"]
# Readings each fixture becomes (their source-id suffixes).
PARTS = {"blood-pressure": ("blood-pressure", "heart-rate"), "glucose": ("glucose",), "weight": ("bodyWeight",)}


# `make test` runs 30 %; `make fuzz` also 90 % (FAULT_RATES), where most records end in poison.
FAULT_RATES = [float(rate) for rate in os.environ.get("FAULT_RATES", "0.3").split(",")]


@pytest.mark.parametrize("fault_rate", FAULT_RATES)
def test_every_accepted_reading_ends_in_fhir_or_with_a_reason_and_none_twice(
    clean_cosmos: AppContext,
    clean_fhir: str,
    store: RawRecordStore,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    fault_rate: float,
):
    put_patient(clean_fhir, "anna")
    for imei, device_type in FIXTURE_DEVICES.values():
        assert assign(admin_token, imei, device_type, "anna")[0] == 200
    expected: dict[str, list[str]] = {}  # receipt id → source ids
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for name in FIXTURE_DEVICES:
        for n in range(RECORDS_PER_FIXTURE):
            correlation = f"fault-{name}-{n}"
            receipt = deliver(payload_at(name, correlation, start + dt.timedelta(minutes=n)))
            expected[receipt] = [f"{correlation}/{part}" for part in PARTS[name]]

    chooser = random.Random(20261202)  # seeded: the same faults every run

    def fault() -> str:
        return chooser.choice(FAULTS) if chooser.random() < fault_rate else "pass"

    with FaultyProxy(clean_fhir, fault) as proxy:
        monkeypatch.setenv("FHIR_URL", proxy.url)
        monkeypatch.setenv("FHIR_MAX_ATTEMPTS", "2")
        reset_context()
        try:
            deliveries = drive_queue(store, pipeline_api.process_raw_record, max_deliveries=400)
        finally:
            monkeypatch.undo()
            reset_context()
    assert sum(proxy.seen[f] for f in FAULTS) > 0.15 * deliveries  # the faults did happen

    poisoned = {
        RawEnvelope.from_json(m.content).receipt_id: RawEnvelope.from_json(m.content).failure
        for m in get_context().raw_store.poison_queue.peek_messages(max_messages=32)
    }
    rejected = {record["receiptId"]: record for record in store.rejected_records()}
    written, duplicates = 0, 0
    for receipt, source_ids in expected.items():
        for source_id in source_ids:
            found = requests.get(
                f"{clean_fhir}/Observation",
                params={"identifier": f"{reading_identifier_system('medisante')}|{source_id}"},
                timeout=10,
            ).json()
            count = len(found.get("entry", []))
            duplicates += count > 1
            if count:
                written += 1
            else:
                reason = (poisoned.get(receipt) or {}).get("reason") or rejected.get(receipt, {}).get("reason")
                assert reason, f"{source_id} is neither in FHIR nor in poison/rejected"
    assert duplicates == 0
    if fault_rate <= 0.3:  # with 2 tries per batch and 5 per record, 30 % rarely exhausts a record
        assert written > 0.9 * sum(len(ids) for ids in expected.values())
    print(
        f"fault suite: {len(expected)} records, {deliveries} deliveries, faults {dict(proxy.seen)}, "
        f"written {written}, poisoned {len(poisoned)}, rejected {len(rejected)}, duplicates {duplicates}"
    )
