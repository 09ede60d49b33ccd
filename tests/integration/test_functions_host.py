"""The local Functions host's HTTP routing, from the app's own binding metadata."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from local.functions_host import (
    Binding,
    HttpHost,
    QueueOptions,
    TimerSchedule,
    _timespan_s,
    bindings_of,
    load_app,
)
from shared.localstack import local_settings
from tests.helpers.common import MEDISANTE_KEY, REPO

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


# -- the host itself, as `make run` starts it ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def until(condition, what: str, timeout_s: float = 30.0):
    """Polls ``condition`` until it holds (a deadline for a real condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def running_host(tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    host_json = json.loads((REPO / "host.json").read_text())
    queues = host_json["extensions"]["queues"]
    queues.update({"visibilityTimeout": "00:00:00", "maxDequeueCount": 3, "maxPollingInterval": "00:00:00.500"})
    path = tmp_path_factory.mktemp("host") / "host.json"
    path.write_text(json.dumps(host_json))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "local" / "functions_host.py"), "--port", str(port), "--host-json", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **local_settings()},
        cwd=REPO,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # the start-up listing, then the ready line
        lines.append(line)
        if line.startswith("Host started"):
            break
    listing = "".join(lines)
    assert f"health: [GET] http://127.0.0.1:{port}/api/health" in listing
    assert "process_raw_record: queueTrigger (raw-ingest)" in listing
    assert "withings_poller: timerTrigger (0 */5 * * * *)" in listing
    threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()  # keep draining
    yield f"http://127.0.0.1:{port}", process
    if process.poll() is None:
        process.kill()


def placeholder(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", template)


def test_every_http_route_is_answered_by_its_function(running_host):
    url, _ = running_host
    for route in HOST.routes:
        for method in sorted(route.methods):
            response = requests.request(method, f"{url}/{placeholder(route.template)}", timeout=30)
            if method == "HEAD":
                assert response.status_code in (200, 404), route.template
                continue
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            message = (body.get("error") or {}).get("message", "")
            assert message != "no function serves this path", (method, route.template)
            assert response.status_code != 405, (method, route.template)
            assert response.status_code < 500 or route.binding.name == "health", (method, route.template, body)


def test_a_queue_message_is_consumed_and_a_failing_one_reaches_poison(running_host, clean_cosmos, store):
    url, _ = running_host
    store.poison_queue.clear_messages()
    fixture = (REPO / "tests" / "fixtures" / "medisante" / "glucose.json").read_bytes()
    response = requests.post(
        f"{url}/api/health-data/medisante/medisante-json",
        data=fixture,
        headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 202
    receipt = response.json()["receiptId"]
    parked = clean_cosmos.parked  # no device is assigned: the worker parks the reading
    until(lambda: any(item.receipt_id == receipt for item in parked.all()), "the worker to park the record")

    store.queue.send_message(b"not a raw record")  # the worker raises on it: the host retries, then gives up
    poisoned = until(
        lambda: list(store.poison_queue.peek_messages(max_messages=5)), "the message to reach the poison queue"
    )
    assert [message.content for message in poisoned] == [b"not a raw record"]
    assert store.queue.get_queue_properties().approximate_message_count == 0


def test_ctrl_c_stops_the_host_cleanly(running_host):
    url, process = running_host
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/openapi.json", timeout=2)


def test_a_timer_fires_on_its_ncrontab_schedule_and_reports_past_due():
    fired: list[bool] = []
    [poller] = [b for b in bindings_of(load_app()) if b.trigger_type == "timerTrigger"]
    schedule = TimerSchedule(
        Binding(poller.name, poller.trigger, lambda timer: fired.append(timer.past_due)),
        dt.datetime(2026, 12, 2, 12, 4, 59, tzinfo=dt.UTC),
    )
    assert schedule.next_due == dt.datetime(2026, 12, 2, 12, 5, tzinfo=dt.UTC)
    assert not schedule.fire_due(dt.datetime(2026, 12, 2, 12, 4, 59, 900000, tzinfo=dt.UTC))
    assert schedule.fire_due(dt.datetime(2026, 12, 2, 12, 5, 0, 200000, tzinfo=dt.UTC))
    assert not schedule.fire_due(dt.datetime(2026, 12, 2, 12, 6, tzinfo=dt.UTC))
    assert schedule.fire_due(dt.datetime(2026, 12, 2, 12, 21, tzinfo=dt.UTC))  # 12:10, 12:15, 12:20 were missed
    assert fired == [False, True]
    assert schedule.next_due == dt.datetime(2026, 12, 2, 12, 25, tzinfo=dt.UTC)


def test_the_real_poller_runs_when_its_timer_fires(clean_cosmos):
    [poller] = [b for b in bindings_of(load_app()) if b.trigger_type == "timerTrigger"]
    schedule = TimerSchedule(poller, dt.datetime(2026, 12, 2, 12, 4, 59, tzinfo=dt.UTC))
    assert schedule.fire_due(dt.datetime(2026, 12, 2, 12, 5, tzinfo=dt.UTC))  # no linked user: queues nothing


def test_host_json_timespans_and_queue_options_are_read():
    options = QueueOptions.from_host_json(REPO / "host.json")
    assert (options.batch_size, options.new_batch_threshold, options.max_dequeue_count) == (32, 16, 5)
    assert (options.visibility_timeout_s, options.max_polling_interval_s) == (30.0, 2.0)
    assert _timespan_s("1.02:03:04.5", 0) == 86400 + 7384.5


def test_the_vscode_launchers_start_a_host_and_name_tasks_that_exist():
    launch = json.loads((REPO / ".vscode" / "launch.json").read_text())
    tasks = {task["label"]: task for task in json.loads((REPO / ".vscode" / "tasks.json").read_text())["tasks"]}
    for configuration in launch["configurations"]:
        assert configuration["preLaunchTask"] in tasks
    [own] = [c for c in launch["configurations"] if c["request"] == "launch"]
    assert own["program"].endswith("local/functions_host.py")
    assert (REPO / own["program"].replace("${workspaceFolder}/", "")).exists()
    assert "debugpy" in tasks["func: host start"]["options"]["env"]["languageWorkers__python__arguments"]
