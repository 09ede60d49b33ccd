"""Payload → Measurements → FHIR resources, for every (source, format) the hub accepts. Pure:
the dry-run CLI and the queue worker share it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import InvalidPayload
from shared.fhir.mapping import MappedReadings, PatientResolver, map_readings
from shared.measurement import ParseResult
from shared.sources.healthkit import parser as healthkit
from shared.sources.medisante import fhir_standard
from shared.sources.medisante import parser as medisante
from shared.sources.withings import parser as withings

Parser = Callable[..., ParseResult]

PARSERS: dict[str, dict[str, Parser]] = {
    "medisante": {
        "medisante-json": medisante.parse_json,
        "medisante-xml": medisante.parse_xml,
        "fhir-json": fhir_standard.parse_json,
        "fhir-xml": fhir_standard.parse_xml,
    },
    "healthkit": {"healthkit-json": healthkit.parse_upload_text},
    "withings": {"withings-json": withings.parse_text},
}
DEFAULT_FORMATS = {"medisante": "medisante-json", "healthkit": "healthkit-json", "withings": "withings-json"}


def parse(source: str, format_name: str, body: str, **options: Any) -> ParseResult:
    formats = PARSERS.get(source)
    if formats is None:
        raise InvalidPayload(f"unknown source {source!r}; supported: {', '.join(PARSERS)}")
    parser = formats.get(format_name)
    if parser is None:
        raise InvalidPayload(f"unknown format {format_name!r} for {source}; supported: {', '.join(formats)}")
    return parser(body, **options)


def convert(
    source: str,
    format_name: str,
    body: str,
    patient_for: PatientResolver,
    **options: Any,
) -> tuple[ParseResult, MappedReadings]:
    parsed = parse(source, format_name, body, **options)
    return parsed, map_readings(parsed.readings, patient_for)
