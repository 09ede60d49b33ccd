"""The clinic back office as tests play it: assigning devices, Medisanté deliveries."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from shared.api import devices as devices_api
from shared.api import medisante as medisante_api
from shared.api import pipeline as pipeline_api
from shared.pipeline.store import RawRecordStore
from tests.helpers.common import FIXTURES, MEDISANTE_KEY, answer, http_request
from tests.helpers.stack import drive_queue, send

FIXTURE_DEVICES = {  # fixture file → (IMEI, device type)
    "blood-pressure": ("358000000000047", "blood-pressure-monitor"),
    "glucose": ("900000000000001", "glucometer"),
    "weight": ("866000000000123", "scale"),
}


LONG_AGO = "2026-01-01T00:00:00Z"  # before every fixture's measured time


def fixture_text(name: str) -> str:
    return (FIXTURES / "medisante" / f"{name}.json").read_text()


def call(handler, method: str, path: str, token: str | None, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    return answer(send(handler, method, path, token=token, body=body, **kwargs))


def assign(token: str, imei: str, device_type: str, patient: str, valid_from: str | None = LONG_AGO):
    body: dict[str, Any] = {
        "deviceId": imei,
        "deviceProvider": "medisante",
        "deviceType": device_type,
        "name": "clinic device",
        "assignedPatientId": patient,
    }
    if valid_from is not None:
        body["from"] = valid_from
    return call(devices_api.assign_device, "POST", "devices/assign", token, body)


def deliver(text: str) -> str:
    response = medisante_api.medisante_webhook(
        http_request(
            "POST",
            "http://localhost/api/health-data/medisante/medisante-json",
            body=text.encode(),
            headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/json"},
            route_params={"format": "medisante-json"},
        )
    )
    assert response.status_code == 202, response.get_body()
    return str(json.loads(response.get_body())["receiptId"])


def process(store: RawRecordStore) -> int:
    return drive_queue(store, pipeline_api.process_raw_record)


def payload_at(name: str, correlation: str, measured: dt.datetime) -> str:
    document = json.loads(fixture_text(name))
    document = copy.deepcopy(document)
    document["metadata"]["correlationId"] = correlation
    document["measurements"]["timestamp"] = measured.isoformat()
    return json.dumps(document)
