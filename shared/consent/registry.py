"""Consent records: which kinds of readings (scopes) a patient allows the hub to write from a
source. The worker checks them for every reading of every source; what they refuse is not
written and is counted, with its reason, in the raw record's audit entry."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.cosmos import NoChange, filtered_query, update_item
from shared.clock import instant_text, utc_now
from shared.consent.models import ConsentGrant, ConsentStatus, consent_id
from shared.devices.types import PROVIDERS
from shared.errors import BadRequest, NotFound
from shared.measurement import Measurement


class ConsentStore:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock
        self.listeners: list[Callable[[str, str], None]] = []  # told (patient, source) of every change

    def _changed(self, patient_id: str, source: str) -> None:
        for listener in self.listeners:
            listener(patient_id, source)

    def find(self, patient_id: str, source: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = self.container.read_item(consent_id(source, patient_id), partition_key=patient_id)
        except cosmos_errors.CosmosResourceNotFoundError:
            return None
        return record

    def get(self, record_id: str) -> dict[str, Any]:
        source, _, patient_id = record_id.partition(".")
        record = self.find(patient_id, source) if source in PROVIDERS and patient_id else None
        if record is None:
            raise NotFound(f"no consent record with id {record_id!r}")
        return record

    def grant(self, grant: ConsentGrant, recorded_by: str, *, merge: bool = False) -> tuple[dict[str, Any], bool]:
        """(record, created). ``merge`` adds the scopes to what is already granted (a clinic
        attesting a device's kinds); otherwise the grant states the scopes exactly. Safe under
        concurrency: concurrent merges all land (optimistic concurrency, retried)."""
        record_id = consent_id(grant.source, grant.patient_id)
        created = False

        def apply(existing: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal created
            created = existing is None
            now = instant_text(self.clock())
            scopes = set(grant.scopes)
            if merge and existing is not None and existing.get("status") == "active":
                scopes |= set(existing.get("scopes", []))
            return {
                "id": record_id,
                "patientId": grant.patient_id,
                "source": grant.source,
                "scopes": sorted(scopes),
                "status": "active",
                "attestation": grant.attestation,
                "grantedAt": now,
                "revokedAt": None,
                "recordedBy": recorded_by,
                "accountId": grant.account_id or (existing or {}).get("accountId"),
                "history": [*(existing or {}).get("history", []), {"action": "grant", "at": now, "by": recorded_by}],
            }

        stored = update_item(self.container, record_id, grant.patient_id, apply)
        assert stored is not None  # apply always writes
        self._changed(grant.patient_id, grant.source)
        return stored, created

    def revoke(self, record_id: str, recorded_by: str) -> dict[str, Any]:
        return self.set_status(record_id, "revoked", recorded_by)

    def set_status(self, record_id: str, status: ConsentStatus, recorded_by: str) -> dict[str, Any]:
        """``revoked`` (the patient withdrew) or ``needs-reconsent`` (the source's grant is gone)."""
        record = self.get(record_id)

        def apply(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise NotFound(f"no consent record with id {record_id!r}")
            if current.get("status") == status:
                raise NoChange
            now = instant_text(self.clock())
            current["status"] = status
            if status == "revoked":
                current["revokedAt"] = now
            current["history"] = [*current.get("history", []), {"action": status, "at": now, "by": recorded_by}]
            return current

        stored = update_item(self.container, record["id"], record["patientId"], apply)
        assert stored is not None
        self._changed(record["patientId"], record["source"])
        return stored

    def require_reconsent(self, source: str, account_id: str, recorded_by: str) -> None:
        """The source's grant is gone (a refresh token refused): the link stays, the patient is
        asked to consent again, and the worker refuses the source's readings until then."""
        record = self.find_by_account(source, account_id)
        if record is not None:
            self.set_status(record["id"], "needs-reconsent", recorded_by)

    def find_by_account(self, source: str, account_id: str) -> dict[str, Any] | None:
        """The consent that links a source's user (a Withings userid) to a patient."""
        matches = list(
            self.container.query_items(
                "SELECT * FROM c WHERE c.source = @source AND c.accountId = @account",
                parameters=[{"name": "@source", "value": source}, {"name": "@account", "value": account_id}],
                enable_cross_partition_query=True,
            )
        )
        matches.sort(key=lambda record: record.get("status") != "active")  # an active link first
        return matches[0] if matches else None

    def list(
        self, *, patient_id: str | None = None, source: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        query, parameters = filtered_query({"patientId": patient_id, "source": source, "status": status})
        try:
            return list(self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True))
        except cosmos_errors.CosmosHttpResponseError as exc:
            if exc.status_code == 400:
                raise BadRequest("the consent query is not valid") from None
            raise


class ConsentFinder(Protocol):
    def find(self, patient_id: str, source: str) -> dict[str, Any] | None: ...


class ConsentCache:
    """The worker's consent look-ups, kept per process for ``ttl_s`` seconds: most records of a
    patient come in bursts, and a Cosmos read per record costs more than the FHIR write.

    Only an active consent is kept: a missing or inactive one is read again every time, so a
    consent granted anywhere applies at once and no reading is refused on a stale "no". A
    change made through this process's store applies at once; a revocation made by another
    instance applies here within ``ttl_s`` (``CONSENT_CACHE_SECONDS``; 0 reads every time): a
    revoked consent stops writes within that time."""

    def __init__(self, store: ConsentStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        store.listeners.append(self.invalidate)

    def find(self, patient_id: str, source: str) -> dict[str, Any] | None:
        key = (patient_id, source)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl_s:
            return entry[1]
        record = self.store.find(patient_id, source)
        if record is not None and record.get("status") == "active":
            with self._lock:
                self._entries[key] = (now, record)
        return record

    def invalidate(self, patient_id: str, source: str) -> None:
        with self._lock:
            self._entries.pop((patient_id, source), None)


@dataclass
class ConsentCheck:
    """Consent decisions for one raw record: each (patient, source) record read once."""

    store: ConsentFinder
    _records: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def refusal(self, measurement: Measurement, patient_id: str) -> str | None:
        """Why this reading may not be written for this patient, or None."""
        key = (patient_id, measurement.source)
        if key not in self._records:
            self._records[key] = self.store.find(patient_id, measurement.source)
        record = self._records[key]
        if record is None:
            return f"no consent recorded for {measurement.source}"
        if record.get("status") != "active":
            return f"consent for {measurement.source} is {record.get('status')}"
        if measurement.kind.value not in record.get("scopes", []):
            return f"{measurement.kind.value} is outside the consented scopes"
        return None


class ConsentAudit:
    """One audit item per raw record whose readings consent withheld: counts per patient,
    kind and reason (never a value). Replays overwrite it: the counts stay true."""

    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def record(self, receipt_id: str, source: str, withheld: list[tuple[str, str, str]]) -> None:
        """``withheld``: (patient id, kind, reason) per reading not written."""
        counts: dict[tuple[str, str, str], int] = {}
        for key in withheld:
            counts[key] = counts.get(key, 0) + 1
        self.container.upsert_item(
            {
                "id": receipt_id,
                "receiptId": receipt_id,
                "source": source,
                "checkedAt": instant_text(self.clock()),
                "withheld": [
                    {"patientId": patient, "kind": kind, "reason": reason, "count": count}
                    for (patient, kind, reason), count in sorted(counts.items())
                ],
            }
        )

    def get(self, receipt_id: str) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] = self.container.read_item(receipt_id, partition_key=receipt_id)
        except cosmos_errors.CosmosResourceNotFoundError:
            return None
        return item
