"""Withings sync jobs: what a notification or the poller puts on the sync queue. Light: the
notification endpoint uses it without the sync machinery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

Domain = Literal["measure", "activity", "ecg"]
DOMAINS: tuple[Domain, ...] = ("measure", "activity", "ecg")
APPLI_DOMAINS: dict[int, Domain] = {1: "measure", 2: "measure", 4: "measure", 58: "measure", 16: "activity", 54: "ecg"}
USER_EVENT_APPLI = 46
SUBSCRIBED_APPLIS = (1, 2, 4, 16, 54, 58, USER_EVENT_APPLI)


class SyncJob(BaseModel):
    """A queue message: sync the domains of a user's link in a tenant, or act on a user event
    (appli 46). A message without a tenant (queued before tenants existed) is the default's."""

    userid: str
    tenant: str = DEFAULT_TENANT
    appli: int | None = None  # None: every domain (poller, backfill)
    startdate: int | None = None
    enddate: int | None = None
    action: str | None = None
    attempt: int = 0  # deferrals so far (budget, 601)

    @property
    def domains(self) -> tuple[Domain, ...]:
        if self.appli is None:
            return DOMAINS
        domain = APPLI_DOMAINS.get(self.appli)
        return (domain,) if domain else ()

    @property
    def is_backfill(self) -> bool:
        """A whole-history or safety-net sync (the initial backfill, the poller), not a
        notification: it gives way to notifications in the call budget."""
        return self.appli is None


def enqueue_job(queue: QueueClient, job: SyncJob, delay_s: int = 0) -> None:
    queue.send_message(job.model_dump_json().encode(), visibility_timeout=delay_s or None)
