"""Tests run against the local stack that `make test` starts (local/stack.py): Azurite, the
Cosmos DB server, the FHIR R4 server and the Key Vault stand-in. Nothing of ours is mocked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from shared.clients.cosmos import ensure_containers
from shared.composition import AppContext, get_context, reset_context
from shared.localstack import (
    LOCAL_ADMIN_CLIENT,
    LOCAL_NO_ROLE_CLIENT,
    local_settings,
)
from shared.names import COSMOS_CONTAINERS
from shared.pipeline.store import RawRecordStore
from tests.helpers.common import REPO
from tests.helpers.stack import client_token

ANSWERED: set[tuple[str, str, int]] = set()  # (handler, method, status) of every answer of the session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The audit of what the handlers answered runs once everything else has."""
    items.sort(key=lambda item: item.get_closest_marker("answers_audit") is not None)


@pytest.fixture(scope="session", autouse=True)
def answers_heard() -> Iterator[set[tuple[str, str, int]]]:
    from shared.api import http

    def hear(handler: str, method: str, status: int) -> None:
        ANSWERED.add((handler, method, status))

    http.answer_listeners.append(hear)
    yield ANSWERED
    http.answer_listeners.remove(hear)


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










@pytest.fixture
def clean_cosmos(context: AppContext) -> AppContext:
    """Every Cosmos container of the app, empty."""
    for name in COSMOS_CONTAINERS:
        container = context.cosmos.get_container_client(name)
        for item in list(container.query_items("SELECT * FROM c", enable_cross_partition_query=True)):
            container.delete_item(item["id"], partition_key=item[COSMOS_CONTAINERS[name].lstrip("/")])
    context.tenant_directory.invalidate()  # the tenants are gone: this process must not remember them
    return context




@pytest.fixture(scope="session")
def admin_token() -> str:
    return client_token(LOCAL_ADMIN_CLIENT)


@pytest.fixture(scope="session")
def no_role_token() -> str:
    return client_token(LOCAL_NO_ROLE_CLIENT)






