"""``GET /api/health`` reports each dependency, and only names and latencies."""

from __future__ import annotations

import json

import pytest

from shared.api import health
from shared.composition import reset_context
from tests.helpers.common import http_request


def call():
    response = health.health(http_request("GET", "http://localhost/api/health"))
    return response.status_code, json.loads(response.get_body())


def test_all_dependencies_of_the_local_stack_are_reachable():
    status, body = call()
    assert status == 200
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == {"storage", "cosmos", "keyvault", "fhir"}
    assert all(d["ok"] for d in body["dependencies"].values())


def test_an_unreachable_dependency_makes_it_degraded_without_details(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FHIR_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("FHIR_MAX_ATTEMPTS", "1")
    reset_context()
    try:
        status, body = call()
    finally:
        monkeypatch.undo()
        reset_context()
    assert status == 503
    assert body["status"] == "degraded"
    assert body["dependencies"]["fhir"]["ok"] is False
    assert body["dependencies"]["storage"]["ok"] is True
    assert set(body["dependencies"]["fhir"]) == {"ok", "latencyMs"}
