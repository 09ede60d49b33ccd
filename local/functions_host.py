"""The project's own local Functions host: runs ``function_app.py`` from its binding metadata
(``get_function_json()``) where Azure Functions Core Tools cannot be installed.

This module holds the HTTP side: a WSGI application that routes ``/<routePrefix>/<route>`` to
the app's HTTP-triggered functions by their route templates and methods, hands each one the
``func.HttpRequest`` the Python worker would build, and answers what the function returns. The
tests fuzz the app through it in-process; ``make run`` serves it on port 7071.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

REPO = Path(__file__).resolve().parent.parent
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}")


@dataclass(frozen=True)
class Binding:
    """One function as the host sees it: its name, trigger binding and the Python callable."""

    name: str
    trigger: dict[str, Any]
    function: Callable[..., Any]

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])


@functools.cache
def functions_of(app: func.FunctionApp) -> tuple[Any, ...]:
    """The app's indexed functions: ``get_functions()`` validates names and may run once per app."""
    return tuple(app.get_functions())


def bindings_of(app: func.FunctionApp) -> list[Binding]:
    found = []
    for function in functions_of(app):
        metadata = json.loads(function.get_function_json())
        trigger = next(b for b in metadata["bindings"] if str(b.get("type", "")).endswith("Trigger"))
        found.append(Binding(str(function.get_function_name()), trigger, function.get_user_function()))
    return found


def load_app() -> func.FunctionApp:
    import function_app

    return function_app.app


def route_prefix() -> str:
    host = json.loads((REPO / "host.json").read_text())
    return str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api")).strip("/")


@dataclass(frozen=True)
class HttpRoute:
    binding: Binding
    template: str
    methods: frozenset[str]
    pattern: re.Pattern[str] = field(compare=False)
    literals: int  # segments without a parameter: the more, the more specific (ASP.NET's rule)

    @classmethod
    def of(cls, binding: Binding, prefix: str) -> HttpRoute:
        template = "/".join(part for part in (prefix, str(binding.trigger.get("route") or binding.name)) if part)
        regex, literals = "", 0
        for segment in template.split("/"):
            match = _PARAMETER.fullmatch(segment)
            if match is None:
                regex += "/" + re.escape(segment)
                literals += 1
            elif match.group(1):  # {*rest}: the rest of the path
                regex += f"(?:/(?P<{match.group(2)}>.*))?"
            elif match.group(3):  # {name?}
                regex += f"(?:/(?P<{match.group(2)}>[^/]+))?"
            else:
                regex += f"/(?P<{match.group(2)}>[^/]+)"
        methods = frozenset(m.upper() for m in binding.trigger.get("methods") or ["GET", "POST", "PUT", "DELETE"])
        return cls(binding, template, methods, re.compile(regex + "/?"), literals)


def http_routes(app: func.FunctionApp) -> list[HttpRoute]:
    prefix = route_prefix()
    routes = [HttpRoute.of(b, prefix) for b in bindings_of(app) if b.trigger_type == "httpTrigger"]
    return sorted(routes, key=lambda r: -r.literals)


def _json_error(status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, [("Content-Type", "application/json; charset=utf-8")], body


class HttpHost:
    """WSGI application serving the app's HTTP functions."""

    def __init__(self, app: func.FunctionApp | None = None) -> None:
        self.routes = http_routes(app or load_app())

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | bool | None:
        """(route, route parameters); False when the path exists for other methods only."""
        path_known = False
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if method in route.methods:
                return route, {k: v for k, v in found.groupdict().items() if v is not None}
            path_known = True
        return False if path_known else None

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        matched = self.match(method, path)
        if matched is None:
            return _json_error(404, "not_found", "no function serves this path")
        if matched is False:
            return _json_error(405, "method_not_allowed", f"{method} is not allowed on this path")
        assert not isinstance(matched, bool)
        route, route_params = matched
        request = func.HttpRequest(
            method=method,
            url=f"http://localhost{path}" + (f"?{query}" if query else ""),
            headers=headers,
            params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params=route_params,
            body=body,
        )
        response = route.binding.function(request)
        if not isinstance(response, func.HttpResponse):
            return _json_error(500, "internal_error", "the function returned no HTTP response")
        answer_headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        if response.mimetype and not any(k.lower() == "content-type" for k, _ in answer_headers):
            content_type = response.mimetype + (f"; charset={response.charset}" if response.charset else "")
            answer_headers.append(("Content-Type", content_type))
        payload = b"" if method == "HEAD" else (response.get_body() or b"")
        return response.status_code, answer_headers, payload

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = str(environ[key])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        status, answer_headers, payload = self.handle(
            environ["REQUEST_METHOD"].upper(), path, environ.get("QUERY_STRING", ""), headers, body
        )
        answer_headers.append(("Content-Length", str(len(payload))))
        start_response(f"{status} {_reason(status)}", answer_headers)
        return _chunks(payload)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _chunks(payload: bytes) -> Iterator[bytes]:
    yield payload
