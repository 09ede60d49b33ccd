"""Partner platform tests: a medical centre with a patient who can sign in on its pages."""

from __future__ import annotations

from shared.composition import AppContext
from tests.helpers.stack import put_patient

PASSWORD = "correct horse battery staple"


def clinic_with_anna(context: AppContext, fhir_url: str) -> None:
    """clinic-a, its patient Anna in FHIR, and her account (anna@example.org) in the directory."""
    context.tenant_administration.create("clinic-a", "Clinic A")
    put_patient(fhir_url, "anna", tenant="clinic-a")
    context.directory.create_user(
        "anna@example.org", PASSWORD, email="anna@example.org", name="Anna", patient_id="anna", tenant_id="clinic-a"
    )
