"""Fixed-window counters in Cosmos DB, shared by every instance: the login and reset limits of
the BFF and the application-wide Withings call budget. Windows are aligned to the clock
(``floor(now / window) * window``), so every instance agrees on which window it is in.

A unit is counted *before* it is used (``take``): the conditional write that moves the count
from n to n + k is what grants the k units, so however many callers race, at most ``limit``
are granted in a window. A counter can also be paused: nothing is granted until the pause ends.

A take may also count against *lanes*, shares of the same window kept in the same item (one
conditional write still decides everything): a lane has its own limit, and lanes of one
``group`` split theirs evenly among the lanes of the group that took units in the window."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from shared.clients.cosmos import NoChange, delete_if_present, update_item
from shared.errors import TooManyRequests

if TYPE_CHECKING:
    from azure.cosmos import ContainerProxy


class WindowItem(BaseModel):
    """The stored counter."""

    id: str
    window: float = 0.0  # start of the window the count belongs to (epoch seconds)
    count: int = 0
    lanes: dict[str, int] = {}  # units per lane in the window
    pausedUntil: float = 0.0  # noqa: N815 - the stored field's name
    ttl: int = 86400


@dataclass(frozen=True)
class Taken:
    units: int
    window_ends: float


@dataclass(frozen=True)
class Lane:
    """At most ``limit`` units of a window go to this lane. With a ``group``, the limit is split
    evenly among the group's lanes that have taken units in the window, this one included: a
    lane that came first keeps no more than its share once another one asks."""

    name: str
    limit: int
    group: str | None = None

    def room(self, used: dict[str, int]) -> int:
        limit = self.limit
        if self.group is not None:
            sharing = {name for name in used if name.startswith(self.group)} | {self.name}
            limit = math.ceil(limit / len(sharing))
        return limit - used.get(self.name, 0)


class FixedWindowCounter:
    def __init__(self, container: ContainerProxy, window_s: float, clock: Callable[[], float] = time.time) -> None:
        self.container = container
        self.window_s = window_s
        self.clock = clock
        self.round_trips = 0

    def _window(self, now: float) -> float:
        return math.floor(now / self.window_s) * self.window_s

    def _read(self, item: dict[str, object] | None, key: str) -> WindowItem:
        return WindowItem.model_validate(item) if item is not None else WindowItem(id=key)

    def take(
        self,
        key: str,
        limit: int,
        message: str,
        *,
        want: int = 1,
        error: type[TooManyRequests] = TooManyRequests,
        paused_message: str | None = None,
        lanes: Sequence[Lane] = (),
    ) -> Taken:
        """Grants up to ``want`` units of the current window (at least one), or raises ``error``
        with Retry-After when the window's ``limit`` (or a lane's) is reached or the counter is
        paused."""
        granted = 0
        now = self.clock()
        window = self._window(now)

        def count(current: dict[str, object] | None) -> dict[str, object]:
            nonlocal granted
            item = self._read(current, key)
            if item.pausedUntil > now:
                raise error(paused_message or message, retry_after_s=math.ceil(item.pausedUntil - now))
            same_window = item.window == window
            used = item.count if same_window else 0
            used_lanes = dict(item.lanes) if same_window else {}
            granted = min(want, limit - used, *(lane.room(used_lanes) for lane in lanes))
            if granted <= 0:
                raise error(message, retry_after_s=max(1, math.ceil(window + self.window_s - now)))
            for lane in lanes:
                used_lanes[lane.name] = used_lanes.get(lane.name, 0) + granted
            update = {"window": window, "count": used + granted, "lanes": used_lanes}
            return item.model_copy(update=update).model_dump()

        self.round_trips += 1
        update_item(self.container, key, key, count)
        return Taken(granted, window + self.window_s)

    def give_back(self, key: str, units: int = 1) -> None:
        """Uncounts units taken in the current window (they turned out not to count)."""
        window = self._window(self.clock())

        def uncount(current: dict[str, object] | None) -> dict[str, object]:
            item = self._read(current, key)
            if current is None or item.window != window or item.count <= 0:
                raise NoChange
            return item.model_copy(update={"count": max(0, item.count - units)}).model_dump()

        update_item(self.container, key, key, uncount)

    def pause(self, key: str, seconds: float) -> None:
        until = self.clock() + seconds

        def paused(current: dict[str, object] | None) -> dict[str, object]:
            return self._read(current, key).model_copy(update={"pausedUntil": until}).model_dump()

        update_item(self.container, key, key, paused)

    def clear(self, key: str) -> None:
        delete_if_present(self.container, key, key)
