"""The clients and services of one worker process, built on first use from the settings (so
a bad setting surfaces as one clear error at first use, never at function indexing)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property, lru_cache

from azure.cosmos import DatabaseProxy
from azure.keyvault.secrets import SecretClient

from shared.clients.cosmos import cosmos_database
from shared.clients.keyvault import secret_client
from shared.consent import AUDIT_CONTAINER, CONSENTS_CONTAINER, ConsentAudit, ConsentStore
from shared.devices import DEVICES_CONTAINER, DeviceRegistry
from shared.fhir.client import FhirClient
from shared.fhir.patients import PatientDirectory
from shared.pipeline.parking import PARKED_CONTAINER, ParkedReadings
from shared.pipeline.processing import ReadingProcessor
from shared.pipeline.store import RawRecordStore
from shared.pipeline.worker import RawRecordWorker
from shared.settings import Settings, get_settings


@dataclass
class AppContext:
    settings: Settings

    @cached_property
    def raw_store(self) -> RawRecordStore:
        return RawRecordStore.from_settings(self.settings)

    @cached_property
    def fhir(self) -> FhirClient:
        return FhirClient.from_settings(self.settings)

    @cached_property
    def cosmos(self) -> DatabaseProxy:
        return cosmos_database(self.settings)

    @cached_property
    def secrets(self) -> SecretClient:
        return secret_client(self.settings)

    @cached_property
    def devices(self) -> DeviceRegistry:
        return DeviceRegistry(self.cosmos.get_container_client(DEVICES_CONTAINER))

    @cached_property
    def consents(self) -> ConsentStore:
        return ConsentStore(self.cosmos.get_container_client(CONSENTS_CONTAINER))

    @cached_property
    def consent_audit(self) -> ConsentAudit:
        return ConsentAudit(self.cosmos.get_container_client(AUDIT_CONTAINER))

    @cached_property
    def parked(self) -> ParkedReadings:
        lookback = dt.timedelta(days=self.settings.attribution_lookback_days)
        return ParkedReadings(self.cosmos.get_container_client(PARKED_CONTAINER), lookback)

    @cached_property
    def patients(self) -> PatientDirectory:
        return PatientDirectory(self.fhir)

    @cached_property
    def worker(self) -> RawRecordWorker:
        processor = ReadingProcessor(
            fhir=self.fhir,
            store=self.raw_store,
            devices=self.devices,
            consents=self.consents,
            audit=self.consent_audit,
            parked=self.parked,
        )
        processors = {source: processor for source in ("medisante", "healthkit", "withings")}
        return RawRecordWorker(
            store=self.raw_store, processors=processors, max_attempts=self.settings.max_dequeue_count
        )


@lru_cache(maxsize=1)
def get_context() -> AppContext:
    return AppContext(get_settings())


def reset_context() -> None:
    from shared.settings import reset_settings_cache

    reset_settings_cache()
    get_context.cache_clear()
