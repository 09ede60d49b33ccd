"""The safety net for missed notifications: every five minutes, jobs for the consented users not
synced for a while, sized to the call budget and spread over the next five minutes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.sources.withings.jobs import DOMAINS, SyncJob

if TYPE_CHECKING:
    from shared.consent.registry import ConsentStore
    from shared.sources.withings.sync import Cursors, SyncJobRunner

SPREAD_S = 300  # the poller's period: its jobs are spread over it
CALLS_PER_JOB = 4  # what a typical user's sync costs


@dataclass
class Poller:
    consents: ConsentStore
    cursors: Cursors
    jobs: SyncJobRunner
    calls_per_minute: int
    max_age_s: float

    def run(self, now: float) -> int:
        """Queues the due users' jobs; returns how many."""
        limit = max(1, self.calls_per_minute * SPREAD_S // 60 // CALLS_PER_JOB)
        jobs = due_jobs(self.consents, self.cursors, self.max_age_s, now, limit)
        for index, job in enumerate(jobs):
            self.jobs.enqueue(job, delay_s=index * SPREAD_S // max(1, len(jobs)))
        return len(jobs)


def due_jobs(consents: ConsentStore, cursors: Cursors, max_age_s: float, now: float, limit: int) -> list[SyncJob]:
    """The poller's plan: consented users whose oldest cursor is older than ``max_age_s``."""
    jobs = []
    for record in consents.list(source="withings", status="active"):
        userid = record.account_id
        if not userid:
            continue
        synced = [cursors.get(userid, domain) for domain in DOMAINS]
        oldest = min((c.synced_at if c else 0.0) for c in synced)
        if now - oldest > max_age_s:
            jobs.append(SyncJob(userid=userid))
        if len(jobs) >= limit:
            break
    return jobs
