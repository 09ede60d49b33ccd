"""The application-wide Withings call budget (120 requests a minute for all users together),
shared by every worker instance through one Cosmos DB item updated with its etag. A 601 answer
pauses every caller for a while."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.errors import TooManyRequests

BUDGET_ID = "call-budget"
WINDOW_S = 60


class BudgetExhausted(TooManyRequests):
    code = "withings_budget_exhausted"


class CallBudget:
    def __init__(
        self, container: ContainerProxy, per_minute: int, pause_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.container = container
        self.per_minute = per_minute
        self.pause_s = pause_s
        self.clock = clock

    def _read(self) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] = self.container.read_item(BUDGET_ID, partition_key=BUDGET_ID)
        except cosmos_errors.CosmosResourceNotFoundError:
            return None
        return item

    def _write(self, current: dict[str, Any] | None, item: dict[str, Any]) -> bool:
        try:
            if current is None:
                self.container.create_item(item)
            else:
                self.container.replace_item(
                    BUDGET_ID, item, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                )
        except (cosmos_errors.CosmosAccessConditionFailedError, cosmos_errors.CosmosResourceExistsError):
            return False
        return True

    def acquire(self) -> None:
        """Takes one call from the budget, or raises ``BudgetExhausted`` with how long to wait."""
        for _ in range(20):  # concurrent takers: conditional writes, again on conflict
            now = self.clock()
            window = math.floor(now / WINDOW_S) * WINDOW_S
            current = self._read()
            paused_until = float((current or {}).get("pausedUntil", 0))
            if paused_until > now:
                raise BudgetExhausted("Withings asked us to slow down", retry_after_s=math.ceil(paused_until - now))
            count = int(current["count"]) if current and current.get("window") == window else 0
            if count >= self.per_minute:
                retry = math.ceil(window + WINDOW_S - now)
                raise BudgetExhausted("the Withings call budget of this minute is spent", retry_after_s=retry)
            item = {"id": BUDGET_ID, "window": window, "count": count + 1, "pausedUntil": paused_until}
            if self._write(current, item):
                return
        raise BudgetExhausted("the Withings call budget is contended", retry_after_s=1)

    def pause(self) -> None:
        """Withings answered 601: nobody calls for ``pause_s`` seconds."""
        for _ in range(20):
            current = self._read()
            item = {
                **(current or {"id": BUDGET_ID, "window": 0, "count": 0}),
                "pausedUntil": self.clock() + self.pause_s,
            }
            item = {k: v for k, v in item.items() if not k.startswith("_")}
            if self._write(current, item):
                return
