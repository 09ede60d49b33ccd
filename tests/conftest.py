"""Tests run against the local stack that `make test` starts (local/stack.py): Azurite, the
Cosmos DB server, the FHIR R4 server and the Key Vault stand-in. Nothing of ours is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
import requests
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient

from shared.clients.cosmos import ensure_containers
from shared.composition import AppContext, get_context, reset_context
from shared.localstack import (
    LOCAL_ADMIN_CLIENT,
    LOCAL_MEDISANTE_API_KEY,
    LOCAL_NO_ROLE_CLIENT,
    local_client_token,
    local_settings,
)
from shared.names import COSMOS_CONTAINERS
from shared.pipeline.store import RawRecordStore

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # copies of the product notes' samples
MEDISANTE_KEY = LOCAL_MEDISANTE_API_KEY


@pytest.fixture(scope="session", autouse=True)
def local_environment() -> Iterator[None]:
    running = subprocess.run([sys.executable, str(REPO / "local" / "stack.py"), "running"], check=False)
    if running.returncode != 0:
        pytest.exit("the local stack is not running: use `make test` (or `make local-up` first)", returncode=3)
    saved = dict(os.environ)
    os.environ.update(local_settings())
    reset_context()
    get_context().ensure_storage()
    ensure_containers(get_context().settings)
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_context()


@pytest.fixture
def context() -> AppContext:
    return get_context()


@pytest.fixture
def store(context: AppContext) -> RawRecordStore:
    """The raw-record store with empty queues and no rejected records."""
    raw = context.raw_store
    raw.queue.clear_messages()
    raw.poison_queue.clear_messages()
    for blob in raw.rejected.list_blobs():
        raw.rejected.delete_blob(blob.name)
    return raw


@pytest.fixture
def fhir_url(context: AppContext) -> str:
    return context.settings.fhir_url


@pytest.fixture
def clean_fhir(fhir_url: str) -> str:
    requests.delete(f"{fhir_url}/$reset", timeout=10).raise_for_status()
    return fhir_url


def http_request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> func.HttpRequest:
    return func.HttpRequest(
        method=method, url=url, body=body, headers=headers or {}, route_params=route_params or {}, params=params or {}
    )


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


@pytest.fixture
def clean_cosmos(context: AppContext) -> AppContext:
    """Every Cosmos container of the app, empty."""
    for name in COSMOS_CONTAINERS:
        container = context.cosmos.get_container_client(name)
        for item in list(container.query_items("SELECT * FROM c", enable_cross_partition_query=True)):
            container.delete_item(item["id"], partition_key=item[COSMOS_CONTAINERS[name].lstrip("/")])
    return context


def client_token(client: tuple[str, str]) -> str:
    """An access token from the local OIDC provider (client credentials grant)."""
    return local_client_token(client)


@pytest.fixture(scope="session")
def admin_token() -> str:
    return client_token(LOCAL_ADMIN_CLIENT)


@pytest.fixture(scope="session")
def no_role_token() -> str:
    return client_token(LOCAL_NO_ROLE_CLIENT)


def put_patient(fhir_url: str, patient_id: str, identifier: tuple[str, str] | None = None) -> None:
    patient: dict = {"resourceType": "Patient", "id": patient_id, "active": True}
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


def answer(response: func.HttpResponse) -> tuple[int, Any]:
    payload = response.get_body()
    return response.status_code, json.loads(payload) if payload else None
