"""Conversion throughput per source, against a plain ``json.loads`` + ``json.dumps`` round trip
of the same input measured in the same run (these machines are noisy: read the ratio).

    python bench/convert.py [--readings 100000]

Target (issue 3): ratio at most 3. Also prints peak memory (tracemalloc) per source.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import conversion
from shared.fhir.mapping import batch_bundle

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def _later(instant: str, minutes: int) -> str:
    """The same RFC 3339 instant (offset kept) ``minutes`` later: every reading has its own time."""
    moment = dt.datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return (moment + dt.timedelta(minutes=minutes)).isoformat()


def medisante_payloads(count: int) -> list[str]:
    templates = [
        json.loads((FIXTURES / "medisante" / f"{n}.json").read_text()) for n in ("blood-pressure", "glucose", "weight")
    ]
    payloads = []
    for i in range(count):
        document = copy.deepcopy(templates[i % 3])
        document["metadata"]["correlationId"] = f"bench-{i:08d}"
        document["measurements"]["timestamp"] = _later(document["measurements"]["timestamp"], i)
        payloads.append(json.dumps(document))
    return payloads


def healthkit_payloads(count: int, per_upload: int = 100) -> list[str]:
    upload = json.loads((FIXTURES / "healthkit" / "upload.json").read_text())
    samples = upload["samples"]
    payloads = []
    for start in range(0, count, per_upload):
        batch = []
        for i in range(start, min(start + per_upload, count)):
            sample = copy.deepcopy(samples[i % len(samples)])
            sample["uuid"] = f"{i:08X}-0000-4000-8000-000000000000"
            sample["startDate"] = _later(sample["startDate"], i)
            sample["endDate"] = _later(sample.get("endDate", sample["startDate"]), i)
            batch.append(sample)
        payloads.append(json.dumps({"samples": batch, "deleted": []}))
    return payloads


def withings_payloads(count: int, per_answer: int = 100) -> list[str]:
    answer = json.loads((FIXTURES / "withings" / "getmeas.json").read_text())
    groups = answer["body"]["measuregrps"]
    payloads = []
    for start in range(0, count, per_answer):
        batch = []
        for i in range(start, min(start + per_answer, count)):
            group = copy.deepcopy(groups[i % len(groups)])
            group["grpid"] = 3_000_000_000 + i
            for key in ("date", "created", "modified"):
                group[key] += 60 * i
            batch.append(group)
        payloads.append(json.dumps({"status": 0, "body": {**answer["body"], "measuregrps": batch}}))
    return payloads


def timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    produced = work()
    return time.perf_counter() - started, produced


def peak_memory(work: Callable[[], int]) -> int:
    """Peak bytes allocated while the work runs (a separate run: tracing slows it down)."""
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000, help="source records per source")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side; the best of each is kept")
    args = parser.parse_args()
    workloads = {
        "medisante": ("medisante-json", medisante_payloads(args.readings)),
        "healthkit": ("healthkit-json", healthkit_payloads(args.readings)),
        "withings": ("withings-json", withings_payloads(args.readings)),
    }
    print(
        f"{'source':<10} {'records':>8} {'resources':>9} {'convert/s':>10} {'json/s':>10} {'ratio':>6} {'peak KiB':>9}"
    )
    for source, (format_name, payloads) in workloads.items():

        def round_trip(payloads: list[str] = payloads) -> int:
            for payload in payloads:
                json.dumps(json.loads(payload))
            return 0

        def convert(payloads: list[str] = payloads, format_name: str = format_name, source: str = source) -> int:
            produced = 0
            for payload in payloads:
                _, mapped = conversion.convert(source, format_name, payload, lambda _: "bench-patient")
                orjson.dumps(batch_bundle(mapped.resources))
                produced += len(mapped.resources)
            return produced

        baseline_s = convert_s = float("inf")
        for _ in range(args.repeat):  # interleaved, best of each: noise only ever adds time
            baseline_s = min(baseline_s, timed(round_trip)[0])
            elapsed, resources = timed(convert)
            convert_s = min(convert_s, elapsed)
        peak = peak_memory(convert)
        records = args.readings
        print(
            f"{source:<10} {records:>8} {resources:>9} {records / convert_s:>10.0f} {records / baseline_s:>10.0f} "
            f"{convert_s / baseline_s:>6.2f} {peak / 2**10:>9.0f}"
        )


if __name__ == "__main__":
    main()
