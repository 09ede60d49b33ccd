"""The OpenAPI document is generated from the contract and the handlers' own models and tables:
every route the app registers is in it with its handler, and the media types, enums and statuses
the handlers enforce are documented. The README's endpoint table agrees with it."""

from __future__ import annotations

import re
import typing
from typing import Any

from shared.api.contract import ERROR_TEXTS, operations
from shared.api.openapi import document
from shared.consent import CONSENT_STATUSES
from shared.consent.models import PARTNER_SOURCE, SCOPES, ConsentStatus
from shared.devices.records import DeviceStatus
from shared.devices.types import DEVICE_STATUSES, DEVICE_TYPE_KINDS, PROVIDERS
from shared.sources.healthkit.parser import FORMAT as HEALTHKIT_FORMAT
from shared.sources.medisante.formats import MEDIA_TYPES
from tests.helpers.common import REPO, registered_functions

DOCUMENT = document()
SCHEMAS = DOCUMENT["components"]["schemas"]


def _registered() -> set[tuple[str, str, str]]:
    found = set()
    for name, function in registered_functions().items():
        trigger = function.get_trigger()
        if trigger.type == "httpTrigger":
            for method in trigger.methods:
                found.add((name, str(getattr(method, "value", method)).lower(), f"/{trigger.route}"))
    return found


def test_every_registered_route_is_in_the_contract_with_its_handler_and_nothing_else():
    assert {(op.function, op.method, op.path) for op in operations()} == _registered()
    described = {(path, method) for path, methods in DOCUMENT["paths"].items() for method in methods}
    assert described == {(path, method) for _, method, path in _registered()}


def test_every_operation_documents_its_errors_500_and_503_and_names_its_auth():
    schemes = set(DOCUMENT["components"]["securitySchemes"])
    for operation in operations():
        described = DOCUMENT["paths"][operation.path][operation.method]
        assert {int(status) for status in described["responses"]} == operation.statuses
        assert set(operation.errors) <= set(ERROR_TEXTS)
        if operation.json_errors:
            assert {"500", "503"} <= set(described["responses"])
        for requirement in described["security"]:
            assert set(requirement) <= schemes


def _operation(path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][path][method]
    return operation


def test_the_media_types_the_handlers_accept_are_documented():
    webhook = _operation("/api/health-data/medisante/{format}", "post")
    accepted = {media for types in MEDIA_TYPES.values() for media in types}
    assert set(webhook["requestBody"]["content"]) == accepted  # text/xml and application/fhir+xml included
    [format_param] = [p for p in webhook["parameters"] if p["name"] == "format"]
    assert format_param["schema"]["enum"] == list(MEDIA_TYPES)
    for name, types in MEDIA_TYPES.items():
        assert all(media in webhook["requestBody"]["description"] for media in types), name
    for path in ("/api/health-data/{format}", "/api/health-data/healthkit/{format}"):
        [format_param] = [p for p in _operation(path, "post")["parameters"] if p["name"] == "format"]
        assert format_param["schema"]["enum"] == [HEALTHKIT_FORMAT]
    for operation in operations():  # every JSON body the handlers validate is documented as JSON only
        if operation.body is not None and operation.body.model is not None:
            content = _operation(operation.path, operation.method)["requestBody"]["content"]
            assert set(content) == {"application/json"}, operation.operation_id


def _enum(schema: str, field: str) -> list[str]:
    values: list[str] = SCHEMAS[schema]["properties"][field]["enum"]
    return values


def test_the_enums_the_app_enforces_are_documented():
    assert tuple(typing.get_args(ConsentStatus)) == CONSENT_STATUSES
    assert tuple(typing.get_args(DeviceStatus)) == DEVICE_STATUSES
    for schema, field in [("DeviceRegistration", "provider"), ("AssignRequest", "deviceProvider"),
                          ("DeviceRecord", "provider")]:
        assert _enum(schema, field) == list(PROVIDERS), (schema, field)
    for schema in ("ConsentGrant", "ConsentRecord"):  # a provider, or a partner app
        assert SCHEMAS[schema]["properties"]["source"]["anyOf"] == [
            {"enum": list(PROVIDERS)}, {"pattern": PARTNER_SOURCE.pattern}
        ]
    for schema, field in [("DeviceRegistration", "type"), ("AssignRequest", "deviceType"), ("DeviceRecord", "type")]:
        assert _enum(schema, field) == list(DEVICE_TYPE_KINDS), (schema, field)
    for schema in ("ConsentGrant", "ConsentRecord"):
        assert SCHEMAS[schema]["properties"]["scopes"]["items"]["enum"] == list(SCOPES)
    assert _enum("ConsentRecord", "status") == list(CONSENT_STATUSES)
    assert _enum("DeviceRecord", "status") == list(DEVICE_STATUSES)
    filters = {
        ("/api/devices", "provider"): PROVIDERS,
        ("/api/devices", "status"): DEVICE_STATUSES,
        ("/api/consents", "source"): PROVIDERS,
        ("/api/consents", "status"): CONSENT_STATUSES,
    }
    for (path, name), table in filters.items():
        [param] = [p for p in _operation(path, "get")["parameters"] if p["name"] == name]
        assert param["schema"]["enum"] == list(table), (path, name)


def _readme_rows() -> list[tuple[set[tuple[str, str]], set[str]]]:
    """(operations, statuses) per row of the README's endpoint table."""
    readme = (REPO / "README.md").read_text()
    table = readme.split("| method and route | auth | what it does | answers |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        routes = re.findall(r"`((?:[A-Z]+, )*[A-Z]+) (/(?:api/|\.well-known/)[^`?]+)[^`]*`", cells[0])
        operations_of_row = {
            (method.lower(), path)
            for methods, path in routes
            for method in methods.split(", ")
        }
        if operations_of_row:
            rows.append((operations_of_row, set(re.findall(r"\b([1-5]\d\d)\b", cells[3]))))
    return rows


def test_the_readme_endpoint_table_agrees_with_the_document():
    rows = _readme_rows()
    listed = {operation for operations_of_row, _ in rows for operation in operations_of_row}
    described = {(method, path) for path, methods in DOCUMENT["paths"].items() for method in methods}
    assert listed == described
    for operations_of_row, statuses in rows:
        documented = {
            status for method, path in operations_of_row for status in DOCUMENT["paths"][path][method]["responses"]
        }
        assert statuses <= documented, (operations_of_row, statuses - documented)
