"""Consent records: which kinds of readings (scopes) a patient allows the hub to write from a
source. The worker checks them for every reading of every source; what they refuse is not
written and is counted, with its reason, in the raw record's audit entry."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.cosmos import NoChange, filtered_query, read_or_none, update_item
from shared.clock import utc_now
from shared.consent.models import ConsentGrant, ConsentStatus, consent_id, is_known_source, parse_consent_id
from shared.consent.records import ConsentAuditRecord, ConsentEvent, ConsentRecord, WithheldCount
from shared.errors import BadRequest, NotFound
from shared.measurement import Measurement
from shared.tenants import DEFAULT_TENANT


class ConsentStore:
    """One tenant's consent records: a record of another tenant is not found, by id or by patient."""

    def __init__(
        self,
        container: ContainerProxy,
        clock: Callable[[], dt.datetime] = utc_now,
        tenant: str = DEFAULT_TENANT,
        listeners: list[Callable[[str, str, str], None]] | None = None,
    ) -> None:
        self.container = container
        self.clock = clock
        self.tenant = tenant
        # Told (tenant, patient, source) of every change, whichever tenant's view made it.
        self.listeners: list[Callable[[str, str, str], None]] = listeners if listeners is not None else []

    def for_tenant(self, tenant: str) -> ConsentStore:
        if tenant == self.tenant:
            return self
        return ConsentStore(self.container, self.clock, tenant, self.listeners)

    def _changed(self, patient_id: str, source: str) -> None:
        for listener in self.listeners:
            listener(self.tenant, patient_id, source)

    def _mine(self, item: dict[str, object] | None) -> ConsentRecord | None:
        record = ConsentRecord.from_item(item) if item is not None else None
        return record if record is not None and record.tenant_id == self.tenant else None

    def find(self, patient_id: str, source: str) -> ConsentRecord | None:
        return self._mine(read_or_none(self.container, consent_id(source, patient_id, self.tenant), patient_id))

    def get(self, record_id: str) -> ConsentRecord:
        tenant, source, patient_id = parse_consent_id(record_id)
        mine = tenant == self.tenant and is_known_source(source) and patient_id
        record = self.find(patient_id, source) if mine else None
        if record is None:
            raise NotFound(f"no consent record with id {record_id!r}")
        return record

    def grant(self, grant: ConsentGrant, recorded_by: str, *, merge: bool = False) -> tuple[ConsentRecord, bool]:
        """(record, created). ``merge`` adds the scopes to what is already granted (a clinic
        attesting a device's kinds); otherwise the grant states the scopes exactly. Safe under
        concurrency: concurrent merges all land (optimistic concurrency, retried)."""
        record_id = consent_id(grant.source, grant.patient_id, self.tenant)
        created = False

        def apply(item: dict[str, object] | None) -> dict[str, object]:
            nonlocal created
            created = item is None
            existing = ConsentRecord.from_item(item) if item is not None else None
            now = self.clock()
            scopes = set(grant.scopes)
            if merge and existing is not None and existing.active:
                scopes |= set(existing.scopes)
            history = existing.history if existing is not None else []
            return ConsentRecord(
                id=record_id,
                tenant_id=self.tenant,
                patient_id=grant.patient_id,
                source=grant.source,
                scopes=sorted(scopes),
                status="active",
                attestation=grant.attestation,
                granted_at=now,
                recorded_by=recorded_by,
                account_id=grant.account_id or (existing.account_id if existing is not None else None),
                history=[*history, ConsentEvent(action="grant", at=now, by=recorded_by)],
            ).to_item()

        stored = update_item(self.container, record_id, grant.patient_id, apply)
        assert stored is not None  # apply always writes
        self._changed(grant.patient_id, grant.source)
        return ConsentRecord.from_item(stored), created

    def revoke(self, record_id: str, recorded_by: str) -> ConsentRecord:
        return self.set_status(record_id, "revoked", recorded_by)

    def set_status(self, record_id: str, status: ConsentStatus, recorded_by: str) -> ConsentRecord:
        """``revoked`` (the patient withdrew) or ``needs-reconsent`` (the source's grant is gone)."""
        record = self.get(record_id)

        def apply(item: dict[str, object] | None) -> dict[str, object]:
            current = self._mine(item)
            if current is None:
                raise NotFound(f"no consent record with id {record_id!r}")
            if current.status == status:
                raise NoChange
            now = self.clock()
            current.status = status
            if status == "revoked":
                current.revoked_at = now
            current.history.append(ConsentEvent(action=status, at=now, by=recorded_by))
            return current.to_item()

        stored = update_item(self.container, record.id, record.patient_id, apply)
        assert stored is not None
        self._changed(record.patient_id, record.source)
        return ConsentRecord.from_item(stored)

    def require_reconsent(self, source: str, account_id: str, recorded_by: str) -> None:
        """The source's grant is gone (a refresh token refused): the link stays, the patient is
        asked to consent again, and the worker refuses the source's readings until then."""
        record = self.find_by_account(source, account_id)
        if record is not None:
            self.set_status(record.id, "needs-reconsent", recorded_by)

    def find_by_account(self, source: str, account_id: str) -> ConsentRecord | None:
        """The consent that links a source's user (a Withings userid) to a patient."""
        query, parameters = filtered_query({"source": source, "accountId": account_id}, self.tenant)
        items = self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True)
        matches = [ConsentRecord.from_item(item) for item in items]
        matches.sort(key=lambda record: not record.active)  # an active link first
        return matches[0] if matches else None

    def list(
        self, *, patient_id: str | None = None, source: str | None = None, status: str | None = None
    ) -> list[ConsentRecord]:
        query, parameters = filtered_query({"patientId": patient_id, "source": source, "status": status}, self.tenant)
        try:
            items = self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True)
            return [ConsentRecord.from_item(item) for item in items]
        except cosmos_errors.CosmosHttpResponseError as exc:
            if exc.status_code == 400:
                raise BadRequest("the consent query is not valid") from None
            raise


class AccountLinks:
    """The one read of consent records across tenants: the active links of a source's accounts
    in every tenant (the Withings poller's plan). Each record names its tenant, and whatever
    acts on one acts in that tenant only."""

    def __init__(self, container: ContainerProxy) -> None:
        self.container = container

    def active(self, source: str) -> list[ConsentRecord]:
        query, parameters = filtered_query({"source": source, "status": "active"})
        items = self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True)
        return [record for record in map(ConsentRecord.from_item, items) if record.account_id]


class ConsentFinder(Protocol):
    def find(self, patient_id: str, source: str) -> ConsentRecord | None: ...


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
        self._entries: dict[tuple[str, str, str], tuple[float, ConsentRecord | None]] = {}
        self._lock = threading.Lock()
        store.listeners.append(self.invalidate)

    def for_tenant(self, tenant: str) -> ConsentFinder:
        return _TenantCache(self, tenant)

    def find(self, patient_id: str, source: str, tenant: str = DEFAULT_TENANT) -> ConsentRecord | None:
        key = (tenant, patient_id, source)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl_s:
            return entry[1]
        record = self.store.for_tenant(tenant).find(patient_id, source)
        if record is not None and record.active:
            with self._lock:
                self._entries[key] = (now, record)
        return record

    def invalidate(self, tenant: str, patient_id: str, source: str) -> None:
        with self._lock:
            self._entries.pop((tenant, patient_id, source), None)


@dataclass
class _TenantCache:
    cache: ConsentCache
    tenant: str

    def find(self, patient_id: str, source: str) -> ConsentRecord | None:
        return self.cache.find(patient_id, source, self.tenant)


@dataclass
class ConsentCheck:
    """Consent decisions for one raw record: each (patient, source) record read once."""

    store: ConsentFinder
    _records: dict[tuple[str, str], ConsentRecord | None] = field(default_factory=dict)

    def refusal(self, measurement: Measurement, patient_id: str) -> str | None:
        """Why this reading may not be written for this patient, or None."""
        key = (patient_id, measurement.source)
        if key not in self._records:
            self._records[key] = self.store.find(patient_id, measurement.source)
        record = self._records[key]
        if record is None:
            return f"no consent recorded for {measurement.source}"
        if not record.active:
            return f"consent for {measurement.source} is {record.status}"
        if measurement.kind.value not in record.scopes:
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
        audit = ConsentAuditRecord(
            id=receipt_id,
            receipt_id=receipt_id,
            source=source,
            checked_at=self.clock(),
            withheld=[
                WithheldCount(patient_id=patient, kind=kind, reason=reason, count=count)
                for (patient, kind, reason), count in sorted(counts.items())
            ],
        )
        self.container.upsert_item(audit.to_item())

    def get(self, receipt_id: str) -> ConsentAuditRecord | None:
        item = read_or_none(self.container, receipt_id, receipt_id)
        return ConsentAuditRecord.from_item(item) if item is not None else None
