"""The Withings notification handler's answer time, in process, with its one queue write going
to Azurite (the local stack must be up: `make local-up`). Withings gives up after 2 s.

    python bench/notify.py [--calls 1000]

Prints the median and p99 answer times and their ratio to Withings' 2 s limit (one run: these
machines are noisy, read the ratios)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import azure.functions as func

from shared.api import withings as withings_api
from shared.clients.storage import queue_client
from shared.composition import get_context, reset_context
from shared.localstack import local_settings
from shared.names import WITHINGS_SYNC_QUEUE

LIMIT_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    os.environ.update(local_settings())
    reset_context()
    context = get_context()
    context.ensure_storage()
    queue = queue_client(context.settings, WITHINGS_SYNC_QUEUE)
    queue.clear_messages()
    secret = context.withings_notify_secret
    durations = []
    for n in range(args.calls):
        request = func.HttpRequest(
            method="POST",
            url=f"http://localhost/api/withings/notify/{secret}",
            headers={"content-type": "application/x-www-form-urlencoded"},
            route_params={"secret": secret},
            params={},
            body=f"userid={900000 + n}&appli=4&startdate=1780039600&enddate=1780039700".encode(),
        )
        started = time.perf_counter()
        response = withings_api.withings_notify(request)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200
    queue.clear_messages()
    durations.sort()
    median = statistics.median(durations)
    p99 = durations[int(len(durations) * 0.99) - 1]
    print(f"calls {len(durations)}  median {median * 1000:.2f} ms  p99 {p99 * 1000:.2f} ms")
    print(f"ratio to the 2 s limit: median {median / LIMIT_S:.4f}  p99 {p99 / LIMIT_S:.4f}")


if __name__ == "__main__":
    main()
