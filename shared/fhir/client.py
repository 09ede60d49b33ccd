"""The one FHIR REST client: reads, and ``batch`` bundles of PUTs with per-entry results.

Only failed entries are sent again; 429 and 5xx (whole request or single entries) are retried
with backoff that honours ``Retry-After`` and ``x-ms-retry-after-ms``; 401/403 and
validation refusals are not retried. Works against the AHDS FHIR service (bearer token for
``<url>/.default`` from azure-identity) and any plain R4 server (no token in local mode)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from shared.clients.transport import http_session
from shared.errors import FhirAuthError, FhirError, FhirNotFound, FhirRejected, FhirThrottled, FhirUnavailable
from shared.fhir.mapping import put_entry
from shared.settings import Settings

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0


class _Retry(FhirError):
    """Some work is left to send again; carries the server's hint, if any, and whether the
    server said it was throttling (429) or failed otherwise (unreachable, dropped, 5xx)."""

    def __init__(self, message: str, retry_after_s: float | None, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.wait_hint_s = retry_after_s
        self.throttled = throttled

    def gave_up(self, message: str) -> FhirError:
        return (FhirThrottled if self.throttled else FhirUnavailable)(message)


@dataclass
class BatchReport:
    written: int = 0
    attempts: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


TokenProvider = Callable[[], str]


def retry_after_seconds(headers: Any) -> float | None:
    """``x-ms-retry-after-ms`` (AHDS) or ``Retry-After`` in seconds, capped."""
    for name, scale in (("x-ms-retry-after-ms", 0.001), ("Retry-After", 1.0)):
        raw = headers.get(name) if headers else None
        if raw is None:
            continue
        try:
            return min(max(float(raw) * scale, 0.0), MAX_RETRY_AFTER_S)
        except (TypeError, ValueError):
            continue
    return None


def _outcome_text(outcome: Any) -> str:
    if not isinstance(outcome, dict):
        return "no OperationOutcome"
    texts = []
    for issue in outcome.get("issue") or []:
        if isinstance(issue, dict):
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            if text:
                texts.append(str(text))
    return "; ".join(texts)[:500] or "no details"


class FhirClient:
    def __init__(
        self,
        base_url: str,
        *,
        token_provider: TokenProvider | None = None,
        batch_size: int = 500,
        max_attempts: int = 6,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self._token_provider = token_provider
        self._sleep = sleep
        self.session = http_session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": FHIR_JSON, "Content-Type": FHIR_JSON})

    @classmethod
    def from_settings(cls, settings: Settings) -> FhirClient:
        token_provider = None if settings.is_local else _entra_token_provider(settings)
        return cls(
            settings.fhir_url,
            token_provider=token_provider,
            batch_size=settings.fhir_batch_size,
            max_attempts=settings.fhir_max_attempts,
            timeout_s=settings.fhir_timeout_s,
        )

    # -- plumbing -------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self._token_provider is not None:
            headers["Authorization"] = f"Bearer {self._token_provider()}"
        try:
            return self.session.request(
                method, f"{self.base_url}/{path.lstrip('/')}", headers=headers, timeout=self.timeout_s, **kwargs
            )
        except requests.RequestException as exc:
            raise _Retry("FHIR server unreachable (connection failed, dropped or timed out)", None) from exc

    def _raise_for(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            outcome = response.json()
        except ValueError:
            outcome = None
        text = _outcome_text(outcome)
        if status in RETRYABLE_STATUSES:
            raise _Retry(
                f"{what}: HTTP {status}: {text}", retry_after_seconds(response.headers), throttled=status == 429
            )
        if status in (401, 403):
            raise FhirAuthError(f"{what}: HTTP {status}: {text}", http_status=status, outcome=outcome)
        if status in (404, 410):
            raise FhirNotFound(f"{what}: HTTP {status}", http_status=status, outcome=outcome)
        raise FhirRejected(f"{what}: HTTP {status}: {text}", http_status=status, outcome=outcome)

    def _retrying(self) -> Retrying:
        exponential = wait_exponential_jitter(multiplier=0.5, max=MAX_RETRY_AFTER_S)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Retry) and error.wait_hint_s is not None:
                return error.wait_hint_s
            return float(exponential(state))

        return Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            reraise=True,
        )

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            for attempt in self._retrying():
                with attempt:
                    response = self._request(method, path, **kwargs)
                    self._raise_for(response, what)
                    return response.json() if response.content else None
        except _Retry as exc:
            raise exc.gave_up(f"{exc.message} (gave up after {self.max_attempts} attempts)") from exc
        raise AssertionError("unreachable")

    # -- API ------------------------------------------------------------------------------
    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"{resource_type}/{resource_id}", f"read {resource_type}")
        return result

    def search(self, resource_type: str, params: dict[str, str]) -> list[dict[str, Any]]:
        bundle = self._call("GET", resource_type, f"search {resource_type}", params=params)
        return [entry["resource"] for entry in (bundle or {}).get("entry", []) if "resource" in entry]

    def capabilities(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "metadata", "capabilities")
        return result

    def write(self, resources: Sequence[dict[str, Any]], *, raise_on_rejected: bool = True) -> BatchReport:
        """PUTs every resource in ``batch`` bundles of at most ``batch_size`` entries.

        Raises ``FhirRejected`` (after writing everything else) if the server refused some
        resources as invalid, ``FhirThrottled`` (429s) or ``FhirUnavailable`` (unreachable, 5xx) if
        retries ran out, ``FhirAuthError`` on 401/403.
        """
        report = BatchReport()
        for start in range(0, len(resources), self.batch_size):
            self._write_chunk(list(resources[start : start + self.batch_size]), report)
        if report.rejected and raise_on_rejected:
            details = "; ".join(f"{url}: {reason}" for url, reason in report.rejected[:5])
            raise FhirRejected(f"{len(report.rejected)} resources refused by the FHIR server: {details}")
        return report

    def _write_chunk(self, resources: list[dict[str, Any]], report: BatchReport) -> None:
        pending = resources
        try:
            for attempt in self._retrying():
                with attempt:
                    report.attempts += 1
                    pending, retry_after_s, throttled = self._send_batch(pending, report)
                    if pending:
                        log.warning("FHIR batch: %d entries to send again", len(pending))
                        raise _Retry(f"{len(pending)} entries throttled or failed", retry_after_s, throttled=throttled)
        except _Retry as exc:
            raise exc.gave_up(
                f"{len(pending)} resources not written after {self.max_attempts} attempts: {exc.message}"
            ) from exc

    def _send_batch(
        self, resources: list[dict[str, Any]], report: BatchReport
    ) -> tuple[list[dict[str, Any]], float | None, bool]:
        """Sends one bundle; returns the entries to send again, the server's wait hint, and
        whether any of them was throttled (429) rather than failed."""
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": [put_entry(r) for r in resources]}
        response = self._request("POST", "", data=orjson.dumps(bundle))
        self._raise_for(response, "batch")
        try:
            entries = orjson.loads(response.content).get("entry") or []  # a 500-entry answer: orjson
        except (ValueError, AttributeError):
            raise _Retry("batch answer is not a Bundle", None) from None
        if len(entries) != len(resources):
            raise _Retry(f"batch answer has {len(entries)} entries for {len(resources)} requests", None)
        retry: list[dict[str, Any]] = []
        throttled = False
        for resource, entry in zip(resources, entries, strict=True):
            answer = entry.get("response") or {}
            status = _status_code(answer.get("status"))
            if 200 <= status < 300:
                report.written += 1
            elif status in RETRYABLE_STATUSES or status == 0:
                retry.append(resource)
                throttled |= status == 429
            else:
                url = f"{resource['resourceType']}/{resource['id']}"
                report.rejected.append((url, f"HTTP {status}: {_outcome_text(answer.get('outcome'))}"))
        return retry, retry_after_seconds(response.headers), throttled


def _status_code(status: Any) -> int:
    try:
        return int(str(status).split()[0])
    except (ValueError, IndexError):
        return 0


def _entra_token_provider(settings: Settings) -> TokenProvider:
    from shared.clients.identity import credential_for

    credential = credential_for(settings)
    scope = settings.fhir_scope
    cache: dict[str, Any] = {}

    def token() -> str:
        current = cache.get("token")
        if current is None or current.expires_on - 300 < time.time():
            current = credential.get_token(scope)
            cache["token"] = current
        return str(current.token)

    return token
