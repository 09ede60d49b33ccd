"""The safety net for missed notifications: every five minutes, jobs for the links (a consented
Withings user in a tenant) not synced for a while, in every active tenant, sized to the call
budget and spread over the next five minutes. A suspended tenant's links wait: once it is
active again, their cursors are old and the poller catches them up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.sources.withings.jobs import DOMAINS, SyncJob

if TYPE_CHECKING:
    from shared.consent.registry import AccountLinks
    from shared.sources.withings.sync import Cursors, SyncJobRunner

SPREAD_S = 300  # the poller's period: its jobs are spread over it
CALLS_PER_JOB = 4  # what a typical user's sync costs


@dataclass
class Poller:
    links: AccountLinks
    cursors: Cursors
    jobs: SyncJobRunner
    calls_per_minute: int
    max_age_s: float
    tenant_status: Callable[[str], str | None]

    def run(self, now: float) -> int:
        """Queues the due links' jobs; returns how many."""
        limit = max(1, self.calls_per_minute * SPREAD_S // 60 // CALLS_PER_JOB)
        jobs = due_jobs(self.links, self.cursors, self.max_age_s, now, limit, self.tenant_status)
        for index, job in enumerate(jobs):
            self.jobs.enqueue(job, delay_s=index * SPREAD_S // max(1, len(jobs)))
        return len(jobs)


def due_jobs(
    links: AccountLinks,
    cursors: Cursors,
    max_age_s: float,
    now: float,
    limit: int,
    tenant_status: Callable[[str], str | None],
) -> list[SyncJob]:
    """The poller's plan: links of active tenants whose oldest cursor is older than ``max_age_s``."""
    jobs = []
    statuses: dict[str, str | None] = {}
    for record in links.active("withings"):
        userid, tenant = record.account_id, record.tenant_id
        if tenant not in statuses:
            statuses[tenant] = tenant_status(tenant)
        if not userid or statuses[tenant] != "active":
            continue
        synced = [cursors.get(userid, domain, tenant) for domain in DOMAINS]
        oldest = min((c.synced_at if c else 0.0) for c in synced)
        if now - oldest > max_age_s:
            jobs.append(SyncJob(userid=userid, tenant=tenant))
        if len(jobs) >= limit:
            break
    return jobs
