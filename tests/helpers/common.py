"""Helpers that need nothing but Python: paths, fixtures, building requests, reading answers."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.functions as func

from shared.localstack import (
    LOCAL_MEDISANTE_API_KEY,
)

REPO = Path(__file__).resolve().parents[2]


FIXTURES = REPO / "tests" / "fixtures"  # copies of the product notes' samples


MEDISANTE_KEY = LOCAL_MEDISANTE_API_KEY


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


def answer(response: func.HttpResponse) -> tuple[int, Any]:
    payload = response.get_body()
    return response.status_code, json.loads(payload) if payload else None


FHIR_BUNDLE = {
    "resourceType": "Bundle",
    "type": "collection",
    "entry": [
        {
            "resource": {
                "resourceType": "Device",
                "id": "d1",
                "identifier": [{"system": "urn:gsma:imei", "value": "358000000000047"}],
            }
        },
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "identifier": [{"system": "urn:medisante:obs", "value": "x1"}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "effectiveDateTime": "2026-03-01T08:02:05+01:00",
                "device": {"reference": "Device/d1"},
                "valueQuantity": {"value": 81.4, "system": "http://unitsofmeasure.org", "code": "kg"},
            }
        },
    ],
}


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Starts every call at the same moment on its own thread (a barrier, not a sleep)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


@functools.cache
def registered(name: str):
    """A function as the host registered it (the /api/tenants/{tenantId}/... twins exist only so)."""
    return registered_functions()[name].get_user_function()


def registered_functions():
    import function_app
    from local.functions_host import functions_of

    return {f.get_function_name(): f for f in functions_of(function_app.app)}
