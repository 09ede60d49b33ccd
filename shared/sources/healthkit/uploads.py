"""Vetting of a HealthKit upload before it is accepted (the BFF's job in the Device Manager
contract): the sample count, each sample's shape and plausibility, the HealthKit types the user
granted (which become the consent scopes for HealthKit), and each sample's device (assigned to
this patient on first sight, refused when it belongs to another patient). One bad sample never
rejects the batch: the answer lists each refused sample with its reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from shared import plausibility
from shared.consent.models import ConsentGrant
from shared.consent.registry import ConsentStore
from shared.devices.models import DeviceRegistration
from shared.devices.registry import DeviceRegistry
from shared.errors import InvalidPayload, PayloadTooLarge
from shared.measurement import DeviceIdentity, Measurement
from shared.pipeline.envelope import TENANT_ATTRIBUTE
from shared.pipeline.processing import PATIENT_ATTRIBUTE
from shared.pipeline.store import RawRecordStore
from shared.sources.healthkit import parser as healthkit
from shared.tenants import DEFAULT_TENANT

SOURCE = "healthkit"
FORMAT = healthkit.FORMAT


@dataclass
class UploadOutcome:
    receipt_id: str | None = None
    accepted: int = 0
    deleted: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)


def device_type(device: DeviceIdentity) -> str:
    label = f"{device.model or ''} {device.name or ''}".lower()
    if "watch" in label:
        return "smartwatch"
    if "iphone" in label:
        return "phone"
    return "activity-tracker"


@dataclass
class HealthKitIngestion:
    raw_store: RawRecordStore
    devices: DeviceRegistry
    consents: ConsentStore
    max_samples: int

    def ingest(
        self, document: Any, patient_id: str, recorded_by: str, tenant: str = DEFAULT_TENANT
    ) -> UploadOutcome:
        """Vets and queues an upload of ``tenant``'s patient (its devices, its consents)."""
        if tenant != DEFAULT_TENANT:
            bound = dataclasses.replace(
                self, devices=self.devices.for_tenant(tenant), consents=self.consents.for_tenant(tenant)
            )
            return bound._ingest(document, patient_id, recorded_by, tenant)
        return self._ingest(document, patient_id, recorded_by, tenant)

    def _ingest(self, document: Any, patient_id: str, recorded_by: str, tenant: str) -> UploadOutcome:
        if not isinstance(document, dict):
            raise InvalidPayload("the upload must be a JSON object with samples, deleted and permissions")
        samples, deleted = document.get("samples", []), document.get("deleted", [])
        if not isinstance(samples, list) or not isinstance(deleted, list):
            raise InvalidPayload("samples and deleted must be arrays")
        if len(samples) > self.max_samples:
            raise PayloadTooLarge(f"at most {self.max_samples} samples per request; send the rest in another one")
        granted = self._record_consent(document.get("permissions"), patient_id, recorded_by)

        outcome = UploadOutcome()
        accepted: list[tuple[dict[str, Any], Measurement]] = []
        for index, sample in enumerate(samples):
            uuid = healthkit.uuid_of(sample)
            try:
                measurement = healthkit.parse_sample(sample)
            except InvalidPayload as exc:
                outcome.rejected.append({"uuid": uuid or f"samples[{index}]", "reason": exc.message})
                continue
            reason = plausibility.problem(measurement)
            if reason is None and measurement.kind.value not in granted:
                reason = f"{sample.get('type')} is not among the HealthKit types the user granted"
            if reason is not None:
                outcome.rejected.append({"uuid": measurement.source_id, "reason": reason})
                continue
            accepted.append((sample, measurement))

        refused_devices = self._assign_devices(patient_id, [m for _, m in accepted])
        kept = []
        for sample, measurement in accepted:
            if measurement.device is not None and measurement.device.key in refused_devices:
                outcome.rejected.append(
                    {"uuid": measurement.source_id, "reason": "this sample's device is assigned to another patient"}
                )
            else:
                kept.append(sample)
        deletions = []
        for index, item in enumerate(deleted):
            deleted_uuid = healthkit.uuid_of(item if isinstance(item, dict) else {"uuid": item})
            if deleted_uuid is None:
                outcome.rejected.append({"uuid": f"deleted[{index}]", "reason": "deleted entry has no valid uuid"})
            else:
                deletions.append({"uuid": deleted_uuid})
        outcome.accepted = len(kept)
        outcome.deleted = len(deletions)
        if kept or deletions:
            attributes = {PATIENT_ATTRIBUTE: patient_id}
            if tenant != DEFAULT_TENANT:
                attributes[TENANT_ATTRIBUTE] = tenant
            envelope = self.raw_store.accept(
                source=SOURCE,
                format=FORMAT,
                body=json.dumps({"samples": kept, "deleted": deletions}),
                content_type="application/json",
                attributes=attributes,
            )
            outcome.receipt_id = envelope.receipt_id
        return outcome

    def _record_consent(self, permissions: Any, patient_id: str, recorded_by: str) -> set[str]:
        """The scopes now granted for HealthKit. An upload that lists its permissions states
        the consent; one that does not relies on the last recorded consent."""
        if permissions is not None:
            if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
                raise InvalidPayload("permissions must be an array of HealthKit type identifiers")
            scopes = sorted({healthkit.TYPE_KINDS[p].value for p in permissions if p in healthkit.TYPE_KINDS})
            record = self.consents.find(patient_id, SOURCE)
            if scopes:
                grant = ConsentGrant(patient_id=patient_id, source=SOURCE, scopes=scopes, attestation="patient")
                if record is None or not record.active or record.scopes != scopes:
                    self.consents.grant(grant, recorded_by)
                return set(scopes)
            if record is not None and record.active:
                self.consents.revoke(record.id, recorded_by)
            return set()
        record = self.consents.find(patient_id, SOURCE)
        return set(record.scopes) if record is not None and record.active else set()

    def _assign_devices(self, patient_id: str, measurements: list[Measurement]) -> set[str]:
        """Assigns unseen devices to this patient (from their earliest sample); returns the keys
        of devices that belong to another patient."""
        first_seen: dict[str, tuple[DeviceIdentity, dt.datetime]] = {}
        for measurement in measurements:
            device = measurement.device
            if device is None:
                continue
            seen = first_seen.get(device.key)
            if seen is None or measurement.effective_start < seen[1]:
                first_seen[device.key] = (device, measurement.effective_start)
        refused: set[str] = set()
        for key, (identity, earliest) in first_seen.items():
            registered = self.devices.find_by_identity(identity)
            if registered is None:
                registered, _ = self.devices.register(
                    DeviceRegistration(
                        provider=SOURCE,
                        provider_device_id=identity.identifiers[0][1],
                        type=device_type(identity),
                        name=identity.name,
                        model=identity.model,
                        manufacturer=identity.manufacturer,
                    )
                )
            owner = registered.patient_id
            if owner == patient_id:
                continue
            if owner is not None:
                refused.add(key)
                continue
            latest_end = registered.latest_end
            start = earliest if latest_end is None or earliest >= latest_end else latest_end
            self.devices.assign(registered.id, patient_id, start)
        return refused
