"""Conversions the mapping tests share (unit: structure; integration: the R4 validator)."""

from __future__ import annotations

from typing import Any

from shared import conversion
from shared.measurement import Kind, Measurement, Quantity
from tests.helpers.common import FIXTURES

CASES = [
    ("medisante", "medisante-json", FIXTURES / "medisante" / "blood-pressure.json"),
    ("medisante", "medisante-json", FIXTURES / "medisante" / "glucose.json"),
    ("medisante", "medisante-json", FIXTURES / "medisante" / "weight.json"),
    ("healthkit", "healthkit-json", FIXTURES / "healthkit" / "upload.json"),
    ("withings", "withings-json", FIXTURES / "withings" / "getmeas.json"),
]


def convert(source, format_name, path, patient="p1") -> list[dict[str, Any]]:
    return conversion.convert(source, format_name, path.read_text(), lambda _: patient)[1].resources


def heart_rate(source_id, effective_start, **fields) -> Measurement:
    return Measurement(
        kind=Kind.HEART_RATE,
        source="healthkit",
        source_id=source_id,
        effective_start=effective_start,
        value=Quantity(60, "/min"),
        **fields,
    )


def observations(resources) -> dict[str, dict[str, Any]]:
    return {r["code"]["coding"][0]["code"]: r for r in resources if r["resourceType"] == "Observation"}
