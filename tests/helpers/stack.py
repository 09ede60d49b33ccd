"""Helpers that talk to the local stack: queues driven as the host does, FHIR searches, tokens."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import requests
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient

from shared.localstack import (
    local_client_token,
)
from shared.pipeline.store import RawRecordStore
from tests.helpers.common import http_request


def drive_queue(store: RawRecordStore, handler: Callable[[func.QueueMessage], None], max_deliveries: int = 50) -> int:
    return drive(store.queue, handler, max_deliveries)


def drive(queue: QueueClient, handler: Callable[[func.QueueMessage], None], max_deliveries: int = 50) -> int:
    """Plays the Functions host's queue listener against Azurite: receive, call, delete on
    success, make visible again on failure (Azurite counts the dequeues). Returns deliveries."""
    store = SimpleNamespace(queue=queue)
    deliveries = 0
    while deliveries < max_deliveries:
        messages = list(store.queue.receive_messages(max_messages=1, visibility_timeout=30))
        if not messages:
            return deliveries
        message = messages[0]
        deliveries += 1
        # The host builds this subclass: the public constructor takes no dequeue count.
        queue_message = QueueMessage(
            id=message.id, body=message.content, dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt
        )
        try:
            handler(queue_message)
        except Exception:
            store.queue.update_message(message, visibility_timeout=0)
        else:
            store.queue.delete_message(message)
    raise AssertionError(f"queue still not empty after {max_deliveries} deliveries")


def search(fhir_url: str, resource_type: str, **params: str) -> list[dict]:
    response = requests.get(f"{fhir_url}/{resource_type}", params=params, timeout=10)
    response.raise_for_status()
    return [entry["resource"] for entry in response.json().get("entry", [])]


def client_token(client: tuple[str, str]) -> str:
    """An access token from the local OIDC provider (client credentials grant)."""
    return local_client_token(client)


def put_patient(
    fhir_url: str, patient_id: str, identifier: tuple[str, str] | None = None, tenant: str | None = None
) -> None:
    """A Patient, tagged as one of ``tenant``'s when given (tenants sharing the FHIR service)."""
    from shared.fhir.mapping import TENANT_TAG_SYSTEM

    patient: dict = {"resourceType": "Patient", "id": patient_id, "active": True}
    if tenant is not None:
        patient["meta"] = {"tag": [{"system": TENANT_TAG_SYSTEM, "code": tenant}]}
    if identifier is not None:
        patient["identifier"] = [{"system": identifier[0], "value": identifier[1]}]
    response = requests.put(
        f"{fhir_url}/Patient/{patient_id}", json=patient, headers={"content-type": "application/fhir+json"}, timeout=10
    )
    response.raise_for_status()


def send(
    handler: Callable[[func.HttpRequest], func.HttpResponse],
    method: str,
    path: str,
    *,
    token: str | None = None,
    sid: str | None = None,
    body: object = None,
    **kwargs: Any,
) -> func.HttpResponse:
    """Calls an HTTP function in-process: bearer token or session cookie, JSON (or raw) body."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if sid is not None:
        headers["cookie"] = f"sid={sid}"
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
    return handler(http_request(method, f"http://localhost/api/{path}", body=data, headers=headers, **kwargs))


class FaultyProxy:
    """Forwards to the FHIR server, failing on a script: ``faults`` is consumed one per request
    (or called once per request). Faults: ``503``, ``drop`` (the connection closes before
    anything is forwarded), ``drop-after`` (forwarded, then closed without an answer),
    ``throttle-half`` (AHDS-style 429 on the later half of a batch's entries), ``refuse-last``."""

    def __init__(self, target: str, faults: list[str] | Callable[[], str]) -> None:
        self.target = target
        self.faults = faults
        self.seen: Counter[str] = Counter()
        self.forwarded_entries: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                answer = requests.get(proxy.target + self.path, timeout=10)
                self._reply(answer.status_code, answer.content, {})

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fault = proxy.next_fault()
                proxy.seen[fault] += 1
                if fault == "drop-after":
                    bundle = json.loads(body)
                    for entry in bundle["entry"]:
                        proxy.forwarded_entries[entry["request"]["url"]] += 1
                    requests.post(proxy.target, json=bundle, timeout=10)
                    self.connection.close()
                    return
                if fault == "drop":
                    self.connection.close()
                    return
                if fault == "503":
                    outcome = {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "transient"}],
                    }
                    self._reply(503, json.dumps(outcome).encode(), {"Retry-After": "0"})
                    return
                bundle = json.loads(body)
                entries = bundle["entry"]
                if fault == "throttle-half":
                    # As AHDS does: once throttled, the later entries come back 429 without running.
                    keep = entries[: len(entries) // 2]
                elif fault == "refuse-last":
                    keep = entries[:-1]
                else:
                    keep = entries
                for entry in keep:
                    proxy.forwarded_entries[entry["request"]["url"]] += 1
                answer: dict = {"resourceType": "Bundle", "type": "batch-response", "entry": []}
                if keep:
                    answer = requests.post(proxy.target, json={**bundle, "entry": keep}, timeout=10).json()
                status, code = ("400", "invalid") if fault == "refuse-last" else ("429", "throttled")
                results = answer["entry"] + [
                    {
                        "response": {
                            "status": status,
                            "outcome": {
                                "resourceType": "OperationOutcome",
                                "issue": [{"severity": "error", "code": code, "diagnostics": f"entry refused: {code}"}],
                            },
                        }
                    }
                    for _ in entries[len(keep) :]
                ]
                headers = {"x-ms-retry-after-ms": "20"} if fault == "throttle-half" else {}
                self._reply(200, json.dumps({**answer, "entry": results}).encode(), headers)

            def _reply(self, status, content, headers):
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(content)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next_fault(self) -> str:
        if callable(self.faults):
            return self.faults()
        return self.faults.pop(0) if self.faults else "pass"

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
