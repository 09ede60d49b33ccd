"""End-to-end throughput of the pipeline on the local stack, through the project's own Functions
host at its default concurrency (host.json), each figure against a ceiling measured in the same
run (these machines are noisy: read the ratios, not the rates).

    python bench/pipeline.py [--records 600] [--uploads 12] [--repeats 2]   # `make bench` runs it

Prints, in one run (the first four measured --repeats times, interleaved, the best of each kept,
after a warm-up pass):
- the FHIR ceiling: the same kind of Observations PUT directly in 500-entry batch bundles, as
  many as the HealthKit uploads hold;
- the host floor: one-reading records received and deleted by the host's queue driver with the
  function not called;
- one-reading Medisanté records already on the queue, drained by the worker: readings/s, the
  ratio to the host floor and to the FHIR ceiling, FHIR requests per 1,000 readings, raw
  archive writes per 1,000 records, Cosmos DB and Storage calls per record (the host's queue
  calls included);
- HealthKit uploads of 1,000 samples, uploaded while the host runs: readings/s end to end
  against the ceiling;
- a Withings backfill: service calls per answer page besides the Withings call;
- acknowledgement p50/p99 of the Medisanté webhook over HTTP at 1, 10 and 50 senders;
- `import function_app` against `import azure.functions`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from azure.core.pipeline.transport import RequestsTransport

from local.functions_host import Binding, QueueListener, QueueOptions, bindings_of, load_app, serving
from shared.composition import get_context, reset_context
from shared.localstack import LOCAL_MEDISANTE_API_KEY, local_settings

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
IMEI = "866000000000123"  # the weight fixture's scale


# -- counting the calls each service gets --------------------------------------------------------


class Calls:
    """HTTP calls by service, counted where every Azure SDK client sends them."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.ports = {
            urlsplit(settings["COSMOS_ENDPOINT"]).port: "cosmos",
            10000: "storage",
            10001: "storage",
            urlsplit(settings["KEYVAULT_URL"]).port: "keyvault",
        }
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        original = RequestsTransport.send
        calls = self

        def send(transport: Any, request: Any, **kwargs: Any) -> Any:
            service = calls.ports.get(urlsplit(request.url).port, "other")
            with calls.lock:
                calls.counts[service] += 1
            return original(transport, request, **kwargs)

        RequestsTransport.send = send

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


def fhir_requests(context: Any) -> Callable[[], int]:
    client = context.fhir
    count = [0]
    original = client._request

    def request(method: str, path: str, **kwargs: Any) -> Any:
        count[0] += 1
        return original(method, path, **kwargs)

    client._request = request
    return lambda: count[0]


# -- the measurements ----------------------------------------------------------------------------


def weight_payload(n: int) -> str:
    document = json.loads((FIXTURES / "medisante" / "weight.json").read_text())
    document["metadata"]["correlationId"] = f"bench-{n}"
    moment = dt.datetime(2026, 6, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n)
    document["measurements"]["timestamp"] = moment.isoformat()
    return json.dumps(document)


def fhir_ceiling(context: Any, readings: int) -> float:
    from shared import conversion

    resources = []
    for n in range(readings):
        resources += [
            r
            for r in conversion.convert("medisante", "medisante-json", weight_payload(10**6 + n), lambda _: "bench-p")[
                1
            ].resources
            if r["resourceType"] == "Observation"
        ]
    started = time.perf_counter()
    context.fhir.write(resources)
    return readings / (time.perf_counter() - started)


def drain(listener: QueueListener, expected: int, meanwhile: Callable[[], None] = lambda: None) -> float:
    """Runs the host's queue driver until ``expected`` messages were handled (``meanwhile``: what
    runs while it does, e.g. the deliveries); the seconds it took."""
    thread = threading.Thread(target=listener.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    meanwhile()
    while listener.processed + listener.poisoned < expected:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    listener.stop()
    thread.join(timeout=30)
    return elapsed


def listener_for(binding: Binding, options: QueueOptions, function: Callable[..., Any] | None = None) -> QueueListener:
    target = Binding(binding.name, binding.trigger, function or binding.function)
    return QueueListener(target, options, log=lambda _: None)


def enqueue_records(context: Any, count: int) -> None:
    store = context.raw_store
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda n: store.accept(
                    source="medisante", format="medisante-json", body=weight_payload(n), content_type="application/json"
                ),
                range(count),
            )
        )


def prepare(context: Any) -> None:
    requests.put(
        f"{context.settings.fhir_url}/Patient/bench-p",
        json={"resourceType": "Patient", "id": "bench-p"},
        headers={"content-type": "application/fhir+json"},
        timeout=10,
    ).raise_for_status()
    from shared.devices.models import AssignRequest

    request = AssignRequest.model_validate(
        {
            "deviceId": IMEI,
            "deviceProvider": "medisante",
            "deviceType": "scale",
            "assignedPatientId": "bench-p",
            "from": "2026-01-01T00:00:00Z",
        }
    )
    from shared.errors import Conflict

    with contextlib.suppress(Conflict):  # assigned by an earlier run
        context.assignment.by_clinic(request, "bench")


def acknowledgements(url: str, senders: int, per_sender: int) -> tuple[float, float]:
    body = (FIXTURES / "medisante" / "weight.json").read_bytes()
    headers = {"x-api-key": LOCAL_MEDISANTE_API_KEY, "content-type": "application/json"}

    def send(_: int) -> list[float]:
        session = requests.Session()
        times = []
        for _ in range(per_sender):
            started = time.perf_counter()
            answer = session.post(f"{url}/api/health-data/medisante/medisante-json", data=body, headers=headers)
            times.append(time.perf_counter() - started)
            assert answer.status_code == 202, answer.text
        return times

    with ThreadPoolExecutor(max_workers=senders) as pool:
        times = sorted(t for chunk in pool.map(send, range(senders)) for t in chunk)
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def import_ratio() -> tuple[float, float]:
    def best(code: str) -> float:
        runs = []
        for _ in range(5):
            out = subprocess.run(  # noqa: S603 - our own interpreter
                [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(float(out.stdout.strip()))
        return min(runs)

    return best("import azure.functions"), best("import azure.functions, function_app")


@contextmanager
def quiet_queues(context: Any) -> Iterator[None]:
    context.raw_store.queue.clear_messages()
    yield
    context.raw_store.queue.clear_messages()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600)
    # 12,000 readings: the first upload's way to its first FHIR write (ingest, the host's first
    # poll, its conversion: ~0.2 s) is then a small part of a throughput measure.
    parser.add_argument("--uploads", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    settings = local_settings()
    os.environ.update(settings)
    logging.getLogger("waitress").setLevel(logging.ERROR)  # its queue-depth warnings are not results
    reset_context()
    context = get_context()
    calls = Calls(settings)
    fhir_count = fhir_requests(context)
    options = QueueOptions.from_host_json(REPO / "host.json")
    [worker] = [b for b in bindings_of(load_app()) if b.name == "process_raw_record"]
    prepare(context)
    rows: list[tuple[str, str]] = []

    upload = json.loads((FIXTURES / "healthkit" / "upload.json").read_text())
    template = next(s for s in upload["samples"] if s["type"] == "HKQuantityTypeIdentifierHeartRate")
    bodies = [  # as the app sends them: the BFF parses each request's body
        json.dumps(
            {
                "permissions": ["HKQuantityTypeIdentifierHeartRate"],
                "samples": [
                    {**template, "uuid": f"{u:08X}-0000-4000-8000-{n:012X}", "device": None, "source": None}
                    for n in range(1000)
                ],
            }
        )
        for u in range(args.uploads)
    ]

    def upload_all() -> None:
        for body in bodies:
            outcome = context.healthkit_ingestion.ingest(json.loads(body), "bench-p", "bench")
            assert outcome.accepted == 1000, outcome.rejected[:3]

    # Each measure is taken --repeats times, interleaved with the others, and the best kept: on
    # these machines a disturbance (another process, a collection) only ever slows one down. A
    # first pass is not kept: it warms the local servers' JIT compilers and the connection pools.
    ceilings, floors, rates, uploads = [], [], [], []
    used, fhir_used, archive_writes = Counter[str](), 0, 0
    for repeat in range(args.repeats + 1):
        kept = repeat > 0
        with quiet_queues(context):
            enqueue_records(context, args.records)
            floors.append(args.records / drain(listener_for(worker, options, lambda message: None), args.records))
        with quiet_queues(context):
            enqueue_records(context, args.records)
            before, fhir_before, archived_before = calls.snapshot(), fhir_count(), context.group_archive.writes
            rates.append(args.records / drain(listener_for(worker, options), args.records))
            if kept:
                used += calls.snapshot() - before
                fhir_used += fhir_count() - fhir_before
                archive_writes += context.group_archive.writes - archived_before
        ceilings.append(fhir_ceiling(context, max(2000, args.uploads * 1000)))  # as many as uploaded
        with quiet_queues(context):  # the uploads arrive while the host runs, as the app's would
            uploads.append(args.uploads * 1000 / drain(listener_for(worker, options), args.uploads, upload_all))
    ceiling, floor, rate, healthkit = (max(measures[1:]) for measures in (ceilings, floors, rates, uploads))
    drained = args.records * args.repeats
    per_record = (used["cosmos"] + used["storage"]) / drained
    rows += [
        ("FHIR ceiling (500-entry batches)", f"{ceiling:,.0f} readings/s"),
        (f"host floor ({options.batch_size}+{options.new_batch_threshold} at once)", f"{floor:,.0f} records/s"),
        ("Medisanté one-reading records, drained", f"{rate:,.0f} readings/s"),
        ("  / host floor", f"{rate / floor:.2f}  (target >= 0.5)"),
        ("  / FHIR ceiling", f"{rate / ceiling:.3f}  (target >= 0.02)"),
        ("  FHIR requests per 1,000 readings", f"{fhir_used * 1000 / drained:.1f}  (target <= 40)"),
        ("  raw archive writes per 1,000 records", f"{archive_writes * 1000 / drained:.1f}"),
        (
            "  Cosmos + Storage calls per record",
            f"{per_record:.2f}  (target <= 2.5; cosmos {used['cosmos'] / drained:.2f},"
            f" storage {used['storage'] / drained:.2f})",
        ),
        ("HealthKit uploads of 1,000 samples", f"{healthkit:,.0f} readings/s"),
        ("  / FHIR ceiling", f"{healthkit / ceiling:.2f}  (target >= 0.8)"),
    ]

    rows += withings_backfill(context, calls, options)

    with serving(7071) as url:
        for senders in (1, 10, 50):
            p50, p99 = acknowledgements(url, senders, max(4, 200 // senders))
            rows.append(
                (f"webhook acknowledgement, {senders} senders", f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
            )
        context.raw_store.queue.clear_messages()

    base, app = import_ratio()
    rows.append(("import function_app / import azure.functions", f"{app / base:.2f}  (target <= 2)"))

    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def withings_backfill(context: Any, calls: Calls, options: QueueOptions) -> list[tuple[str, str]]:
    from shared.clients.cosmos import delete_if_present
    from shared.consent.models import ConsentGrant
    from shared.sources.withings.budget import BUDGET_ID
    from shared.sources.withings.client import Tokens
    from shared.sources.withings.jobs import SyncJob

    delete_if_present(context.withings_budget.counter.container, BUDGET_ID, BUDGET_ID)  # a fresh minute's budget
    api = context.settings.withings_api_url
    now = int(time.time())
    weight = {"type": 1, "unit": -3}
    groups = [
        {"grpid": 9000 + n, "attrib": 0, "date": now - 3600 - n, "created": now - 3600, "modified": now - 300,
         "category": 1, "deviceid": "bench-scale", "measures": [{**weight, "value": 70000 + n}]}
        for n in range(120)  # 60 pages of 2: within the minute's budget of 120 calls
    ]  # fmt: skip
    requests.post(f"{api}/_sim/user", json={"userid": "424242", "measuregrps": groups}, timeout=10).raise_for_status()
    consent = requests.get(
        f"{api}/oauth2_user/authorize2",
        params={"response_type": "code", "client_id": context.settings.withings_client_id,
                "redirect_uri": "http://127.0.0.1:7071/api/withings/callback", "scope": "user.metrics", "state": "s"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    code = consent.headers["Location"].split("code=")[1].split("&")[0]
    tokens: Tokens = context.withings_client.exchange_code(code, "http://127.0.0.1:7071/api/withings/callback")
    context.withings_tokens.save(tokens)
    context.consents.grant(
        ConsentGrant(patient_id="bench-p", source="withings", scopes=["body-weight"], account_id="424242"), "bench"
    )
    before = calls.snapshot()
    stats_before = requests.get(f"{api}/_sim/stats", timeout=10).json()["stats"]
    context.withings_jobs.sync.run(SyncJob(userid="424242", appli=1))
    stats_after = requests.get(f"{api}/_sim/stats", timeout=10).json()["stats"]
    used = calls.snapshot() - before
    pages = sum(v for k, v in stats_after.items() if k.startswith("/measure")) - sum(
        v for k, v in stats_before.items() if k.startswith("/measure")
    )
    services = used["cosmos"] + used["storage"] + used["keyvault"]
    context.raw_store.queue.clear_messages()
    return [
        (
            f"Withings backfill ({pages} getmeas pages)",
            f"{services / max(pages, 1):.2f} service calls per page  (target <= 2)",
        ),
    ]


if __name__ == "__main__":
    main()
