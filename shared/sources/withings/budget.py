"""The application-wide Withings call budget (120 requests a minute for all users together),
shared by every worker instance through one Cosmos DB item updated with its etag. A 601 answer
pauses every caller for a while."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from azure.cosmos import ContainerProxy

from shared.clients.cosmos import update_item
from shared.errors import TooManyRequests

BUDGET_ID = "call-budget"
WINDOW_S = 60


class BudgetExhausted(TooManyRequests):
    code = "withings_budget_exhausted"


class CallBudget:
    """Calls are taken from the shared item in blocks (``block`` at a time, fewer when the
    minute has fewer left) and handed out from a local reserve: one Cosmos round trip per
    block instead of two per call. What a process holds is spent within its minute or lapses
    with it, so no instance can hold more than one block of another's minute."""

    def __init__(
        self,
        container: ContainerProxy,
        per_minute: int,
        pause_s: int,
        clock: Callable[[], float] = time.time,
        block: int = 10,
    ) -> None:
        self.container = container
        self.per_minute = per_minute
        self.pause_s = pause_s
        self.clock = clock
        self.block = max(1, min(block, per_minute))
        self._lock = threading.Lock()
        self._reserve: tuple[float, int] = (0.0, 0)  # (window, calls left in it)
        self.round_trips = 0

    def acquire(self) -> None:
        """Takes one call from the budget, or raises ``BudgetExhausted`` with how long to wait."""
        with self._lock:
            now = self.clock()
            window = math.floor(now / WINDOW_S) * WINDOW_S
            held_window, left = self._reserve
            if held_window == window and left > 0:
                self._reserve = (window, left - 1)
                return
            granted = self._take(now, window)
            self._reserve = (window, granted - 1)

    def _take(self, now: float, window: float) -> int:
        granted = 0

        def take(current: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal granted
            paused_until = float((current or {}).get("pausedUntil", 0))
            if paused_until > now:
                raise BudgetExhausted("Withings asked us to slow down", retry_after_s=math.ceil(paused_until - now))
            count = int(current["count"]) if current and current.get("window") == window else 0
            granted = min(self.block, self.per_minute - count)
            if granted <= 0:
                retry = math.ceil(window + WINDOW_S - now)
                raise BudgetExhausted("the Withings call budget of this minute is spent", retry_after_s=retry)
            return {"id": BUDGET_ID, "window": window, "count": count + granted, "pausedUntil": paused_until}

        self.round_trips += 1
        update_item(self.container, BUDGET_ID, BUDGET_ID, take)
        return granted

    def pause(self) -> None:
        """Withings answered 601: nobody calls for ``pause_s`` seconds (this process's reserve too)."""
        with self._lock:
            self._reserve = (0.0, 0)

        def paused(current: dict[str, Any] | None) -> dict[str, Any]:
            item = {
                **(current or {"id": BUDGET_ID, "window": 0, "count": 0}),
                "pausedUntil": self.clock() + self.pause_s,
            }
            return item

        update_item(self.container, BUDGET_ID, BUDGET_ID, paused)
