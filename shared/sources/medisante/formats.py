"""The formats the Medisanté webhook accepts and the media types each may arrive as: the handler
enforces this table and the OpenAPI document lists it."""

MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "medisante-json": ("application/json",),
    "medisante-xml": ("application/xml", "text/xml"),
    "fhir-json": ("application/fhir+json", "application/json"),
    "fhir-xml": ("application/fhir+xml", "application/xml", "text/xml"),
}
