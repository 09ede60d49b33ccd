"""Work handed in by concurrent invocations of one worker process, done together.

The Functions host runs up to ``batchSize + newBatchThreshold`` queue messages at once in one
process. Most devices deliver one or a few readings per message, so writing each message's
readings alone costs one FHIR request per reading. A ``Batcher`` collects what concurrent
callers hand in and does it in one go: the first caller of a round waits until every caller
that announced itself (``participant()``: a record being processed) has handed in its items,
or ``max_items`` are in, or ``max_wait_s`` has passed, then does the work for everyone. A lone
record is written at once; many at once wait only for each other. Every caller gets its own
results back, or the exception the work raised, and only then returns. So a queue message is
still deleted only after its own readings are confirmed: the durability contract is the same
as writing alone.

``GroupCommit`` batches FHIR writes this way (one ``batch`` bundle for many records),
``GroupArchive`` the raw archive (one blob for the payloads of many records), and a plain
``Batcher`` look-ups (one Cosmos query for the devices of many records)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.errors import FhirRejected
from shared.pipeline.envelope import RawEnvelope

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Ticket(Generic[Item, Result]):
    items: Sequence[Item]
    done: threading.Event = field(default_factory=threading.Event)
    results: list[Result] = field(default_factory=list)
    error: BaseException | None = None


class Batcher(Generic[Item, Result]):
    def __init__(
        self,
        work: Callable[[list[Item]], list[Result]],
        *,
        max_items: int,
        max_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
        wait_for_participants: bool = False,
        one_at_a_time: bool = False,
        settle_s: float = 0.0,
    ) -> None:
        self.work = work
        self.wait_for_participants = wait_for_participants
        # A round also waits (within ``max_wait_s``) while the previous one is being done:
        # callers that arrive one by one then meet in the next round instead of each going alone.
        self.one_at_a_time = one_at_a_time
        # ... and until no caller has arrived for ``settle_s``: the host starts a fetched batch's
        # invocations one after another over several milliseconds (each parses its message under
        # the GIL first), and a round that closed when the first few had handed in would leave
        # the rest to another round. A plain round (no participants) closes then too.
        self.settle_s = settle_s
        self._last_arrival = -float("inf")
        self._working = 0
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._lock = threading.Condition()
        self._round: list[_Ticket[Item, Result]] = []
        self._count = 0
        self._expected = 0  # participants that have not handed in their items yet
        self._local = threading.local()
        self.rounds = 0  # how many times the work ran (for the benchmarks)

    @contextlib.contextmanager
    def participant(self) -> Iterator[None]:
        """Announces a caller that will probably ``submit`` soon (a record being processed), so
        that a round waits for it rather than for the clock."""
        with self._lock:
            self._expected += 1
            self._last_arrival = self.clock()
        self._local.pending = True
        try:
            yield
        finally:
            if getattr(self._local, "pending", False):  # left without submitting
                self._local.pending = False
                with self._lock:
                    self._expected -= 1
                    self._lock.notify_all()

    def submit(self, items: Sequence[Item]) -> list[Result]:
        """The results for ``items`` (in their order), once the round holding them is done."""
        if not items:
            return []
        ticket: _Ticket[Item, Result] = _Ticket(items)
        with self._lock:
            if getattr(self._local, "pending", False):
                self._local.pending = False
                self._expected -= 1
            self._round.append(ticket)
            self._count += len(items)
            self._last_arrival = self.clock()
            leader = len(self._round) == 1
            if not leader and (self._count >= self.max_items or self._expected == 0):
                # The round is full, or its last expected caller is in: its leader re-checks. (It
                # wakes by itself when a settle time runs out; waking it for every caller of a
                # 32-record round only costs the process context switches.)
                self._lock.notify_all()
        if leader:
            self._lead()
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error
        return ticket.results

    def _gathering(self, now: float) -> bool:
        """Whether the round (the lock held) should wait for more callers, time permitting."""
        if self._count >= self.max_items:
            return False
        if now < self._last_arrival + self.settle_s or (self.one_at_a_time and self._working):
            return True
        if self.wait_for_participants:
            return self._expected > 0
        return not self.settle_s  # a plain round without a settle time waits the whole max_wait_s

    def _lead(self) -> None:
        deadline = self.clock() + self.max_wait_s
        with self._lock:
            while self._gathering(now := self.clock()):
                left = deadline - now
                if left <= 0:
                    break
                quiet_in = self._last_arrival + self.settle_s - now
                self._lock.wait(min(left, quiet_in) if quiet_in > 0 else left)
            tickets, self._round, self._count = self._round, [], 0
            self._working += 1
        items = [item for ticket in tickets for item in ticket.items]
        try:
            results = self.work(items)
            self.rounds += 1
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the failure
            for ticket in tickets:
                ticket.error = exc
                ticket.done.set()
            return
        finally:
            with self._lock:
                self._working -= 1
                self._lock.notify_all()
        offset = 0
        for ticket in tickets:
            ticket.results = results[offset : offset + len(ticket.items)]
            offset += len(ticket.items)
            ticket.done.set()


@dataclass
class WriteReport:
    written: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)


class GroupCommit:
    """FHIR writes of concurrent records in shared ``batch`` bundles. ``write`` behaves as
    ``FhirClient.write`` for the caller's own resources: it returns once they are written and
    raises ``FhirRejected`` for its own refused entries only; a failed flush (throttled,
    unavailable) fails every record of the round, and the host retries each."""

    def __init__(self, fhir: Any, *, max_entries: int, max_wait_s: float) -> None:
        self.fhir = fhir
        self.batcher: Batcher[dict[str, Any], str | None] = Batcher(
            self._flush, max_items=max_entries, max_wait_s=max_wait_s, wait_for_participants=True
        )

    def _flush(self, resources: list[dict[str, Any]]) -> list[str | None]:
        # One entry per URL: two records of a round can carry the same Device (or a re-delivery
        # the same Observation); R4 batch entries must not depend on each other.
        latest = {f"{r['resourceType']}/{r['id']}": r for r in resources}
        report = self.fhir.write(list(latest.values()), raise_on_rejected=False)
        refused = dict(report.rejected)
        return [refused.get(f"{r['resourceType']}/{r['id']}") for r in resources]

    def write(self, resources: Sequence[dict[str, Any]]) -> WriteReport:
        outcomes = self.batcher.submit(resources)
        report = WriteReport()
        for resource, reason in zip(resources, outcomes, strict=True):
            if reason is None:
                report.written += 1
            else:
                report.rejected.append((f"{resource['resourceType']}/{resource['id']}", reason))
        if report.rejected:
            details = "; ".join(f"{url}: {reason}" for url, reason in report.rejected[:5])
            raise FhirRejected(f"{len(report.rejected)} resources refused by the FHIR server: {details}")
        return report

    def participant(self) -> contextlib.AbstractContextManager[None]:
        return self.batcher.participant()

    @property
    def requests(self) -> int:
        return self.batcher.rounds


class GroupArchive:
    """The raw payloads of concurrent records archived together
    (``RawRecordStore.archive_bodies``: one write per round, tenant and minute of arrival).
    ``archive`` returns once the caller's payload is written, with where it is; a failed write
    fails every record of the round, and the host retries each."""

    def __init__(
        self,
        archive_bodies: Callable[[list[RawEnvelope]], list[str]],
        *,
        max_records: int,
        max_wait_s: float,
        settle_s: float = 0.0,
    ) -> None:
        self.batcher: Batcher[RawEnvelope, str] = Batcher(
            archive_bodies,
            max_items=max_records,
            max_wait_s=max_wait_s,
            wait_for_participants=True,
            one_at_a_time=True,
            settle_s=settle_s,
        )

    def archive(self, envelope: RawEnvelope) -> str:
        return self.batcher.submit([envelope])[0]

    def participant(self) -> contextlib.AbstractContextManager[None]:
        return self.batcher.participant()

    @property
    def writes(self) -> int:
        return self.batcher.rounds
