"""Medisanté cellular devices: the webhook's payloads, in Medisanté's own format or FHIR."""
