"""Incremental sync of one Withings user: per data domain a ``lastupdate`` cursor in Cosmos DB
(moved only forwards, by conditional update), every answer page handed to the ingestion
pipeline as a raw record (archived, replayable) for the patient the consent links."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.cosmos import ContainerProxy
from azure.storage.queue import QueueClient
from pydantic import Field

from shared.clients.cosmos import NoChange, read_or_none, update_item
from shared.consent.registry import ConsentStore
from shared.pipeline.envelope import TENANT_ATTRIBUTE
from shared.pipeline.processing import PATIENT_ATTRIBUTE, WITHINGS_USER_ATTRIBUTE
from shared.pipeline.store import RawRecordStore
from shared.records import Record
from shared.sources.withings.budget import BudgetExhausted, CallBudget
from shared.sources.withings.client import WithingsAuthError, WithingsClient, WithingsRateLimited
from shared.sources.withings.connect import AccountUnlinker
from shared.sources.withings.jobs import USER_EVENT_APPLI, Domain, SyncJob, enqueue_job
from shared.sources.withings.parser import MEASTYPES
from shared.sources.withings.tokens import NeedsReconsent, TokenStore
from shared.tenants import DEFAULT_TENANT

log = logging.getLogger(__name__)

_MEASTYPES = ",".join(str(t) for t in sorted(MEASTYPES))
SYNC_OVERLAP_S = 300  # re-read the last minutes before the cursor: writes are idempotent


class CursorRecord(Record):
    """How far one link's domain is synced: Withings' ``lastupdate`` of the newest change seen."""

    id: str
    userid: str
    tenant_id: str = Field(DEFAULT_TENANT, alias="tenantId")
    domain: str
    lastupdate: int
    synced_at: float = Field(alias="syncedAt", description="when (epoch seconds)")


class Cursors:
    def __init__(self, container: ContainerProxy) -> None:
        self.container = container

    @staticmethod
    def _id(userid: str, domain: str, tenant: str) -> str:
        return f"{userid}.{domain}" if tenant == DEFAULT_TENANT else f"{tenant}.{userid}.{domain}"

    def get(self, userid: str, domain: str, tenant: str = DEFAULT_TENANT) -> CursorRecord | None:
        key = self._id(userid, domain, tenant)
        item = read_or_none(self.container, key, key)
        return CursorRecord.from_item(item) if item is not None else None

    def advance(
        self, userid: str, domain: str, lastupdate: int, synced_at: float, tenant: str = DEFAULT_TENANT
    ) -> None:
        """Moves the cursor to ``lastupdate`` unless it is already there or later (an
        overlapping run finished first): the cursor never goes backwards."""
        key = self._id(userid, domain, tenant)

        def move(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is not None and CursorRecord.from_item(current).lastupdate >= lastupdate:
                raise NoChange
            cursor = CursorRecord(
                id=key, userid=userid, tenant_id=tenant, domain=domain, lastupdate=lastupdate, synced_at=synced_at
            )
            return cursor.to_item()

        update_item(self.container, key, key, move)


@dataclass
class _Run:
    """What one sync run of one link keeps between its calls."""

    userid: str
    tenant: str
    token: str | None = None


@dataclass
class WithingsSync:
    client: WithingsClient
    tokens: TokenStore
    consents: ConsentStore
    cursors: Cursors
    raw_store: RawRecordStore
    unknown_users: ContainerProxy
    backfill: dt.timedelta
    unlinker: AccountUnlinker
    tenant_status: Callable[[str], str | None] = lambda tenant: "active"
    clock: Callable[[], float] = time.time

    def run(self, job: SyncJob) -> dict[str, Any]:
        """Syncs the user's link in the job's tenant. A suspended tenant's job does nothing: its
        cursors stay where they are, so the poller catches up once the tenant is active again."""
        status = self.tenant_status(job.tenant)
        if status != "active":
            return {"outcome": f"tenant-{status or 'unknown'}"}
        consent = self.consents.for_tenant(job.tenant).find_by_account("withings", job.userid)
        if consent is None:
            self._record_unknown(job)
            return {"outcome": "unknown-user"}
        if job.appli == USER_EVENT_APPLI:
            if job.action in ("unlink", "delete"):
                self.unlinker.unlink(job.userid, tenant=job.tenant)
                return {"outcome": "unlinked"}
            return {"outcome": "ignored-user-event"}
        if not consent.active:
            return {"outcome": f"consent-{consent.status}"}
        attributes = {PATIENT_ATTRIBUTE: consent.patient_id, WITHINGS_USER_ATTRIBUTE: job.userid}
        if job.tenant != DEFAULT_TENANT:
            attributes[TENANT_ATTRIBUTE] = job.tenant
        records = 0
        run = _Run(job.userid, job.tenant)
        for domain in job.domains:
            records += self._sync_domain(run, domain, attributes)
        return {"outcome": "synced", "records": records}

    def _record_unknown(self, job: SyncJob) -> None:
        key = f"unknown-{job.userid}" if job.tenant == DEFAULT_TENANT else f"unknown-{job.tenant}-{job.userid}"
        self.unknown_users.upsert_item(
            {"id": key, "userid": job.userid, "tenantId": job.tenant, "appli": job.appli, "lastSeen": self.clock()}
        )

    def _call(self, run: _Run, path: str, action: str, **params: Any) -> tuple[str, dict[str, Any]]:
        """One Withings call of a sync run. The access token is read from Key Vault once per
        run, not per call; refused (expired or revoked early), it is refreshed once."""
        if run.token is None:
            run.token = self.tokens.access_token(run.userid, tenant=run.tenant)
        try:
            return self.client.call(path, action, run.token, **params)
        except WithingsAuthError:
            run.token = self.tokens.access_token(run.userid, tenant=run.tenant, refresh_if=run.token)
            return self.client.call(path, action, run.token, **params)

    def _since(self, userid: str, domain: str, tenant: str) -> int:
        cursor = self.cursors.get(userid, domain, tenant)
        if cursor is not None:  # overlap: a change in the cursor's own second, or clock skew
            return cursor.lastupdate - SYNC_OVERLAP_S
        return int(self.clock() - self.backfill.total_seconds())

    def _accept(self, text: str, attributes: dict[str, str]) -> None:
        self.raw_store.accept(
            source="withings", format="withings-json", body=text, content_type="application/json", attributes=attributes
        )

    def _sync_domain(self, run: _Run, domain: Domain, attributes: dict[str, str]) -> int:
        userid = run.userid
        since, started = self._since(userid, domain, run.tenant), int(self.clock())
        records, offset, newest = 0, 0, since
        while True:
            if domain == "measure":
                text, body = self._call(
                    run, "measure", "getmeas", meastypes=_MEASTYPES, category=1, lastupdate=since, offset=offset
                )
                if body.get("measuregrps"):
                    self._accept(text, attributes)
                    records += 1
                newest = max(newest, int(body.get("updatetime") or started))
            elif domain == "activity":
                text, body = self._call(run, "v2/measure", "getactivity", lastupdate=since, offset=offset)
                if body.get("activities"):
                    self._accept(text, attributes)
                    records += 1
                newest = started
            else:
                _, body = self._call(run, "v2/heart", "list", lastupdate=since, offset=offset)
                for series in body.get("series") or []:
                    _, signal = self._call(run, "v2/heart", "get", signalid=series["ecg"]["signalid"])
                    answer = {"status": 0, "body": {**signal, "series": series}}
                    self._accept(json.dumps(answer), attributes)
                    records += 1
                newest = started
            if not body.get("more"):
                break
            offset = int(body.get("offset") or 0)
        self.cursors.advance(userid, domain, newest, self.clock(), run.tenant)
        return records


JOB_DEDUPE_S = 600


@dataclass
class SyncJobRunner:
    """Runs one queued job. Out of budget or told to slow down (601): the job goes back on the
    queue to run later, never dropped. A user whose grant is gone is reported (consent
    ``needs-reconsent``), not retried forever."""

    sync: WithingsSync
    budget: CallBudget
    queue: QueueClient
    markers: ContainerProxy
    clock: Callable[[], float] = time.time

    def handle(self, body: str) -> dict[str, Any]:
        job = SyncJob.model_validate_json(body)
        if self._seen_recently(job):
            return {"outcome": "duplicate"}
        try:
            with self.budget.spending_for(job.tenant, backfill=job.is_backfill):
                return self.sync.run(job)
        except BudgetExhausted as exc:
            self.requeue(job, exc.retry_after_s)
            return {"outcome": "deferred", "retryAfterS": exc.retry_after_s}
        except WithingsRateLimited:
            self.budget.pause()
            self.requeue(job, self.budget.pause_s)
            return {"outcome": "deferred", "retryAfterS": self.budget.pause_s}
        except NeedsReconsent:
            return {"outcome": "needs-reconsent"}

    def enqueue(self, job: SyncJob, delay_s: int = 0) -> None:
        enqueue_job(self.queue, job, delay_s)

    def requeue(self, job: SyncJob, delay_s: int) -> None:
        self.enqueue(job.model_copy(update={"attempt": job.attempt + 1}), max(1, delay_s))

    def _seen_recently(self, job: SyncJob) -> bool:
        """The same notification delivered again (Withings retries, at least once): one run."""
        if job.appli is None or job.startdate is None or job.attempt:
            return False
        key = f"job-{job.tenant}-{job.userid}-{job.appli}-{job.startdate}-{job.enddate}"
        now = self.clock()
        seen = False

        def mark(marker: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal seen
            seen = marker is not None and now - float(marker["at"]) < JOB_DEDUPE_S
            if seen:
                raise NoChange
            return {"id": key, "at": now, "ttl": JOB_DEDUPE_S}

        update_item(self.markers, key, key, mark)  # of two concurrent deliveries, one runs
        return seen
