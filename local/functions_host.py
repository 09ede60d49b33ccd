"""The project's own local Functions host: runs ``function_app.py`` from its binding metadata
(``get_function_json()``) where Azure Functions Core Tools cannot be installed, with the host's
documented semantics:

- HTTP triggers: a WSGI application (served by waitress, threaded) that routes
  ``/<routePrefix>/<route>`` by route templates and methods, hands each function the
  ``func.HttpRequest`` the Python worker builds, and answers what it returns;
- queue triggers: Azurite polled with host.json's ``batchSize``, ``newBatchThreshold``,
  ``maxPollingInterval``, ``visibilityTimeout``, ``maxDequeueCount`` and ``messageEncoding``,
  the dequeue count passed in, ``<queue>-poison`` after the last try;
- timer triggers: six-field NCRONTAB schedules, with ``past_due``.

    python local/functions_host.py [--port 7071]     # what `make run` starts; Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func
from azure.functions.queue import QueueMessage  # the host's concrete class (carries dequeue_count)
from azure.functions.timer import TimerRequest
from croniter import croniter

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
            # As the Functions host does: the URL the caller asked for (its Host header).
            url=f"http://{_host_of(headers)}{path}" + (f"?{query}" if query else ""),
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


@contextlib.contextmanager
def serving(port: int, app: func.FunctionApp | None = None) -> Iterator[str]:
    """The app's HTTP functions served on ``port`` from a thread, for the length of a block."""
    from waitress.server import create_server

    server = create_server(HttpHost(app), host="127.0.0.1", port=port, threads=8, ident="iomt-hub")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        thread.join(timeout=10)


def _host_of(headers: dict[str, str]) -> str:
    host = next((value for name, value in headers.items() if name.lower() == "host"), "")
    valid = host and len(host) <= 255 and all(c.isalnum() or c in ".-:[]" for c in host)
    return host if valid else "localhost"


# -- host.json ---------------------------------------------------------------------------------------


def _timespan_s(text: str | None, default: float) -> float:
    """A host.json TimeSpan (``hh:mm:ss[.fff]`` or ``d.hh:mm:ss``) in seconds."""
    if not text:
        return default
    hours_part, _, rest = text.partition(":")
    days = 0
    if "." in hours_part:  # d.hh
        day_text, hours_part = hours_part.split(".", 1)
        days = int(day_text)
    minutes, _, seconds = rest.partition(":")
    return days * 86400 + int(hours_part) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` of host.json, with the host's documented defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval_s: float = 60.0
    visibility_timeout_s: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_host_json(cls, path: Path) -> QueueOptions:
        queues = json.loads(path.read_text()).get("extensions", {}).get("queues", {})
        return cls(
            batch_size=int(queues.get("batchSize", 16)),
            new_batch_threshold=int(queues.get("newBatchThreshold", queues.get("batchSize", 16) // 2)),
            max_polling_interval_s=_timespan_s(queues.get("maxPollingInterval"), 60.0),
            visibility_timeout_s=_timespan_s(queues.get("visibilityTimeout"), 0.0),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
        )


# -- queue triggers ----------------------------------------------------------------------------------

MIN_POLLING_INTERVAL_S = 0.1
LEASE_S = 600  # the host hides a message this long while its function runs


class QueueListener:
    """One queue trigger, as the Functions host runs it: fetch up to ``batchSize`` messages, run
    them concurrently, fetch more when fewer than ``newBatchThreshold`` are running; poll with
    exponential back-off up to ``maxPollingInterval`` while the queue is empty; on success delete
    the message; on failure make it visible again after ``visibilityTimeout``; after
    ``maxDequeueCount`` tries move it to ``<queue>-poison``."""

    def __init__(self, binding: Binding, options: QueueOptions, log: Callable[[str], None]) -> None:
        from azure.storage.queue import QueueClient

        from shared.clients.transport import sdk_options

        self.binding = binding
        self.options = options
        self.log = log
        self.queue_name = str(binding.trigger["queueName"])
        connection = os.environ[str(binding.trigger.get("connection") or "AzureWebJobsStorage")]
        self.queue = QueueClient.from_connection_string(connection, self.queue_name, **sdk_options())
        self.poison = QueueClient.from_connection_string(connection, f"{self.queue_name}-poison", **sdk_options())
        self.stopping = threading.Event()
        self.running = 0
        self.lock = threading.Condition()
        self.pool = ThreadPoolExecutor(
            max_workers=options.batch_size + options.new_batch_threshold, thread_name_prefix=binding.name
        )
        self.processed = 0
        self.failed = 0
        self.poisoned = 0

    def _decode(self, content: str) -> bytes:
        if self.options.message_encoding == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except ValueError:
                return content.encode()
        return content.encode()

    def _run(self, message: Any) -> None:
        try:
            queue_message = QueueMessage(  # type: ignore[no-untyped-call]
                id=message.id,
                body=self._decode(message.content),
                dequeue_count=message.dequeue_count,
                pop_receipt=message.pop_receipt,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
            )
            try:
                self.binding.function(queue_message)
            except Exception as exc:  # noqa: BLE001 - what the host does with any failure
                self.failed += 1
                name, tries = self.binding.name, message.dequeue_count
                self.log(f"{name}: message {message.id} failed ({type(exc).__name__}), try {tries}")
                if message.dequeue_count >= self.options.max_dequeue_count:
                    self.poison.send_message(message.content)
                    self.queue.delete_message(message)
                    self.poisoned += 1
                    self.log(f"{self.binding.name}: message {message.id} moved to {self.queue_name}-poison")
                else:
                    self.queue.update_message(message, visibility_timeout=int(self.options.visibility_timeout_s))
            else:
                self.queue.delete_message(message)
                self.processed += 1
        finally:
            with self.lock:
                self.running -= 1
                self.lock.notify_all()

    def run(self) -> None:
        interval = MIN_POLLING_INTERVAL_S
        with contextlib.suppress(Exception):
            self.poison.create_queue()
        while not self.stopping.is_set():
            with self.lock:
                while self.running > self.options.new_batch_threshold and not self.stopping.is_set():
                    self.lock.wait(0.5)
            try:
                batch = self.options.batch_size  # one GET for the whole batch, as the host does
                messages = list(
                    self.queue.receive_messages(messages_per_page=batch, max_messages=batch, visibility_timeout=LEASE_S)
                )
            except Exception as exc:  # noqa: BLE001 - storage down: keep polling, as the host does
                self.log(f"{self.binding.name}: cannot read {self.queue_name} ({type(exc).__name__}); retrying")
                messages = []
            if not messages:
                self.stopping.wait(interval)
                interval = min(interval * 2, self.options.max_polling_interval_s)
                continue
            interval = MIN_POLLING_INTERVAL_S
            for message in messages:
                with self.lock:
                    self.running += 1
                self.pool.submit(self._run, message)

    def stop(self) -> None:
        self.stopping.set()
        self.pool.shutdown(wait=True)


# -- timer triggers ----------------------------------------------------------------------------------


class TimerSchedule:
    """One timer trigger's NCRONTAB (six fields, seconds first), as the host runs it: each
    occurrence fires once; if the host was not running (or was late) when one or more were due,
    one invocation reports ``past_due``."""

    PAST_DUE_AFTER_S = 1.0

    def __init__(self, binding: Binding, start: dt.datetime) -> None:
        self.binding = binding
        self.expression = str(binding.trigger["schedule"])
        self.next_due = self._after(start)
        self.run_on_startup = bool(binding.trigger.get("runOnStartup"))

    def _after(self, moment: dt.datetime) -> dt.datetime:
        due: dt.datetime = croniter(self.expression, moment, second_at_beginning=True).get_next(dt.datetime)
        return due

    def fire_due(self, now: dt.datetime) -> bool:
        """Fires the function if an occurrence is due at ``now``; True if it fired."""
        if now < self.next_due:
            return False
        past_due = (now - self.next_due).total_seconds() > self.PAST_DUE_AFTER_S
        self.next_due = self._after(now)
        self.binding.function(TimerRequest(past_due=past_due))
        return True


# -- the host ----------------------------------------------------------------------------------------


def load_local_settings(path: Path) -> None:
    """``Values`` of local.settings.json into the environment, as ``func start`` does (a value
    already in the environment wins)."""
    if not path.exists():
        return
    for key, value in json.loads(path.read_text()).get("Values", {}).items():
        os.environ.setdefault(key, str(value))


class FunctionsHost:
    def __init__(self, port: int, host_json: Path, log: Callable[[str], None] = print) -> None:
        self.port = port
        self.log = log
        self.app = load_app()
        self.bindings = bindings_of(self.app)
        self.http = HttpHost(self.app)
        self.options = QueueOptions.from_host_json(host_json)
        self.listeners: list[QueueListener] = []
        self.timers: list[TimerSchedule] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.server: Any = None

    def listing(self) -> str:
        lines = ["Functions:", ""]
        for route in sorted(self.http.routes, key=lambda r: r.binding.name):
            methods = ",".join(sorted(route.methods))
            lines.append(f"        {route.binding.name}: [{methods}] http://127.0.0.1:{self.port}/{route.template}")
        for binding in sorted(self.bindings, key=lambda b: b.name):
            if binding.trigger_type != "httpTrigger":
                detail = binding.trigger.get("queueName") or binding.trigger.get("schedule")
                lines.append(f"        {binding.name}: {binding.trigger_type} ({detail})")
        return "\n".join(lines)

    def start(self) -> None:
        from waitress.server import create_server

        self.server = create_server(self.http, host="127.0.0.1", port=self.port, threads=16, ident="iomt-hub")
        self._thread("http", self.server.run)
        for binding in self.bindings:
            if binding.trigger_type == "queueTrigger":
                listener = QueueListener(binding, self.options, self.log)
                self.listeners.append(listener)
                self._thread(binding.name, listener.run)
            elif binding.trigger_type == "timerTrigger":
                self.timers.append(TimerSchedule(binding, dt.datetime.now(dt.UTC)))
        if self.timers:
            self._thread("timers", self._run_timers)
        self.log(self.listing())
        self.log(f"\nHost started: http://127.0.0.1:{self.port} (Ctrl-C stops it)")

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _run_timers(self) -> None:
        for timer in self.timers:
            if timer.run_on_startup:
                timer.binding.function(TimerRequest(past_due=False))
        while not self.stopping.wait(0.5):
            for timer in self.timers:
                try:
                    if timer.fire_due(dt.datetime.now(dt.UTC)):
                        self.log(f"{timer.binding.name}: fired")
                except Exception as exc:  # noqa: BLE001 - a failed run waits for the next occurrence
                    self.log(f"{timer.binding.name}: failed ({type(exc).__name__})")

    def stop(self) -> None:
        self.stopping.set()
        for listener in self.listeners:
            listener.stop()
        if self.server is not None:
            self.server.close()
        for thread in self.threads:
            thread.join(timeout=10)
        self.log("Host stopped.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the function app locally (the project's own Functions host)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FUNCTIONS_PORT", "7071")))
    parser.add_argument("--host-json", type=Path, default=REPO / "host.json")
    parser.add_argument("--settings", type=Path, default=REPO / "local.settings.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    load_local_settings(args.settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = FunctionsHost(args.port, args.host_json)
    stopped = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, and a supervisor's stop
        signal.signal(stop_signal, lambda *_: stopped.set())
    host.start()
    while not stopped.wait(0.5):
        pass
    host.log("Stopping the host...")
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
