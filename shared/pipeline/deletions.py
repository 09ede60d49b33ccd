"""Upstream deletions: HealthKit ``deleted`` UUIDs, Withings measure groups deleted since the
last sync. The matching Observations are marked ``entered-in-error`` (FHIR keeps their
history). Idempotent; an unknown id, or one that is not this patient's, is recorded in the
deletion log, not treated as an error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azure.cosmos import ContainerProxy

from shared.clock import instant_text, utc_now
from shared.fhir.client import FhirClient
from shared.fhir.mapping import (
    TENANT_TAG_SYSTEM,
    entered_in_error,
    group_identifier_system,
    observation_id,
    reading_identifier_system,
    tenant_of,
)
from shared.tenants import DEFAULT_TENANT

_SEARCH_CHUNK = 50


@dataclass
class Deletions:
    fhir: FhirClient
    log: ContainerProxy

    def _by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _SEARCH_CHUNK):
            chunk = ids[start : start + _SEARCH_CHUNK]
            for resource in self.fhir.search("Observation", {"_id": ",".join(chunk), "_count": str(len(chunk))}):
                found[resource["id"]] = resource
        return found

    def apply(
        self,
        receipt_id: str,
        source: str,
        source_ids: Sequence[str],
        patient_id: str | None,
        group_ids: Sequence[str] = (),
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        """Marks the deleted readings of ``patient_id`` (every patient's, when the record was
        not fixed to one, each still only its own subject's), only ever within ``tenant``."""
        candidates: list[tuple[str, dict[str, Any] | None]] = []
        unique_ids = list(dict.fromkeys(source_ids))
        # Resources written before tenants carry no tenant tag: the default tenant's searches
        # cannot ask for it, and every result is checked below.
        in_tenant = {"_tag": f"{TENANT_TAG_SYSTEM}|{tenant}"} if tenant != DEFAULT_TENANT else {}
        if patient_id is not None:
            wanted = {observation_id(source, source_id, patient_id, tenant): source_id for source_id in unique_ids}
            found = self._by_id(list(wanted))
            candidates += [(source_id, found.get(resource_id)) for resource_id, source_id in wanted.items()]
        else:
            reading_system = reading_identifier_system(source)
            for source_id in unique_ids:
                query = {"identifier": f"{reading_system}|{source_id}", **in_tenant}
                members = self.fhir.search("Observation", query)
                candidates += [(source_id, member) for member in members] or [(source_id, None)]
        system = group_identifier_system(source)
        for group_id in dict.fromkeys(group_ids):
            query = {"identifier": f"{system}|{group_id}", "_count": "100", **in_tenant}
            members = self.fhir.search("Observation", query)
            candidates += [(f"group {group_id}", member) for member in members] or [(f"group {group_id}", None)]

        marked, unknown, updates = [], [], []
        for name, current in candidates:
            subject = (current or {}).get("subject", {}).get("reference")
            theirs = current is not None and tenant_of(current) != tenant
            if current is None or theirs or (patient_id is not None and subject != f"Patient/{patient_id}"):
                unknown.append(name)
                continue
            if current.get("status") != "entered-in-error":
                updates.append(entered_in_error(current))
            marked.append(name)
        if updates:
            self.fhir.write(updates)
        record = {
            "id": receipt_id,
            "receiptId": receipt_id,
            "source": source,
            "loggedAt": instant_text(utc_now()),
            "markedEnteredInError": marked,
            "unknown": unknown,
        }
        self.log.upsert_item(record)
        return record
