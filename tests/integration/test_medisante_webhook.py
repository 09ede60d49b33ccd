"""The Medisanté webhook's answers: auth, media type, size, shape. Never a 500."""

from __future__ import annotations

import json

import pytest

from shared.api import medisante as medisante_api
from shared.auth import key_digest
from shared.composition import reset_context
from shared.pipeline.store import RawRecordStore
from tests.helpers.common import FIXTURES, MEDISANTE_KEY, http_request

BP = (FIXTURES / "medisante" / "blood-pressure.json").read_bytes()


def call(
    body: bytes = BP,
    *,
    key: str | None = MEDISANTE_KEY,
    content_type: str = "application/json",
    format_name: str = "medisante-json",
):
    headers = {"content-type": content_type}
    if key is not None:
        headers["x-api-key"] = key
    response = medisante_api.medisante_webhook(
        http_request(
            "POST",
            f"http://localhost/api/health-data/medisante/{format_name}",
            body=body,
            headers=headers,
            route_params={"format": format_name},
        )
    )
    return response.status_code, json.loads(response.get_body())


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize(("key", "status"), [(None, 401), ("", 401), ("wrong-key", 401), (MEDISANTE_KEY, 202)])
def test_api_key_is_required(key, status):
    code, body = call(key=key)
    assert code == status
    if status == 401:
        assert "x-api-key" in body["error"]["message"]


def test_two_keys_are_valid_during_rotation_and_a_rotated_out_key_is_refused(monkeypatch, store: RawRecordStore):
    monkeypatch.setenv("MEDISANTE_API_KEY_HASHES", f"{key_digest('new-key')},{key_digest('old-key')}")
    reset_context()
    try:
        assert call(key="new-key")[0] == 202
        assert call(key="old-key")[0] == 202
        monkeypatch.setenv("MEDISANTE_API_KEY_HASHES", key_digest("new-key"))
        reset_context()
        assert call(key="old-key")[0] == 401
        assert call(key="new-key")[0] == 202
    finally:
        monkeypatch.undo()
        reset_context()


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize(
    ("body", "content_type", "format_name", "status", "words"),
    [
        (BP, "text/plain", "medisante-json", 415, "content type"),
        (BP, "application/xml", "medisante-json", 415, "application/json"),
        (b'{"metadata": ', "application/json", "medisante-json", 400, "malformed JSON"),
        (b"[1, 2]", "application/json", "medisante-json", 400, "payload"),
        (b"", "application/json", "medisante-json", 400, "empty"),
        (b"\xff\xfe", "application/json", "medisante-json", 400, "UTF-8"),
        (b"<root><metadata>", "application/xml", "medisante-xml", 400, "malformed XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
            "application/xml",
            "medisante-xml",
            400,
            "DTD",
        ),
        (BP, "application/json", "csv", 400, "unknown format"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(body, content_type, format_name, status, words):
    code, answer = call(body, content_type=content_type, format_name=format_name)
    assert code == status
    assert words in answer["error"]["message"]


@pytest.mark.usefixtures("store")
def test_oversized_body_is_refused_with_413(monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    reset_context()
    try:
        code, answer = call(BP + b" " * 4096)
        assert code == 413
        assert "2048" in answer["error"]["message"]
    finally:
        monkeypatch.undo()
        reset_context()


def test_nothing_is_queued_for_a_refused_request(store: RawRecordStore):
    call(key="wrong")
    call(b"{", content_type="application/json")
    assert list(store.queue.peek_messages()) == []
