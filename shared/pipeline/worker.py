"""The queue worker's logic, free of ``azure.functions``: archive the raw payload, hand it to
the processor of its source, and decide what a failure means.

- ``InvalidPayload`` (or any other non-dependency ``HubError``): retrying cannot help, so the
  record is rejected at once, with its reason, and can be replayed after a fix.
- A dependency failure (FHIR, Cosmos, storage): raised again so that the host retries it;
  on the last allowed attempt the record goes to the poison queue with its reason instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from shared.diagnostics import where
from shared.errors import DependencyError, FhirRejected, HubError
from shared.pipeline.envelope import RawEnvelope
from shared.pipeline.store import RawRecordStore

log = logging.getLogger(__name__)


@dataclass
class ProcessingResult:
    written: int = 0
    details: dict[str, Any] = field(default_factory=dict)


Processor = Callable[[RawEnvelope, str], ProcessingResult]
Outcome = Literal["processed", "rejected", "poisoned"]


class Archive(Protocol):
    """The process's group archive (``shared.pipeline.batching.GroupArchive``)."""

    def archive(self, envelope: RawEnvelope) -> str: ...

    def participant(self) -> AbstractContextManager[None]: ...


@dataclass
class RawRecordWorker:
    store: RawRecordStore
    processors: Mapping[str, Processor]
    max_attempts: int
    participant: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
    archive: Archive | None = None  # None: each record's payload archived in a write of its own

    def handle(self, message: str | bytes, dequeue_count: int) -> Outcome:
        envelope = replace(RawEnvelope.from_json(message), attempt=dequeue_count)
        archiving = self.archive.participant() if self.archive and envelope.body is not None else None
        # The group commit's round (and the archive's, if it will archive) waits for this record.
        with self.participant(), archiving or contextlib.nullcontext():
            return self._handle(envelope, dequeue_count)

    def _archived(self, envelope: RawEnvelope) -> RawEnvelope:
        """The envelope with where its payload is archived (inline payloads are archived here;
        one referenced by a blob already is)."""
        if envelope.body is None:
            return envelope
        where = self.archive.archive(envelope) if self.archive else self.store.archive_bodies([envelope])[0]
        return replace(envelope, blob_name=where)

    def _handle(self, envelope: RawEnvelope, dequeue_count: int) -> Outcome:
        try:
            envelope = self._archived(envelope)
            body = self.store.load_body(envelope)
            processor = self.processors.get(envelope.source)
            if processor is None:
                raise HubError(f"no processor for source {envelope.source!r}")
            result = processor(envelope, body)
        except FhirRejected as exc:  # the server refused our resources: retrying cannot help
            self.store.reject(envelope, _reason(exc), exc.details)
            log.error("raw record %s refused by the FHIR server", envelope.receipt_id)
            return "rejected"
        except DependencyError as exc:
            if dequeue_count >= self.max_attempts:
                self.store.to_poison(envelope, _reason(exc), dequeue_count)
                log.error("raw record %s poisoned after %d attempts: %s", envelope.receipt_id, dequeue_count, exc.code)
                return "poisoned"
            log.warning("raw record %s attempt %d failed: %s", envelope.receipt_id, dequeue_count, exc.code)
            raise
        except HubError as exc:
            self.store.reject(envelope, _reason(exc), exc.details)
            log.warning("raw record %s rejected: %s", envelope.receipt_id, exc.code)
            return "rejected"
        except Exception as exc:
            # A bug, not bad input: retry like a dependency failure, then poison with the type.
            if dequeue_count >= self.max_attempts:
                self.store.to_poison(envelope, f"unexpected {type(exc).__name__}", dequeue_count)
                log.error("raw record %s poisoned after an unexpected error: %s", envelope.receipt_id, where(exc))
                return "poisoned"
            log.warning(
                "raw record %s attempt %d failed unexpectedly: %s", envelope.receipt_id, dequeue_count, where(exc)
            )
            raise
        log.info("raw record %s processed: %d resources written", envelope.receipt_id, result.written)
        return "processed"


def _reason(exc: HubError) -> str:
    return f"{exc.code}: {exc.message}"
