"""The processor the worker runs for every raw record: parse, attribute, map, write.

Everything that cannot be written is kept with its reason in the record's rejected entry
(the written part is idempotent, so replaying the whole record later is safe)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared import conversion
from shared.errors import InvalidPayload
from shared.fhir.client import FhirClient
from shared.measurement import Measurement
from shared.pipeline.envelope import RawEnvelope
from shared.pipeline.store import RawRecordStore
from shared.pipeline.worker import ProcessingResult

log = logging.getLogger(__name__)

PATIENT_ATTRIBUTE = "patientId"
WITHINGS_USER_ATTRIBUTE = "withingsUserId"


@dataclass
class ReadingProcessor:
    fhir: FhirClient
    store: RawRecordStore

    def __call__(self, envelope: RawEnvelope, body: str) -> ProcessingResult:
        options: dict[str, Any] = {}
        if envelope.source == "withings":
            options["userid"] = envelope.attributes.get(WITHINGS_USER_ATTRIBUTE)
        patient_id = envelope.attributes.get(PATIENT_ATTRIBUTE)

        def patient_for(_: Measurement) -> str | None:
            return patient_id

        parsed, mapped = conversion.convert(envelope.source, envelope.format, body, patient_for, **options)
        report = self.fhir.write(mapped.resources) if mapped.resources else None
        problems: list[dict[str, str]] = [{"sourceId": r.source_id, "reason": r.reason} for r in parsed.rejected]
        problems += [
            {"sourceId": m.source_id, "reason": "no patient is assigned to this reading's device"}
            for m in mapped.unattributed
        ]
        if parsed.unknown_types and not parsed.readings:
            problems += [{"sourceId": "", "reason": f"unsupported type: {t}"} for t in parsed.unknown_types]
        elif parsed.unknown_types:
            log.warning(
                "raw record %s: types kept under the source's own codes: %s",
                envelope.receipt_id,
                ", ".join(sorted(set(parsed.unknown_types))),
            )
        if problems:
            self.store.reject(envelope, f"{len(problems)} readings not written", problems)
        if not parsed.readings and not parsed.deleted_source_ids and not problems:
            raise InvalidPayload("the payload holds no reading")
        return ProcessingResult(
            written=report.written if report else 0,
            details={"readings": len(parsed.readings), "notWritten": len(problems)},
        )
