"""Correcting an attribution: a device was assigned to the wrong patient for a while. The
readings of that period move to the right patient the only way FHIR allows without rewriting
anyone's record: each Observation written for the wrong patient is marked ``entered-in-error``
(it stays in that patient's history, as a mistake) and a new Observation, with the id of the
right patient (ids derive from the patient), is written for the right one. Nothing ever
changes subject."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from shared.clock import instant_text
from shared.consent.models import ConsentGrant
from shared.consent.registry import ConsentStore
from shared.devices.records import DeviceRecord
from shared.devices.registry import DeviceRegistry
from shared.devices.types import DEVICE_TYPE_KINDS
from shared.errors import BadRequest
from shared.fhir.client import FhirClient
from shared.fhir.mapping import entered_in_error, observation_id, tenant_of
from shared.pipeline.parking import ParkedReadings
from shared.pipeline.replay import replay_archived
from shared.pipeline.store import RawRecordStore
from shared.records import Record
from shared.tenants import DEFAULT_TENANT

_READING_SYSTEM_PREFIX, _READING_SYSTEM_SUFFIX = "urn:iomt-hub:", ":reading"
_PAGE = 500


def moved_copy(resource: dict[str, Any], patient_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
    """The same reading as a new Observation of ``patient_id``; None if it is not one the hub wrote."""
    identifier: dict[str, Any] = next(iter(resource.get("identifier") or []), {})
    system, value = str(identifier.get("system", "")), identifier.get("value")
    if not (system.startswith(_READING_SYSTEM_PREFIX) and system.endswith(_READING_SYSTEM_SUFFIX) and value):
        return None
    source = system[len(_READING_SYSTEM_PREFIX) : -len(_READING_SYSTEM_SUFFIX)]
    copy = {key: item for key, item in resource.items() if key != "meta"}
    copy["meta"] = {k: v for k, v in (resource.get("meta") or {}).items() if k in ("tag", "profile")}
    copy["id"] = observation_id(source, str(value), patient_id, tenant)
    copy["subject"] = {"reference": f"Patient/{patient_id}"}
    return copy


class CorrectionOutcome(Record):
    device: DeviceRecord
    moved: int = Field(description="Observations rewritten to the right patient")
    re_driven: int = Field(alias="reDriven", description="parked records re-driven")


@dataclass
class AttributionCorrection:
    devices: DeviceRegistry
    consents: ConsentStore
    fhir: FhirClient
    parked: ParkedReadings
    raw_store: RawRecordStore

    def for_tenant(self, tenant: str, own_fhir: FhirClient | None = None) -> AttributionCorrection:
        devices, consents = self.devices.for_tenant(tenant), self.consents.for_tenant(tenant)
        return dataclasses.replace(self, devices=devices, consents=consents, fhir=own_fhir or self.fhir)

    def correct(
        self, device_id: str, patient_id: str, start: dt.datetime, end: dt.datetime | None, recorded_by: str
    ) -> CorrectionOutcome:
        if end is not None and end <= start:
            raise BadRequest("to must be after from")

        device = self.devices.reassign_period(device_id, patient_id, start, end)
        scopes = [kind.value for kind in DEVICE_TYPE_KINDS[device.type]]
        self.consents.grant(
            ConsentGrant(patient_id=patient_id, source=device.provider, scopes=scopes, attestation="clinic"),
            recorded_by,
            merge=True,
        )
        writes: list[dict[str, Any]] = []
        for resource in self._observations(device, start, end):
            subject = (resource.get("subject") or {}).get("reference")
            if subject == f"Patient/{patient_id}" or resource.get("status") == "entered-in-error":
                continue
            copy = moved_copy(resource, patient_id, device.tenant_id)
            if copy is not None:
                writes += [copy, entered_in_error(resource)]
        if writes:
            self.fhir.write(writes)
        waiting = self.parked.waiting_for(device)
        if waiting:
            replay_archived(self.raw_store, waiting)
        return CorrectionOutcome(device=device, moved=len(writes) // 2, re_driven=len(waiting))

    def _observations(
        self, device: DeviceRecord, start: dt.datetime, end: dt.datetime | None
    ) -> list[dict[str, Any]]:
        found_devices = self.fhir.search("Device", {"identifier": device.provider_device_id, "_elements": "id,meta"})
        fhir_devices = [d for d in found_devices if tenant_of(d) == device.tenant_id]  # the same serial elsewhere
        if not fhir_devices:
            return []
        params = {
            "device": ",".join(f"Device/{d['id']}" for d in fhir_devices),
            "date": f"ge{instant_text(start)}",
            "_count": str(_PAGE),
        }
        found = self.fhir.search("Observation", params)
        return [r for r in found if tenant_of(r) == device.tenant_id and (end is None or _effective(r) < end)]


def _effective(resource: dict[str, Any]) -> dt.datetime:
    text = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
    return dt.datetime.fromisoformat(str(text))
