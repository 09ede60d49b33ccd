"""The clients and services of one worker process, built on first use from the settings (so
a bad setting surfaces as one clear error at first use, never at function indexing)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from azure.core.exceptions import ResourceExistsError
from azure.cosmos import DatabaseProxy
from azure.keyvault.secrets import SecretClient
from azure.storage.queue import QueueClient

from shared.bff.identity import DirectoryIdentityProvider, IdentityProvider, OidcIdentityProvider
from shared.bff.login import Login, LoginLimits
from shared.bff.sessions import SessionStore
from shared.bff.throttle import Throttle
from shared.clients.cosmos import cosmos_database
from shared.clients.keyvault import secret_client
from shared.clients.storage import container_client, queue_client
from shared.consent.models import PARTNER_SOURCE
from shared.consent.registry import AccountLinks, ConsentAudit, ConsentCache, ConsentStore
from shared.counters import FixedWindowCounter
from shared.devices.records import DeviceRecord
from shared.devices.registry import DeviceRegistry
from shared.errors import ConfigurationError
from shared.fhir.client import FhirClient
from shared.fhir.patients import PatientDirectory
from shared.logs import configure_logging
from shared.names import (
    AUDIT_CONTAINER,
    CONSENTS_CONTAINER,
    CURSORS_CONTAINER,
    DELETION_LOG_CONTAINER,
    DEVICES_CONTAINER,
    HELD_CONTAINER,
    LOCKS_CONTAINER,
    MEMBERSHIPS_CONTAINER,
    PARKED_CONTAINER,
    PARTNER_APPS_CONTAINER,
    PARTNER_GRANTS_CONTAINER,
    PARTNER_RECEIPTS_CONTAINER,
    RESET_OUTBOX_QUEUE,
    SESSIONS_CONTAINER,
    TENANTS_CONTAINER,
    THROTTLE_CONTAINER,
    USERS_CONTAINER,
    WITHINGS_CONTAINER,
    WITHINGS_SYNC_POISON_QUEUE,
    WITHINGS_SYNC_QUEUE,
)
from shared.partners.authorization import GrantStore, PartnerAuthorizationServer
from shared.partners.receipts import ReceiptBook
from shared.partners.registry import AppRegistry
from shared.pipeline.batching import Batcher, GroupArchive, GroupCommit
from shared.pipeline.deletions import Deletions
from shared.pipeline.parking import ParkedReadings
from shared.pipeline.processing import ReadingProcessor
from shared.pipeline.store import RawRecordStore
from shared.pipeline.worker import RawRecordWorker
from shared.settings import Settings, get_settings
from shared.sources.healthkit.uploads import HealthKitIngestion
from shared.sources.withings import budget
from shared.sources.withings.client import WithingsClient
from shared.sources.withings.connect import AccountUnlinker, WithingsConnector, derived_secret
from shared.sources.withings.poller import Poller
from shared.sources.withings.state import StateSigner
from shared.sources.withings.sync import Cursors, SyncJobRunner, WithingsSync
from shared.sources.withings.tokens import TokenStore
from shared.tenants import DEFAULT_TENANT
from shared.tenants.directory import TenantDirectory
from shared.tenants.held import HeldRecords
from shared.tenants.memberships import Memberships
from shared.tenants.registry import TenantRegistry
from shared.workflows.assignment import DeviceAssignment
from shared.workflows.corrections import AttributionCorrection
from shared.workflows.tenants import TenantAdministration

# Inline payloads are under 48 KiB: a round's archive blob stays a few MiB.
ARCHIVE_BATCH_RECORDS = 100
# How long a round of the worker's group archive or device look-up keeps gathering after the
# last caller arrived (the invocations of one fetched batch start over ~15 ms): a lone record
# waits this much, a batch shares one write or query.
ROUND_SETTLE_S = 0.002


@dataclass
class AppContext:
    settings: Settings
    _fhir_clients: dict[str, FhirClient] = field(default_factory=dict, repr=False)
    _fhir_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def raw_store(self) -> RawRecordStore:
        return RawRecordStore.from_settings(self.settings)

    @cached_property
    def ingress_store(self) -> RawRecordStore:
        """The same queue and archive, with the short retry budget of a request being answered."""
        return RawRecordStore.from_settings(self.settings, fast=True)

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
        store = ConsentStore(self.cosmos.get_container_client(CONSENTS_CONTAINER))
        store.listeners.append(self._partner_consent_changed)
        return store

    def _partner_consent_changed(self, tenant: str, patient_id: str, source: str) -> None:
        if PARTNER_SOURCE.fullmatch(source):  # only then is the authorization server built
            self.authorization_server.consent_changed(tenant, patient_id, source)

    @cached_property
    def account_links(self) -> AccountLinks:
        """Every tenant's links of sources' accounts (the Withings poller's and CLI's one
        cross-tenant read)."""
        return AccountLinks(self.cosmos.get_container_client(CONSENTS_CONTAINER))

    @cached_property
    def consent_audit(self) -> ConsentAudit:
        return ConsentAudit(self.cosmos.get_container_client(AUDIT_CONTAINER))

    @cached_property
    def parked(self) -> ParkedReadings:
        lookback = dt.timedelta(days=self.settings.attribution_lookback_days)
        container = self.cosmos.get_container_client(PARKED_CONTAINER)
        return ParkedReadings(container, lookback, lookback_of=self.tenant_directory.lookback)

    @cached_property
    def patients(self) -> PatientDirectory:
        """The default tenant's patients."""
        return PatientDirectory(self.fhir, DEFAULT_TENANT)

    def own_fhir(self, tenant: str) -> FhirClient | None:
        """The FHIR service of a tenant that has its own (hard isolation), or None: the hub's."""
        url = self.tenant_directory.fhir_url(tenant)
        if url is None:
            return None
        with self._fhir_lock:
            client = self._fhir_clients.get(url)
            if client is None:
                tenant_settings = self.settings.model_copy(update={"fhir_url": url, "fhir_audience": None})
                client = FhirClient.from_settings(tenant_settings)
                self._fhir_clients[url] = client
        return client

    def patients_of(self, tenant: str) -> PatientDirectory:
        own = self.own_fhir(tenant)
        return PatientDirectory(own) if own is not None else PatientDirectory(self.fhir, tenant)

    @cached_property
    def deletions(self) -> Deletions:
        return Deletions(self.fhir, self.cosmos.get_container_client(DELETION_LOG_CONTAINER))

    @cached_property
    def corrections(self) -> AttributionCorrection:
        return AttributionCorrection(self.devices, self.consents, self.fhir, self.parked, self.raw_store)

    @cached_property
    def tenants(self) -> TenantRegistry:
        return TenantRegistry(self.cosmos.get_container_client(TENANTS_CONTAINER))

    @cached_property
    def tenant_directory(self) -> TenantDirectory:
        settings = self.settings
        return TenantDirectory(self.tenants, settings.medisante_api_key_hashes, settings.tenant_cache_seconds)

    @cached_property
    def memberships(self) -> Memberships:
        return Memberships(self.cosmos.get_container_client(MEMBERSHIPS_CONTAINER))

    @cached_property
    def partner_apps(self) -> AppRegistry:
        return AppRegistry(self.cosmos.get_container_client(PARTNER_APPS_CONTAINER))

    @cached_property
    def partner_receipts(self) -> ReceiptBook:
        return ReceiptBook(self.cosmos.get_container_client(PARTNER_RECEIPTS_CONTAINER))

    @cached_property
    def partner_rate(self) -> FixedWindowCounter:
        """Calls of each partner app per minute (``PARTNER_CALLS_PER_MINUTE``)."""
        return FixedWindowCounter(self.cosmos.get_container_client(THROTTLE_CONTAINER), 60)

    @cached_property
    def authorization_server(self) -> PartnerAuthorizationServer:
        store = GrantStore(self.cosmos.get_container_client(PARTNER_GRANTS_CONTAINER))
        return PartnerAuthorizationServer(self.partner_apps, store, self.consents)

    @cached_property
    def held(self) -> HeldRecords:
        return HeldRecords(self.cosmos.get_container_client(HELD_CONTAINER))

    @cached_property
    def tenant_administration(self) -> TenantAdministration:
        return TenantAdministration(self.tenants, self.tenant_directory, self.held, self.raw_store, self.memberships)

    @cached_property
    def assignment(self) -> DeviceAssignment:
        return DeviceAssignment(self.devices, self.consents, self.parked, self.raw_store, self.patients)

    @cached_property
    def reset_outbox(self) -> QueueClient:
        return queue_client(self.settings, RESET_OUTBOX_QUEUE)

    def ensure_storage(self) -> None:
        """Queues and blob containers (local stack; infra/ declares them in Azure)."""
        self.raw_store.ensure_exists()
        for name in (RESET_OUTBOX_QUEUE, WITHINGS_SYNC_QUEUE, WITHINGS_SYNC_POISON_QUEUE):
            with contextlib.suppress(ResourceExistsError):
                queue_client(self.settings, name).create_queue()
        with contextlib.suppress(ResourceExistsError):
            container_client(self.settings, LOCKS_CONTAINER).create_container()

    # -- Withings ---------------------------------------------------------------------------------
    def _withings_secret(self) -> str:
        settings = self.settings
        if not settings.withings_configured or settings.withings_client_secret is None:
            raise ConfigurationError(
                "the Withings connector is not configured (WITHINGS_CLIENT_ID, WITHINGS_CLIENT_SECRET, "
                "WITHINGS_PUBLIC_BASE_URL)"
            )
        return settings.withings_client_secret.get_secret_value()

    @cached_property
    def withings_notify_secret(self) -> str:
        """The default tenant's notification path secret."""
        return derived_secret(self._withings_secret(), "notify")

    def withings_notify_secret_of(self, tenant: str) -> str:
        """Each tenant's notification URL has its own path secret: one tenant's URL cannot
        notify into another."""
        if tenant == DEFAULT_TENANT:
            return self.withings_notify_secret
        return derived_secret(self._withings_secret(), f"notify:{tenant}")

    @cached_property
    def withings_budget(self) -> budget.CallBudget:
        counter = FixedWindowCounter(self.cosmos.get_container_client(WITHINGS_CONTAINER), budget.WINDOW_S)
        settings = self.settings
        return budget.CallBudget(
            counter,
            settings.withings_calls_per_minute,
            settings.withings_rate_limit_pause_s,
            serves_tenants=self.tenant_directory.serves_tenants,
        )

    @cached_property
    def withings_client(self) -> WithingsClient:
        secret = self._withings_secret()
        assert self.settings.withings_client_id  # checked by _withings_secret
        return WithingsClient(
            self.settings.withings_api_url,
            self.settings.withings_client_id,
            secret,
            budget=self.withings_budget.acquire,
        )

    @cached_property
    def withings_tokens(self) -> TokenStore:
        locks = container_client(self.settings, LOCKS_CONTAINER)
        return TokenStore(self.secrets, locks, self.withings_client, self.consents)

    @cached_property
    def withings_jobs(self) -> SyncJobRunner:
        settings = self.settings
        sync = WithingsSync(
            client=self.withings_client,
            tokens=self.withings_tokens,
            consents=self.consents,
            cursors=Cursors(self.cosmos.get_container_client(CURSORS_CONTAINER)),
            raw_store=self.raw_store,
            unknown_users=self.cosmos.get_container_client(WITHINGS_CONTAINER),
            backfill=dt.timedelta(days=settings.withings_backfill_days),
            unlinker=self.withings_unlinker,
            tenant_status=self.tenant_directory.status,
        )
        return SyncJobRunner(
            sync, self.withings_budget, self.withings_sync_queue, self.cosmos.get_container_client(WITHINGS_CONTAINER)
        )

    @cached_property
    def withings_poller(self) -> Poller:
        settings = self.settings
        jobs = self.withings_jobs
        max_age_s = settings.withings_poll_max_age_minutes * 60
        per_minute = settings.withings_calls_per_minute
        return Poller(self.account_links, jobs.sync.cursors, jobs, per_minute, max_age_s, self.tenant_directory.status)

    @cached_property
    def withings_sync_queue(self) -> QueueClient:
        return queue_client(self.settings, WITHINGS_SYNC_QUEUE)

    @cached_property
    def withings_notify_queue(self) -> QueueClient:
        """The sync queue for the notification endpoint, which must answer within Withings' 2 s."""
        return queue_client(self.settings, WITHINGS_SYNC_QUEUE, fast=True)

    @cached_property
    def withings_connector(self) -> WithingsConnector:
        settings = self.settings
        base = (settings.withings_public_base_url or "").rstrip("/")
        key = derived_secret(self._withings_secret(), "state").encode()
        return WithingsConnector(
            client=self.withings_client,
            tokens=self.withings_tokens,
            consents=self.consents,
            state=StateSigner(key, self.cosmos.get_container_client(WITHINGS_CONTAINER)),
            authorize_endpoint=settings.withings_authorize_url,
            scopes=settings.withings_scopes,
            redirect_uri=f"{base}/api/withings/callback",
            unlinker=self.withings_unlinker,
            jobs=self.withings_sync_queue,
        )

    def withings_notify_url_of(self, tenant: str) -> str:
        base = (self.settings.withings_public_base_url or "").rstrip("/")
        path = "withings/notify" if tenant == DEFAULT_TENANT else f"tenants/{tenant}/withings/notify"
        return f"{base}/api/{path}/{self.withings_notify_secret_of(tenant)}"

    @cached_property
    def withings_unlinker(self) -> AccountUnlinker:
        return AccountUnlinker(self.withings_client, self.withings_tokens, self.consents, self.withings_notify_url_of)

    @cached_property
    def directory(self) -> DirectoryIdentityProvider:
        lifetime = dt.timedelta(minutes=self.settings.password_reset_token_minutes)
        return DirectoryIdentityProvider(self.cosmos.get_container_client(USERS_CONTAINER), self.reset_outbox, lifetime)

    @cached_property
    def identity(self) -> IdentityProvider:
        settings = self.settings
        if settings.identity_provider == "oidc":
            assert settings.oidc_token_url  # checked by Settings
            assert settings.oidc_userinfo_url
            secret = settings.oidc_client_secret
            return OidcIdentityProvider(
                settings.oidc_token_url,
                settings.oidc_userinfo_url,
                reset_url=settings.oidc_password_reset_url,
                client_id=settings.oidc_client_id,
                client_secret=secret.get_secret_value() if secret else None,
                patient_claim=settings.oidc_patient_claim,
            )
        return self.directory

    @cached_property
    def sessions(self) -> SessionStore:
        return SessionStore(
            self.cosmos.get_container_client(SESSIONS_CONTAINER),
            idle=dt.timedelta(minutes=self.settings.session_idle_minutes),
            absolute=dt.timedelta(hours=self.settings.session_absolute_hours),
        )

    @cached_property
    def throttle(self) -> Throttle:
        window_s = self.settings.throttle_window_minutes * 60
        return Throttle(FixedWindowCounter(self.cosmos.get_container_client(THROTTLE_CONTAINER), window_s))

    @cached_property
    def login(self) -> Login:
        settings = self.settings
        limits = LoginLimits(
            failures_per_address=settings.login_max_failures_per_address,
            failures_per_account=settings.login_max_failures_per_account,
            resets_per_hour=settings.reset_max_requests_per_hour,
        )
        return Login(self.identity, self.sessions, self.throttle, limits, self.tenant_directory)

    @cached_property
    def healthkit_ingestion(self) -> HealthKitIngestion:
        return HealthKitIngestion(self.ingress_store, self.devices, self.consents, self.settings.bff_max_samples)

    @property
    def round_wait_s(self) -> float:
        """The longest a round of the worker's group commit, archive or look-up gathers."""
        return self.settings.fhir_group_wait_ms / 1000

    @cached_property
    def group_commit(self) -> GroupCommit:
        return GroupCommit(self.fhir, max_entries=self.settings.fhir_batch_size, max_wait_s=self.round_wait_s)

    @cached_property
    def group_archive(self) -> GroupArchive:
        """Raw payloads of the records one worker process runs at once, in one archive write."""
        return GroupArchive(
            self.raw_store.archive_bodies,
            max_records=ARCHIVE_BATCH_RECORDS,
            max_wait_s=self.round_wait_s,
            settle_s=ROUND_SETTLE_S,
        )

    @cached_property
    def device_lookup(self) -> Batcher[str, DeviceRecord | None]:
        """Device reads of the records one worker process runs at once, in one query."""
        return Batcher(self.devices.find_many, max_items=100, max_wait_s=self.round_wait_s, settle_s=ROUND_SETTLE_S)

    @cached_property
    def worker(self) -> RawRecordWorker:
        from shared import conversion

        processor = ReadingProcessor(
            parse=conversion.parse,
            fhir=self.group_commit,
            store=self.raw_store,
            devices=self.devices,
            consents=self.consents,
            audit=self.consent_audit,
            parked=self.parked,
            deletions=self.deletions,
            consent_lookup=ConsentCache(self.consents, self.settings.consent_cache_seconds),
            device_lookup=self.device_lookup.submit,
            tenants=self.tenant_directory,
            held=self.held,
            own_fhir=self.own_fhir,
            settle=lambda envelope, outcomes: self.partner_receipts.settle(envelope.receipt_id, outcomes),
        )
        processors = {source: processor for source in ("medisante", "healthkit", "withings", "partner")}
        return RawRecordWorker(
            store=self.raw_store,
            processors=processors,
            max_attempts=self.settings.max_dequeue_count,
            participant=self.group_commit.participant,
            archive=self.group_archive,
        )


@lru_cache(maxsize=1)
def get_context() -> AppContext:
    configure_logging()
    return AppContext(get_settings())


def reset_context() -> None:
    from shared.settings import reset_settings_cache

    reset_settings_cache()
    get_context.cache_clear()
