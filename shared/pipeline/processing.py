"""The processor the worker runs for every raw record: parse, attribute, check consent, map,
write.

Nothing accepted is lost: readings with no patient yet are parked (the raw record stays
archived and is re-driven when an assignment covers them); readings consent refuses are
counted in the audit; readings that cannot be understood go to the record's rejected entry
with their reason. The written part is idempotent, so replaying a whole record is safe."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shared.consent.registry import ConsentAudit, ConsentCache, ConsentCheck, ConsentStore
from shared.devices.attribution import Attribution
from shared.devices.records import DeviceRecord
from shared.devices.registry import DeviceRegistry
from shared.errors import DependencyError, InvalidPayload
from shared.fhir.mapping import map_readings, observation_id
from shared.measurement import Measurement, ParseResult
from shared.pipeline.deletions import Deletions
from shared.pipeline.envelope import RawEnvelope
from shared.pipeline.parking import ParkedReadings
from shared.pipeline.store import RawRecordStore
from shared.pipeline.worker import ProcessingResult

if TYPE_CHECKING:
    from shared.fhir.client import FhirClient
    from shared.tenants.directory import TenantDirectory
    from shared.tenants.held import HeldRecords

log = logging.getLogger(__name__)

PATIENT_ATTRIBUTE = "patientId"
WITHINGS_USER_ATTRIBUTE = "withingsUserId"
PARTNER_SOURCE = "partner"
# What became of each reading of a record: source id -> (status, FHIR id or reason).
Outcomes = dict[str, tuple[str, str | None]]


class Parse(Protocol):
    def __call__(self, source: str, format_name: str, body: str, **options: Any) -> ParseResult: ...


class FhirWriter(Protocol):
    def write(self, resources: Sequence[dict[str, Any]]) -> Any: ...


@dataclass
class ReadingProcessor:
    parse: Parse  # payload → Measurements for (source, format): ``shared.conversion.parse``
    fhir: FhirWriter  # the FHIR client, or the process's group commit in front of it
    store: RawRecordStore
    devices: DeviceRegistry
    consents: ConsentStore
    audit: ConsentAudit
    parked: ParkedReadings
    deletions: Deletions
    consent_lookup: ConsentCache | None = None  # the process's consent cache, if any
    device_lookup: Callable[[list[str]], list[DeviceRecord | None]] | None = None  # coalesced reads
    tenants: TenantDirectory | None = None  # None: one tenant, always active
    held: HeldRecords | None = None
    # A tenant's own FHIR service (written directly, not in the hub's group commit), or None.
    own_fhir: Callable[[str], FhirClient | None] | None = None
    # Told each reading's fate for the sources that report it (a partner's receipt).
    settle: Callable[[RawEnvelope, Outcomes], None] | None = None

    def __call__(self, envelope: RawEnvelope, body: str) -> ProcessingResult:
        status = self.tenants.status(envelope.tenant) if self.tenants is not None else "active"
        if status != "active":
            if self.held is None:
                raise DependencyError("the record's tenant is not active and nothing can hold its records")
            reason = "tenant suspended" if status == "suspended" else "tenant not served by this deployment"
            self.held.hold(envelope.tenant, envelope.receipt_id, envelope.source, reason)
            return ProcessingResult(details={"held": reason})
        options: dict[str, Any] = {}
        if envelope.source == "withings":
            options["userid"] = envelope.attributes.get(WITHINGS_USER_ATTRIBUTE)
        parsed = self.parse(envelope.source, envelope.format, body, **options)

        tenant = envelope.tenant
        attribution = Attribution(
            self.devices.for_tenant(tenant),
            fixed_patient=envelope.attributes.get(PATIENT_ATTRIBUTE),
            lookup=self.device_lookup,
        )
        lookup = self.consent_lookup.for_tenant(tenant) if self.consent_lookup else self.consents.for_tenant(tenant)
        consent = ConsentCheck(lookup)
        patients: dict[str, str] = {}
        unattributed: list[Measurement] = []
        withheld: list[tuple[str, str, str]] = []
        refused: dict[str, str] = {}
        for measurement in parsed.readings:
            patient_id = attribution.patient_for(measurement)
            if patient_id is None:
                unattributed.append(measurement)
                continue
            refusal = consent.refusal(measurement, patient_id)
            if refusal is not None:
                withheld.append((patient_id, measurement.kind.value, refusal))
                refused[measurement.source_id] = refusal
                continue
            patients[measurement.source_id] = patient_id

        allowed = [m for m in parsed.readings if m.source_id in patients]
        mapped = map_readings(allowed, lambda m: patients[m.source_id], envelope.tenant)
        own = self.own_fhir(tenant) if self.own_fhir is not None else None
        writer: FhirWriter = own if own is not None else self.fhir
        report = writer.write(mapped.resources) if mapped.resources else None
        if unattributed:
            self.parked.park(envelope.receipt_id, envelope.source, unattributed, tenant)
        elif envelope.seen_before:  # only a record processed before can have a parked item
            self.parked.release(envelope.receipt_id)
        if withheld:
            self.audit.record(envelope.receipt_id, envelope.source, withheld)
        deleted = 0
        if parsed.deleted_source_ids or parsed.deleted_group_ids:
            deletions = dataclasses.replace(self.deletions, fhir=own) if own is not None else self.deletions
            logged = deletions.apply(
                envelope.receipt_id,
                envelope.source,
                parsed.deleted_source_ids,
                attribution.fixed_patient,
                parsed.deleted_group_ids,
                tenant,
            )
            deleted = len(logged["markedEnteredInError"])

        problems: list[dict[str, str]] = [{"sourceId": r.source_id, "reason": r.reason} for r in parsed.rejected]
        if parsed.unknown_types and not parsed.readings:
            problems += [{"sourceId": "", "reason": f"unsupported type: {t}"} for t in parsed.unknown_types]
        elif parsed.unknown_types:
            log.warning(
                "raw record %s: types kept under the source's own codes: %s",
                envelope.receipt_id,
                ", ".join(sorted(set(parsed.unknown_types))),
            )
        if problems:
            self.store.reject(envelope, f"{len(problems)} readings not written", problems)
        if not parsed.readings and not parsed.deleted_source_ids and not parsed.deleted_group_ids and not problems:
            raise InvalidPayload("the payload holds no reading")
        if self.settle is not None and envelope.source == PARTNER_SOURCE:
            outcomes: Outcomes = {m.source_id: ("parked", None) for m in unattributed}
            outcomes |= {source_id: ("refused-by-consent", reason) for source_id, reason in refused.items()}
            outcomes |= {r.source_id: ("rejected", r.reason) for r in parsed.rejected}
            for m in allowed:
                fhir_id = observation_id(m.source, m.source_id, patients[m.source_id], tenant)
                outcomes[m.source_id] = ("written", f"Observation/{fhir_id}")
            self.settle(envelope, outcomes)
        return ProcessingResult(
            written=report.written if report else 0,
            details={
                "readings": len(parsed.readings),
                "parked": len(unattributed),
                "withheldByConsent": len(withheld),
                "markedEnteredInError": deleted,
                "notWritten": len(problems),
            },
        )
