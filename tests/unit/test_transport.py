"""The SDK clients' HTTP transport: a connection pool that holds the host's concurrency."""

from __future__ import annotations

import json
from pathlib import Path

from shared.clients.transport import sdk_options

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


def test_every_concurrent_invocation_keeps_its_connection():
    queues = json.loads(HOST_JSON.read_text())["extensions"]["queues"]
    concurrency = queues["batchSize"] + queues["newBatchThreshold"]
    transport = sdk_options()["transport"]
    transport.open()
    for scheme in ("http://", "https://"):
        adapter = transport.session.get_adapter(f"{scheme}127.0.0.1")
        assert adapter.poolmanager.connection_pool_kw["maxsize"] >= concurrency
        assert adapter.max_retries.total is False  # retries are the SDK's policy, not urllib3's
    assert transport.session.trust_env is False  # the environment is not scanned per request
