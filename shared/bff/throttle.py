"""The BFF's limits: failed logins per account and per client address, reset requests per email
and per address, on the shared fixed-window counter (``shared.counters``). Keys are hashed: no
user name or address is stored in clear."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shared.counters import FixedWindowCounter
from shared.errors import TooManyRequests

Limit = tuple[str, str, int]  # (kind, subject, attempts allowed per window)


class Throttle:
    def __init__(self, counter: FixedWindowCounter) -> None:
        self.counter = counter

    @staticmethod
    def _key(kind: str, subject: str) -> str:
        return f"{kind}-{hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:40]}"

    def take(self, kind: str, subject: str, limit: int, message: str) -> None:
        """Counts one attempt, or raises 429 with Retry-After when the window's ``limit`` is
        reached (and counts nothing)."""
        self.counter.take(self._key(kind, subject), limit, message)

    def give_back(self, kind: str, subject: str) -> None:
        self.counter.give_back(self._key(kind, subject))

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
        self.counter.clear(self._key(kind, subject))
