"""Patients are owned by the FHIR server: the hub only checks that one exists."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import FhirNotFound, Unprocessable
from shared.fhir.client import FhirClient


@dataclass
class PatientDirectory:
    fhir: FhirClient

    def resolve(self, reference: str) -> str:
        """The logical id of the Patient named by ``reference``: a logical id, or an identifier
        as ``system|value``. An unknown (or ambiguous) patient is a 422."""
        if "|" in reference:
            matches = self.fhir.search("Patient", {"identifier": reference, "_elements": "id"})
            if len(matches) != 1:
                found = "no Patient" if not matches else f"{len(matches)} Patients"
                raise Unprocessable(f"{found} in the FHIR server with identifier {reference!r}")
            return str(matches[0]["id"])
        if not _is_fhir_id(reference):
            raise Unprocessable(f"{reference!r} is not a FHIR logical id or a system|value identifier")
        try:
            self.fhir.read("Patient", reference)
        except FhirNotFound:
            raise Unprocessable(f"no Patient/{reference} in the FHIR server") from None
        return reference


def _is_fhir_id(value: str) -> bool:
    return 1 <= len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "-.") for c in value)
