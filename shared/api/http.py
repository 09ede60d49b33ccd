"""Request and response plumbing shared by every HTTP function, and the one place where the
error hierarchy becomes HTTP status codes."""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import azure.functions as func

from shared.diagnostics import where
from shared.errors import (
    BadRequest,
    DependencyError,
    HubError,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from shared.sources.parsing import load_json

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger(__name__)

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """``body``: a typed answer (a record: its API view; any pydantic model) or plain JSON.
    Recognised by shape, so that importing the HTTP layer does not import pydantic."""
    if hasattr(body, "public"):
        body = body.public()
    elif hasattr(body, "model_dump"):
        body = body.model_dump(by_alias=True, mode="json")
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")), status_code=status, mimetype=JSON, charset="utf-8", headers=headers
    )


def error_response(error: HubError) -> func.HttpResponse:
    headers: dict[str, str] = {}
    if isinstance(error, (TooManyRequests, DependencyError)):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, Unauthorized) and error.challenge:
        headers["WWW-Authenticate"] = error.challenge
    return json_response(error.to_json(), status=error.status, headers=headers)


Handler = Callable[..., func.HttpResponse]


def endpoint(handler: Handler) -> Handler:
    """Turns typed errors into their JSON answers and anything unexpected into an opaque 500
    (logged by type and request id only: exception texts may quote payload values)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        return _answer(handler, *args, **kwargs)

    return observed(wrapper)


def observed(handler: Handler) -> Handler:
    """Tells the answer listeners what ``handler`` answered (``endpoint`` does it for its own)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        response = handler(*args, **kwargs)
        if answer_listeners:
            method = str(getattr(args[0], "method", "")).lower() if args else ""
            for listener in answer_listeners:
                listener(handler.__name__, method, response.status_code)
        return response

    return wrapper


# Told (handler, method, status) of every answer. The test suite listens, to hold the OpenAPI
# document to the statuses the handlers really answer; nothing listens in production.
answer_listeners: list[Callable[[str, str, int], None]] = []


def _answer(handler: Handler, *args: Any, **kwargs: Any) -> func.HttpResponse:
    try:
        return handler(*args, **kwargs)
    except HubError as error:
        if error.status >= 500:
            log.warning("%s answered %d: %s", handler.__name__, error.status, error.code)
        return error_response(error)
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a stack trace to a caller
        request_id = secrets.token_hex(8)
        log.error("%s failed unexpectedly, request id %s: %s", handler.__name__, request_id, where(exc))
        return json_response(
            {"error": {"code": "internal_error", "message": "unexpected error", "requestId": request_id}},
            status=500,
        )


def read_body(req: func.HttpRequest, max_bytes: int) -> bytes:
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than the limit of {max_bytes} bytes")
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than the limit of {max_bytes} bytes")
    if not body:
        raise BadRequest("request body is empty")
    return body


def media_type(req: func.HttpRequest) -> str:
    return (req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def require_media_type(req: func.HttpRequest, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    found = media_type(req)
    if found not in allowed:
        shown = found or "none"
        raise UnsupportedMediaType(f"content type {shown} is not accepted here; use one of: {', '.join(allowed)}")
    return found


def decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8 (byte {exc.start})") from None


Model = TypeVar("Model", bound="BaseModel")


def read_json_model(req: func.HttpRequest, model: type[Model], max_bytes: int) -> Model:
    """A JSON request body validated by a pydantic model. 415, 413, 400 for a malformed body;
    400 naming each bad field (never echoing its value)."""
    from pydantic import ValidationError

    require_media_type(req, (JSON,))
    document = load_json(decode_utf8(read_body(req, max_bytes)))
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]) or "body", "problem": item["msg"]}
            for item in exc.errors(include_input=False, include_url=False)
        ]
        fields = ", ".join(problem["field"] for problem in problems)
        raise BadRequest(f"the request body is not valid: {fields}", details=problems) from None


def query_param(req: func.HttpRequest, name: str, allowed: Iterable[str] | None = None) -> str | None:
    value = req.params.get(name)
    if value is None or value == "":
        return None
    value = str(value)
    if allowed is not None and value not in allowed:
        raise BadRequest(f"query parameter {name} must be one of: {', '.join(allowed)}")
    return value


def int_param(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    value = req.params.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequest(f"query parameter {name} must be an integer from {low} to {high}")
    return int(value)
