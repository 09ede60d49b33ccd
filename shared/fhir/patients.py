"""Patients are owned by the FHIR server: the hub only checks that one exists, and that it is a
patient of the tenant asking.

Tenants that share the hub's FHIR service tell their patients apart by the tag
``urn:iomt-hub:tenant|<tenant id>`` in ``Patient.meta.tag`` (an untagged Patient is the default
tenant's): a patient of another tenant is answered like one that does not exist. A tenant with
its own FHIR service owns every Patient there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import FhirNotFound, Unprocessable
from shared.fhir.client import FhirClient
from shared.fhir.mapping import tenant_of


@dataclass
class PatientDirectory:
    fhir: FhirClient
    tenant: str | None = None  # None: the FHIR service is the tenant's own, every Patient is its

    def _mine(self, patient: dict[str, Any]) -> bool:
        return self.tenant is None or tenant_of(patient) == self.tenant

    def resolve(self, reference: str) -> str:
        """The logical id of the Patient named by ``reference``: a logical id, or an identifier
        as ``system|value``. An unknown (or ambiguous) patient is a 422."""
        if "|" in reference:
            found = self.fhir.search("Patient", {"identifier": reference, "_elements": "id,meta"})
            matches = [patient for patient in found if self._mine(patient)]
            if len(matches) != 1:
                what = "no Patient" if not matches else f"{len(matches)} Patients"
                raise Unprocessable(f"{what} in the FHIR server with identifier {reference!r}")
            return str(matches[0]["id"])
        if not _is_fhir_id(reference):
            raise Unprocessable(f"{reference!r} is not a FHIR logical id or a system|value identifier")
        try:
            patient = self.fhir.read("Patient", reference)
        except FhirNotFound:
            patient = None
        if patient is None or not self._mine(patient):
            raise Unprocessable(f"no Patient/{reference} in the FHIR server")
        return reference


def _is_fhir_id(value: str) -> bool:
    return 1 <= len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "-.") for c in value)
