"""The local Functions host's HTTP routing, from the app's own binding metadata."""

from __future__ import annotations

import json

from local.functions_host import HttpHost

HOST = HttpHost()


def test_routes_come_from_the_bindings_with_literal_segments_first():
    templates = {route.binding.name: route.template for route in HOST.routes}
    assert templates["assign_device"] == "api/devices/assign"
    assert templates["get_device"] == "api/devices/{id}"
    route, params = HOST.match("GET", "/api/devices/assign")  # type: ignore[misc]
    assert (route.binding.name, params) == ("get_device", {"id": "assign"})
    route, params = HOST.match("POST", "/api/devices/assign")  # type: ignore[misc]
    assert (route.binding.name, params) == ("assign_device", {})
    route, params = HOST.match("POST", "/api/health-data/medisante/fhir-json")  # type: ignore[misc]
    assert (route.binding.name, params) == ("medisante_webhook", {"format": "fhir-json"})


def test_unknown_paths_and_methods_are_json_404_and_405():
    status, _, body = HOST.handle("GET", "/api/nothing-here", "", {}, b"")
    assert (status, json.loads(body)["error"]["code"]) == (404, "not_found")
    status, _, body = HOST.handle("DELETE", "/api/devices", "", {}, b"")
    assert (status, json.loads(body)["error"]["code"]) == (405, "method_not_allowed")


def test_a_function_answer_keeps_its_status_headers_and_body():
    status, headers, body = HOST.handle("GET", "/api/openapi.json", "", {}, b"")
    assert status == 200
    assert dict(headers)["Content-Type"].startswith("application/json")
    assert json.loads(body)["openapi"].startswith("3.1")
    status, _, body = HOST.handle("HEAD", "/api/withings/notify/wrong", "", {}, b"")
    assert (status, body) == (404, b"")
