"""FHIR R4: the code table, Measurement → resource mapping, and the one FHIR REST client."""
