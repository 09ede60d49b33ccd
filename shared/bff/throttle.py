"""Fixed-window counters in Cosmos DB, shared by every instance: failed logins per account and
per client address, reset requests per address. Keys are hashed: no user name or address is
stored in clear."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.cosmos import delete_if_present
from shared.devices import instant_text, utc_now
from shared.errors import TooManyRequests

THROTTLE_CONTAINER = "throttle"


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

    def _current(self, key: str) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] = self.container.read_item(key, partition_key=key)
        except cosmos_errors.CosmosResourceNotFoundError:
            return None
        if dt.datetime.fromisoformat(item["windowStart"]) + self.window <= self.clock():
            return None  # the window is over
        return item

    def check(self, kind: str, subject: str, limit: int, message: str) -> None:
        """429 with Retry-After when ``subject`` reached ``limit`` in the current window."""
        item = self._current(self._key(kind, subject))
        if item is not None and item["count"] >= limit:
            ends = dt.datetime.fromisoformat(item["windowStart"]) + self.window
            retry_after = max(1, math.ceil((ends - self.clock()).total_seconds()))
            raise TooManyRequests(message, retry_after_s=retry_after)

    def check_all(self, limits: list[tuple[str, str, int]], message: str) -> None:
        for kind, subject, limit in limits:
            self.check(kind, subject, limit, message)

    def hit_all(self, limits: list[tuple[str, str, int]]) -> None:
        for kind, subject, _ in limits:
            self.hit(kind, subject)

    def hit(self, kind: str, subject: str) -> None:
        key = self._key(kind, subject)
        for _ in range(5):  # concurrent hits: conditional replace, again on conflict
            item = self._current(key)
            if item is None:
                fresh = {"id": key, "count": 1, "windowStart": instant_text(self.clock()), "ttl": 86400}
                try:
                    self.container.upsert_item(fresh)
                    return
                except cosmos_errors.CosmosHttpResponseError:
                    continue
            item["count"] += 1
            try:
                self.container.replace_item(
                    key, item, etag=item["_etag"], match_condition=MatchConditions.IfNotModified
                )
                return
            except cosmos_errors.CosmosAccessConditionFailedError:
                continue

    def clear(self, kind: str, subject: str) -> None:
        key = self._key(kind, subject)
        delete_if_present(self.container, key, key)
