"""IoMT ingestion hub: connected-device readings in, FHIR R4 resources out."""
