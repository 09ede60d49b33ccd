"""FHIR mapping against the R4 validator (Node): every resource the mapping emits validates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from shared.fhir.mapping import ECG_CHUNK_SAMPLES, entered_in_error, observation
from shared.measurement import Kind, Measurement, SampledSignal
from tests.helpers.fhir_validation import validate
from tests.helpers.mapping import CASES, convert, heart_rate


@pytest.mark.parametrize(("source", "format_name", "path"), CASES)
def test_every_emitted_resource_validates_against_r4b(source, format_name, path):
    resources = convert(source, format_name, path)
    assert resources
    for resource in resources:
        validate(resource)


def test_ecg_is_sampled_data_in_chunks():
    samples = tuple(float(i % 200 - 100) for i in range(ECG_CHUNK_SAMPLES * 2 + 10))
    reading = Measurement(
        kind=Kind.ECG,
        source="withings",
        source_id="ecg/1",
        effective_start=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        signal=SampledSignal(period_ms=2.0, unit="uV", samples=samples),
        interpretation="sinusRhythm",
    )
    resource = observation(reading, "p1")
    validate(resource)
    chunks = [c["valueSampledData"] for c in resource["component"]]
    assert len(chunks) == 3
    assert resource["code"]["coding"][0] == {
        "system": "urn:oid:2.16.840.1.113883.6.24",
        "code": "131328",
        "display": "MDC_ECG_ELEC_POTL",
    }
    joined = " ".join(c["data"] for c in chunks).split()
    assert [float(v) for v in joined] == list(samples)
    assert chunks[0]["origin"]["code"] == "uV"


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC), "2026-05-01T08:30:00+00:00"),
        (
            dt.datetime(2026, 5, 1, 8, 30, 5, 250000, tzinfo=ZoneInfo("Europe/Paris")),
            "2026-05-01T08:30:05.250000+02:00",
        ),
        (dt.datetime(2026, 1, 1, 8, 30, tzinfo=ZoneInfo("America/St_Johns")), "2026-01-01T08:30:00-03:30"),
        # Local mean time before 1937 was UTC+00:19:32 here; FHIR offsets are ±hh:mm only.
        (dt.datetime(1930, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")), "1930-01-01T00:00:00+00:20"),
    ],
)
def test_instants_keep_their_offset_in_fhir_form(instant, text):
    resource = observation(heart_rate(f"{instant.timestamp()}/heart-rate", instant, issued=instant), "p1")
    assert (resource["effectiveDateTime"], resource["issued"]) == (text, text)
    validate(resource)


def test_entered_in_error_and_amended_status():
    [resource] = [r for r in convert(*CASES[2]) if r["resourceType"] == "Observation"]
    marked = entered_in_error({**resource, "meta": {**resource["meta"], "versionId": "3"}})
    assert marked["status"] == "entered-in-error"
    assert marked["id"] == resource["id"]
    assert "versionId" not in marked["meta"]
    validate(marked)
