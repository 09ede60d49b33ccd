"""Fixed-window counters in Cosmos DB, shared by every instance: failed logins per account and
per client address, reset requests per email and per address. Keys are hashed: no user name or
address is stored in clear.

An attempt is counted *before* it is made (``take``): the conditional write that moves the
count from n to n + 1 is what allows the attempt, so however many callers race, at most
``limit`` attempts are made in a window."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

from azure.cosmos import ContainerProxy

from shared.clients.cosmos import NoChange, delete_if_present, update_item
from shared.clock import instant_text, utc_now
from shared.errors import TooManyRequests

Limit = tuple[str, str, int]  # (kind, subject, attempts allowed per window)


class Throttle:
    def __init__(
        self, container: ContainerProxy, window: dt.timedelta, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self.container = container
        self.window = window
        self.clock = clock

    @staticmethod
    def _key(kind: str, subject: str) -> str:
        return f"{kind}-{hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:40]}"

    def _open(self, item: dict[str, Any] | None, now: dt.datetime) -> bool:
        return item is not None and dt.datetime.fromisoformat(item["windowStart"]) + self.window > now

    def take(self, kind: str, subject: str, limit: int, message: str) -> None:
        """Counts one attempt, or raises 429 with Retry-After when the window's ``limit`` is
        reached (and counts nothing)."""
        key = self._key(kind, subject)

        def count(item: dict[str, Any] | None) -> dict[str, Any]:
            now = self.clock()
            if not self._open(item, now):
                return {"id": key, "count": 1, "windowStart": instant_text(now), "ttl": 86400}
            assert item is not None
            if item["count"] >= limit:
                ends = dt.datetime.fromisoformat(item["windowStart"]) + self.window
                raise TooManyRequests(message, retry_after_s=max(1, math.ceil((ends - now).total_seconds())))
            item["count"] += 1
            return item

        update_item(self.container, key, key, count)

    def give_back(self, kind: str, subject: str) -> None:
        """Uncounts one attempt taken in the current window (it turned out not to count)."""
        key = self._key(kind, subject)

        def uncount(item: dict[str, Any] | None) -> dict[str, Any]:
            if item is None or not self._open(item, self.clock()) or item["count"] <= 0:
                raise NoChange
            item["count"] -= 1
            return item

        update_item(self.container, key, key, uncount)

    def take_all(self, limits: Sequence[Limit], message: str) -> None:
        """One attempt against every limit, or none: a refusal gives back what was taken."""
        taken: list[Limit] = []
        try:
            for kind, subject, limit in limits:
                self.take(kind, subject, limit, message)
                taken.append((kind, subject, limit))
        except TooManyRequests:
            for kind, subject, _ in taken:
                self.give_back(kind, subject)
            raise

    def clear(self, kind: str, subject: str) -> None:
        key = self._key(kind, subject)
        delete_if_present(self.container, key, key)
