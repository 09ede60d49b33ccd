"""The FHIR writer against the local FHIR server, directly and through a fault-injecting proxy
(429 with x-ms-retry-after-ms on some batch entries, a 503, a dropped connection)."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared import conversion
from shared.errors import FhirAuthError, FhirRejected, FhirThrottled, FhirUnavailable
from shared.fhir.client import FhirClient, retry_after_seconds
from tests.helpers.common import FIXTURES
from tests.helpers.stack import FaultyProxy, search


def resources(patient="writer-p1"):
    out = []
    for path in sorted((FIXTURES / "medisante").glob("*.json")):
        out += conversion.convert("medisante", "medisante-json", path.read_text(), lambda _: patient)[1].resources
    out += conversion.convert(
        "withings", "withings-json", (FIXTURES / "withings" / "getmeas.json").read_text(), lambda _: patient
    )[1].resources
    return out




@pytest.fixture
def waits() -> list[float]:
    return []


def client_for(url: str, waits: list[float], **kwargs) -> FhirClient:
    return FhirClient(url, sleep=waits.append, **kwargs)


def test_a_batch_lands_and_resending_creates_no_duplicate(clean_fhir: str, waits):
    client = client_for(clean_fhir, waits)
    batch = resources()
    assert client.write(batch).written == len(batch)
    assert client.write(batch).written == len(batch)
    for resource in batch:
        if resource["resourceType"] == "Observation":
            identifier = resource["identifier"][0]
            found = search(clean_fhir, "Observation", identifier=f"{identifier['system']}|{identifier['value']}")
            assert [f["id"] for f in found] == [resource["id"]]
    assert len(search(clean_fhir, "Observation", _count="1000")) == sum(
        r["resourceType"] == "Observation" for r in batch
    )


def test_faults_still_end_with_every_entry_written_exactly_once(clean_fhir: str, waits):
    batch = resources()
    with FaultyProxy(clean_fhir, ["503", "drop", "throttle-half", "throttle-half", "pass"]) as proxy:
        client = client_for(proxy.url, waits, batch_size=500, max_attempts=6)
        report = client.write(batch)
    assert report.written == len(batch)
    assert report.attempts == 5
    urls = [f"{r['resourceType']}/{r['id']}" for r in batch]
    assert proxy.forwarded_entries == Counter(urls)  # every entry reached the server exactly once
    assert waits[0] == 0  # Retry-After: 0 on the 503
    assert waits[2:4] == [0.02, 0.02]  # x-ms-retry-after-ms: 20 on the throttled batches
    for url in urls:
        assert requests.get(f"{clean_fhir}/{url}", timeout=5).status_code == 200


def test_batches_are_split_at_the_configured_size(clean_fhir: str, waits):
    batch = resources()
    with FaultyProxy(clean_fhir, []) as proxy:
        report = client_for(proxy.url, waits, batch_size=3).write(batch)
    assert report.attempts == -(-len(batch) // 3)
    assert report.written == len(batch)


def test_retries_run_out_as_a_typed_error(clean_fhir: str, waits):
    with FaultyProxy(clean_fhir, ["503"] * 10) as proxy, pytest.raises(FhirUnavailable):
        client_for(proxy.url, waits, max_attempts=3).write(resources()[:2])
    assert len(waits) == 2


def test_a_refused_resource_is_rejected_with_the_outcome_and_the_rest_is_written(clean_fhir: str, waits):
    batch = resources()[:3]
    with FaultyProxy(clean_fhir, ["refuse-last"]) as proxy, pytest.raises(FhirRejected) as caught:
        client_for(proxy.url, waits).write(batch)
    refused = batch[-1]
    assert f"{refused['resourceType']}/{refused['id']}" in caught.value.message
    assert "entry refused: invalid" in caught.value.message
    assert waits == []  # a refusal is not retried
    assert all(requests.get(f"{clean_fhir}/{r['resourceType']}/{r['id']}", timeout=5).ok for r in batch[:-1])


def test_auth_failures_are_not_retried(waits):
    class Unauthorised(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unauthorised)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(FhirAuthError):
            client_for(f"http://127.0.0.1:{server.server_address[1]}", waits).write(resources()[:1])
        assert waits == []
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "9999"}, 60.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_hints(headers, expected):
    assert retry_after_seconds(headers) == expected


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [("drop", FhirUnavailable, "fhir_unavailable"), ("throttle-half", FhirThrottled, "fhir_throttled")],
)
def test_what_ran_out_is_reported_as_what_it_is(clean_fhir: str, waits, fault, error, code):
    """A dropped connection is not a throttle: only 429s are reported as fhir_throttled."""
    with FaultyProxy(clean_fhir, [fault] * 10) as proxy, pytest.raises(error) as caught:
        client_for(proxy.url, waits, max_attempts=3).write(resources()[:4])
    assert caught.value.code == code
    assert "Error" not in caught.value.message  # no library exception name
