"""A tiny HTTP front for in-process functions, standing in for the Functions host where a
vendor must reach the app over HTTP (Withings' HEAD probe of the notification URL, its
notification POSTs). It turns each request into a ``func.HttpRequest`` for the function."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

Route = tuple[re.Pattern[str], Callable[[func.HttpRequest], func.HttpResponse]]


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[list[Route]] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if self.command != "HEAD" else b""
        for pattern, function in self.routes:
            match = pattern.fullmatch(url.path)
            if match:
                request = func.HttpRequest(
                    method=self.command,
                    url=f"http://localhost{self.path}",
                    headers=dict(self.headers.items()),
                    params={k: v[0] for k, v in parse_qs(url.query).items()},
                    route_params=match.groupdict(),
                    body=body,
                )
                response = function(request)
                payload = response.get_body() or b""
                self.send_response(response.status_code)
                for name, value in response.headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_HEAD = _dispatch  # noqa: N815 - http.server's names


@contextmanager
def serve(port: int, routes: list[Route]) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
