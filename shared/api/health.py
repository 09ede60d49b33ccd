"""``GET /api/health``: is each dependency reachable? Names and latencies only: no secret,
no data, no error text."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.api.context import get_context
from shared.api.http import endpoint, json_response

if TYPE_CHECKING:
    from shared.composition import AppContext

bp = func.Blueprint()  # type: ignore[no-untyped-call]

_PROBE_SECRET = "health-probe-absent"  # noqa: S105 - a name, not a secret


def _probe(check: Callable[[], Any]) -> dict[str, Any]:
    from azure.core.exceptions import ResourceNotFoundError

    started = time.perf_counter()
    try:
        check()
        ok = True
    except ResourceNotFoundError:
        ok = True  # the vault answered, authorised, that the probe secret does not exist
    except Exception:  # noqa: BLE001 - a health check reports failure, whatever it was
        ok = False
    return {"ok": ok, "latencyMs": round((time.perf_counter() - started) * 1000, 1)}


def dependency_checks(context: AppContext) -> dict[str, Callable[[], Any]]:
    return {
        "storage": lambda: context.raw_store.queue.get_queue_properties(),
        "cosmos": lambda: context.cosmos.read(),
        "keyvault": lambda: context.secrets.get_secret(_PROBE_SECRET),
        "fhir": lambda: context.fhir.capabilities(),
    }


def check_health(context: AppContext) -> dict[str, Any]:
    checks = dependency_checks(context)
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = {name: pool.submit(_probe, check) for name, check in checks.items()}
        results = {name: future.result() for name, future in futures.items()}
    return {"status": "ok" if all(r["ok"] for r in results.values()) else "degraded", "dependencies": results}


@bp.route(route="api/health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def health(req: func.HttpRequest) -> func.HttpResponse:
    report = check_health(get_context())
    from shared.api.answers import Health

    return json_response(Health.model_validate(report), status=200 if report["status"] == "ok" else 503)
