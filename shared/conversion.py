"""Payload → Measurements → FHIR resources, for every (source, format) the hub accepts. Pure:
the dry-run CLI and the queue worker share it."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from typing import Any

from shared.errors import InvalidPayload
from shared.fhir.mapping import MappedReadings, PatientResolver, map_readings
from shared.measurement import ParseResult
from shared.sources.healthkit import parser as healthkit
from shared.sources.medisante import fhir_standard
from shared.sources.medisante import parser as medisante
from shared.sources.partner import parser as partner
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
    "partner": {"partner-json": partner.parse_text},
}
DEFAULT_FORMATS = {
    "medisante": "medisante-json",
    "healthkit": "healthkit-json",
    "withings": "withings-json",
    "partner": "partner-json",
}


def parse(source: str, format_name: str, body: str, **options: Any) -> ParseResult:
    formats = PARSERS.get(source)
    if formats is None:
        raise InvalidPayload(f"unknown source {source!r}; supported: {', '.join(PARSERS)}")
    parser = formats.get(format_name)
    if parser is None:
        raise InvalidPayload(f"unknown format {format_name!r} for {source}; supported: {', '.join(formats)}")
    return parser(body, **options)


class _CollectorPause:
    """Parsing and mapping build only acyclic trees (dicts, lists, frozen records), which the
    cyclic collector would scan over and over while a large payload is converted, at several
    times the cost of the conversion itself; reference counting frees them all the same. The
    collector is process-wide: it is paused while any conversion runs and resumes after the
    last one (if it was enabled when the first began)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._resume = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._resume:
                    gc.enable()


cyclic_gc_paused = _CollectorPause()


def convert(
    source: str,
    format_name: str,
    body: str,
    patient_for: PatientResolver,
    **options: Any,
) -> tuple[ParseResult, MappedReadings]:
    with cyclic_gc_paused():
        parsed = parse(source, format_name, body, **options)
        return parsed, map_readings(parsed.readings, patient_for)
