"""The application-wide Withings call budget (120 requests a minute for all users of every
tenant together), on the shared fixed-window counter (``shared.counters``). A 601 answer pauses
every caller for a while.

Shared fairly once the deployment serves tenants: each tenant's calls of a minute are capped at
an even share among the tenants calling in that minute, and backfills (the initial backfill,
the poller's safety-net syncs) may never take the part of the minute kept for notifications. So
one tenant's backfill cannot starve another tenant's notifications, nor its own. A deployment
without tenants spends the whole budget on whatever comes, as before."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shared.counters import FixedWindowCounter, Lane
from shared.errors import TooManyRequests
from shared.tenants import DEFAULT_TENANT

BUDGET_ID = "call-budget"
WINDOW_S = 60
NOTIFICATION_SHARE = 0.25  # of every minute, never given to backfills when tenants share the budget


class BudgetExhausted(TooManyRequests):
    code = "withings_budget_exhausted"


@dataclass(frozen=True)
class Spender:
    """Who the calls made now are for: a tenant's notification or backfill work."""

    tenant: str = DEFAULT_TENANT
    backfill: bool = False


_SPENDER: contextvars.ContextVar[Spender | None] = contextvars.ContextVar("withings_spender", default=None)


class CallBudget:
    """Calls are taken from the shared counter in blocks (``block`` at a time, fewer when the
    minute has fewer left) and handed out from a local reserve per spender: one Cosmos round trip
    per block instead of two per call. What a process holds is spent within its minute or lapses
    with it, so no instance can hold more than one block of another's minute per spender."""

    def __init__(
        self,
        counter: FixedWindowCounter,
        per_minute: int,
        pause_s: int,
        block: int = 10,
        serves_tenants: Callable[[], bool] = lambda: False,
    ) -> None:
        self.counter = counter
        self.per_minute = per_minute
        self.pause_s = pause_s
        self.block = max(1, min(block, per_minute))
        self.serves_tenants = serves_tenants
        self._lock = threading.Lock()
        self._reserves: dict[Spender, tuple[float, int]] = {}  # (end of the window, calls left in it)

    @property
    def round_trips(self) -> int:
        return self.counter.round_trips

    @contextlib.contextmanager
    def spending_for(self, tenant: str, *, backfill: bool) -> Iterator[None]:
        """The Withings calls made inside count as ``tenant``'s (a notification's or a backfill's)."""
        token = _SPENDER.set(Spender(tenant, backfill))
        try:
            yield
        finally:
            _SPENDER.reset(token)

    def lanes(self, spender: Spender) -> tuple[Lane, ...]:
        if not self.serves_tenants():
            return ()
        tenant_lane = Lane(f"tenant:{spender.tenant}", self.per_minute, group="tenant:")
        if not spender.backfill:
            return (tenant_lane,)
        backfills = self.per_minute - max(1, int(self.per_minute * NOTIFICATION_SHARE))
        return tenant_lane, Lane("backfill", backfills)

    def acquire(self) -> None:
        """Takes one call from the budget, or raises ``BudgetExhausted`` with how long to wait."""
        spender = _SPENDER.get() or Spender()  # outside a sync job (connecting): the default tenant's
        with self._lock:
            window_ends, left = self._reserves.get(spender, (0.0, 0))
            if left > 0 and self.counter.clock() < window_ends:
                self._reserves[spender] = (window_ends, left - 1)
                return
            taken = self.counter.take(
                BUDGET_ID,
                self.per_minute,
                "the Withings call budget of this minute is spent",
                want=self.block,
                error=BudgetExhausted,
                paused_message="Withings asked us to slow down",
                lanes=self.lanes(spender),
            )
            self._reserves[spender] = (taken.window_ends, taken.units - 1)

    def pause(self) -> None:
        """Withings answered 601: nobody calls for ``pause_s`` seconds (this process's reserves too)."""
        with self._lock:
            self._reserves.clear()
        self.counter.pause(BUDGET_ID, self.pause_s)
