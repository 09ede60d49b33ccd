"""The application-wide Withings call budget (120 requests a minute for all users together),
on the shared fixed-window counter (``shared.counters``). A 601 answer pauses every caller for
a while."""

from __future__ import annotations

import threading

from shared.counters import FixedWindowCounter
from shared.errors import TooManyRequests

BUDGET_ID = "call-budget"
WINDOW_S = 60


class BudgetExhausted(TooManyRequests):
    code = "withings_budget_exhausted"


class CallBudget:
    """Calls are taken from the shared counter in blocks (``block`` at a time, fewer when the
    minute has fewer left) and handed out from a local reserve: one Cosmos round trip per
    block instead of two per call. What a process holds is spent within its minute or lapses
    with it, so no instance can hold more than one block of another's minute."""

    def __init__(self, counter: FixedWindowCounter, per_minute: int, pause_s: int, block: int = 10) -> None:
        self.counter = counter
        self.per_minute = per_minute
        self.pause_s = pause_s
        self.block = max(1, min(block, per_minute))
        self._lock = threading.Lock()
        self._reserve: tuple[float, int] = (0.0, 0)  # (end of the window, calls left in it)

    @property
    def round_trips(self) -> int:
        return self.counter.round_trips

    def acquire(self) -> None:
        """Takes one call from the budget, or raises ``BudgetExhausted`` with how long to wait."""
        with self._lock:
            window_ends, left = self._reserve
            if left > 0 and self.counter.clock() < window_ends:
                self._reserve = (window_ends, left - 1)
                return
            taken = self.counter.take(
                BUDGET_ID,
                self.per_minute,
                "the Withings call budget of this minute is spent",
                want=self.block,
                error=BudgetExhausted,
                paused_message="Withings asked us to slow down",
            )
            self._reserve = (taken.window_ends, taken.units - 1)

    def pause(self) -> None:
        """Withings answered 601: nobody calls for ``pause_s`` seconds (this process's reserve too)."""
        with self._lock:
            self._reserve = (0.0, 0)
        self.counter.pause(BUDGET_ID, self.pause_s)
