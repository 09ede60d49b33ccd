"""Assigning a device to a patient, for both callers: the clinic back office (which attests
the clinic's consent for what the device measures) and the patient's app (which may assign only
the devices a patient owns, and whose consent comes from its uploads). An assignment re-drives
the readings that were parked waiting for it."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.consent.models import ConsentGrant
from shared.devices.types import DEVICE_TYPE_KINDS, PATIENT_ASSIGNABLE_PROVIDERS
from shared.errors import Forbidden
from shared.pipeline.replay import replay_archived
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from shared.consent.registry import ConsentStore
    from shared.devices.models import AssignRequest
    from shared.devices.records import DeviceRecord
    from shared.devices.registry import DeviceRegistry
    from shared.fhir.patients import PatientDirectory
    from shared.pipeline.parking import ParkedReadings
    from shared.pipeline.store import RawRecordStore

log = logging.getLogger(__name__)


@dataclass
class DeviceAssignment:
    devices: DeviceRegistry
    consents: ConsentStore
    parked: ParkedReadings
    raw_store: RawRecordStore
    patients: PatientDirectory

    def by_clinic(
        self,
        request: AssignRequest,
        recorded_by: str,
        tenant: str = DEFAULT_TENANT,
        patients: PatientDirectory | None = None,
    ) -> DeviceRecord:
        """Registers the device if unknown, opens the assignment (the patient must exist in the
        tenant's FHIR server: ``patients``), and records the clinic's consent for the kinds the
        device measures."""
        patient_id = (patients or self.patients).resolve(request.assigned_patient_id)
        return self.for_tenant(tenant)._assign(request, patient_id, recorded_by, clinic_attests=True)

    def for_tenant(self, tenant: str) -> DeviceAssignment:
        devices, consents = self.devices.for_tenant(tenant), self.consents.for_tenant(tenant)
        return dataclasses.replace(self, devices=devices, consents=consents)

    def by_patient(
        self, request: AssignRequest, patient_id: str, recorded_by: str, tenant: str = DEFAULT_TENANT
    ) -> DeviceRecord:
        """The app assigns one of the patient's own devices to the session's patient, from now."""
        if request.device_provider not in PATIENT_ASSIGNABLE_PROVIDERS:
            raise Forbidden(
                f"{request.device_provider} devices are assigned by the clinic; the app may assign only "
                f"{', '.join(PATIENT_ASSIGNABLE_PROVIDERS)} devices"
            )
        request = request.model_copy(update={"assigned_patient_id": patient_id, "valid_from": None})
        return self.for_tenant(tenant)._assign(request, patient_id, recorded_by, clinic_attests=False)

    def _assign(
        self, request: AssignRequest, patient_id: str, recorded_by: str, *, clinic_attests: bool
    ) -> DeviceRecord:
        registration = request.registration()
        self.devices.register(registration)
        device_id = self.devices.registry_id(registration.provider, registration.provider_device_id)
        device = self.devices.assign(device_id, patient_id, request.valid_from)
        if clinic_attests:
            scopes = [kind.value for kind in DEVICE_TYPE_KINDS[registration.type]]
            grant = ConsentGrant(
                patient_id=patient_id, source=registration.provider, scopes=scopes, attestation="clinic"
            )
            self.consents.grant(grant, recorded_by, merge=True)
        waiting = self.parked.waiting_for(device)
        if waiting:
            replay_archived(self.raw_store, waiting)
            log.info("device %s: %d parked records re-driven", device_id, len(waiting))
        return device
