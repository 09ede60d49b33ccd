"""``GET /api/openapi.json``: the OpenAPI 3.1 description of the HTTP API, generated from the
contract (``shared.api.contract``) and the pydantic models the handlers validate with and answer
with. Nothing in it is written by hand twice."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.api.http import endpoint, json_response

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.api.contract import Operation

bp = func.Blueprint()  # type: ignore[no-untyped-call]

SECURITY_SCHEMES: dict[str, Any] = {
    "entraBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "an Entra ID access token for the hub's app (audience ADMIN_TOKEN_AUDIENCE) carrying "
        "the ADMIN_ROLE app role (INGEST_ROLE for the HealthKit ingestion)",
    },
    "medisanteApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "sid"},
    "partnerToken": {
        "type": "oauth2",
        "description": "a partner app's access token from the hub's own authorization server (PKCE S256 "
        "required; scopes are what the patient left ticked)",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": "/api/oauth2/authorize",
                "tokenUrl": "/api/oauth2/token",
                "refreshUrl": "/api/oauth2/token",
                "scopes": {},  # the partner scopes, filled in when the document is built
            }
        },
    },
    "notifySecret": {
        "type": "apiKey",
        "in": "query",
        "name": "secret",
        "description": "the secret is a path segment of the registered notification URL",
    },
}


def _security_schemes() -> dict[str, Any]:
    import copy

    from shared.partners.scopes import SCOPE_TEXTS

    schemes = copy.deepcopy(SECURITY_SCHEMES)
    schemes["partnerToken"]["flows"]["authorizationCode"]["scopes"] = dict(SCOPE_TEXTS)
    return schemes


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _parameter(param: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.enum:
        schema["enum"] = list(param.enum)
    described: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required, "schema": schema}
    if param.description:
        described["description"] = param.description
    return described


def _operation(operation: Operation) -> dict[str, Any]:
    from shared.api.answers import ErrorAnswer
    from shared.api.contract import ERROR_TEXTS

    described: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "security": [{scheme: []} for scheme in operation.security],
    }
    if operation.description:
        described["description"] = operation.description
    if operation.params:
        described["parameters"] = [_parameter(param) for param in operation.params]
    if operation.body is not None:
        schema = _ref(operation.body.model) if operation.body.model is not None else {}
        content = {media: {"schema": schema} for media in operation.body.media_types}
        described["requestBody"] = {"required": True, "content": content}
        if operation.body.description:
            described["requestBody"]["description"] = operation.body.description
    responses: dict[str, Any] = {}
    for answer in operation.answers:
        response: dict[str, Any] = {"description": answer.description}
        if answer.model is not None:
            response["content"] = {answer.media_type: {"schema": _ref(answer.model)}}
        elif answer.media_type != "application/json":
            response["content"] = {answer.media_type: {}}
        if answer.headers:
            response["headers"] = {name: {"schema": {"type": "string"}} for name in answer.headers}
        responses[str(answer.status)] = response
    errors = [*operation.errors, *((500, 503) if operation.json_errors else ())]
    for status in errors:
        if str(status) not in responses:
            content = {"application/json": {"schema": _ref(ErrorAnswer)}}
            responses[str(status)] = {"description": ERROR_TEXTS[status], "content": content}
    described["responses"] = dict(sorted(responses.items()))
    return described


@functools.cache
def document() -> dict[str, Any]:
    from pydantic.json_schema import JsonSchemaMode, models_json_schema

    from shared.api.answers import ErrorAnswer
    from shared.api.contract import operations

    table = operations()
    requests = {op.body.model for op in table if op.body is not None and op.body.model is not None}
    answers = {answer.model for op in table for answer in op.answers if answer.model is not None} | {ErrorAnswer}
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation") for model in sorted(requests, key=lambda m: m.__name__)
    ]
    models += [(model, "serialization") for model in sorted(answers, key=lambda m: m.__name__)]
    _, definitions = models_json_schema(models, by_alias=True, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for operation in table:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IoMT ingestion hub",
            "version": "1.0.0",
            "description": "Device readings in, FHIR R4 out. Every error is a JSON body "
            '{"error": {"code", "message"}} that names the problem.',
        },
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}), "securitySchemes": _security_schemes()},
    }


@bp.route(route="api/openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(document())
