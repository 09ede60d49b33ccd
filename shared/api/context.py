"""The clients and services of one worker process, built on first use from the settings (so
a bad setting surfaces as one clear error at first use, never at function indexing)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from azure.cosmos import DatabaseProxy
from azure.keyvault.secrets import SecretClient

from shared.clients.cosmos import cosmos_database
from shared.clients.keyvault import secret_client
from shared.fhir.client import FhirClient
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
    def worker(self) -> RawRecordWorker:
        processor = ReadingProcessor(fhir=self.fhir, store=self.raw_store)
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
