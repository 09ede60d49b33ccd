"""Which patient a reading belongs to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.devices.records import DeviceRecord
from shared.devices.registry import DeviceRegistry
from shared.measurement import DeviceIdentity, Measurement


@dataclass
class Attribution:
    """Patient resolution for one raw record: a patient fixed by the ingress (an app session,
    a Withings consent) or the device's assignment at the measured time."""

    registry: DeviceRegistry
    fixed_patient: str | None = None
    # The worker's look-ups of many records at once (one query); the registry's reads otherwise.
    lookup: Callable[[list[str]], list[DeviceRecord | None]] | None = None
    _devices: dict[str, DeviceRecord | None] = field(default_factory=dict)

    def patient_for(self, measurement: Measurement) -> str | None:
        if self.fixed_patient:
            return self.fixed_patient
        identity = measurement.device
        if identity is None:
            return None
        if identity.key not in self._devices:
            self._devices[identity.key] = self._find(identity)
        device = self._devices[identity.key]
        return device.patient_at(measurement.effective_start) if device is not None else None

    def _find(self, identity: DeviceIdentity) -> DeviceRecord | None:
        if self.lookup is None:
            return self.registry.find_by_identity(identity)
        ids = [self.registry.registry_id(identity.source, value) for _, value in identity.identifiers]
        candidates = self.lookup(ids)
        mine = (d for d in candidates if d is not None and d.tenant_id == self.registry.tenant)
        return next(mine, None)  # most specific first
