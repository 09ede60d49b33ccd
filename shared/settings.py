"""One typed settings object, read from the environment (Functions app settings).

It is built lazily on first use, so that a bad setting can never break function indexing:
``get_settings()`` raises one ``ConfigurationError`` that names every bad setting.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ENTRA_V2_ISSUER = re.compile(r"https://login\.microsoftonline\.com/([0-9a-fA-F-]{36})/v2\.0")


def _comma_list(value: object) -> object:
    """App settings hold lists as comma-separated text; blanks around items are ignored."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    # "local" trusts the local stack's self-signed Key Vault certificate, skips the FHIR token
    # and uses the Cosmos key; "azure" uses managed identity everywhere.
    hub_env: Literal["local", "azure"] = "azure"
    azure_client_id: str | None = Field(default=None, description="client id of the user-assigned identity")

    storage_connection_string: SecretStr | None = Field(default=None, alias="AzureWebJobsStorage")
    storage_account_name: str | None = Field(default=None, alias="AzureWebJobsStorage__accountName")
    max_dequeue_count: int = Field(default=5, ge=1, le=20)
    # How long ingress may wait for Storage before it answers 503 + Retry-After (the sender
    # re-delivers); the workers keep the SDK's own, longer, retry budget.
    ingress_storage_timeout_s: float = Field(default=3.0, gt=0, le=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=100 * 1_048_576)

    cosmos_endpoint: str = Field(min_length=1)
    cosmos_key: SecretStr | None = None
    cosmos_database: str = "iomt-hub"

    fhir_url: str = Field(min_length=1)
    fhir_audience: str | None = None
    fhir_batch_size: int = Field(default=500, ge=1, le=500)
    fhir_max_attempts: int = Field(default=6, ge=1, le=20)
    fhir_timeout_s: float = Field(default=30.0, gt=0, le=300)
    # Group commit in the worker: concurrent records' entries go out together in one batch
    # bundle once every record in flight has handed its entries in, the bundle holds
    # FHIR_BATCH_SIZE entries, or this long has passed (the cap a slow record can cost others).
    fhir_group_wait_ms: int = Field(default=100, ge=0, le=5000)
    # The worker's consent look-ups are kept this long per process (see ConsentCache).
    consent_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    tenant_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Calls of the partner metrics API per partner app (client_id) per minute, whatever its users.
    partner_calls_per_minute: int = Field(default=120, ge=1, le=100_000)

    keyvault_url: str = Field(min_length=1)
    keyvault_ca_bundle: str | None = None

    medisante_api_key_hashes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated SHA-256 hex digests of the accepted x-api-key values"
    )

    # Admin endpoints (devices, consents): Entra ID (or any OIDC provider) bearer tokens.
    admin_token_issuer: str | None = Field(
        default=None, description="issuer of admin tokens, e.g. https://login.microsoftonline.com/<tenant>/v2.0"
    )
    admin_token_v1_issuer: str | None = Field(
        default=None,
        description="issuer of v1.0 admin tokens; derived for Entra (https://sts.windows.net/<tenant>/)",
    )
    admin_token_audience: str | None = Field(default=None, description="the hub's app id URI, e.g. api://iomt-hub")
    admin_token_client_id: str | None = Field(
        default=None, description="the hub's app registration's client id (the aud of v2.0 tokens)"
    )
    admin_role: str = Field(default="IoMT.Admin", min_length=1, description="app role an admin token must carry")

    attribution_lookback_days: int = Field(default=7, ge=0, le=365)

    # Mobile BFF: who the app's users are, their sessions, and the limits on what they send.
    identity_provider: Literal["directory", "oidc"] = Field(
        default="directory", description="built-in user directory (Cosmos DB) or an OIDC provider"
    )
    oidc_token_url: str | None = None
    oidc_userinfo_url: str | None = None
    oidc_password_reset_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_patient_claim: str = "patient_id"
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 30)
    bff_max_samples: int = Field(default=1000, ge=1, le=100_000)
    bff_allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated web origins allowed to call the BFF"
    )
    # How many proxies of ours append to X-Forwarded-For: the client's address is that many
    # entries from the right (entries further left are whatever the caller sent).
    client_address_trusted_hops: int = Field(default=1, ge=0, le=10)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    reset_max_requests_per_hour: int = Field(default=3, ge=1)
    throttle_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    password_reset_token_minutes: int = Field(default=30, ge=5, le=24 * 60)
    ingest_role: str = Field(default="IoMT.Ingest", min_length=1, description="app role of a BFF hosted elsewhere")
    platform_role: str = Field(
        default="IoMT.Platform", min_length=1, description="app role of platform operators (any tenant, tenants)"
    )

    # Withings connector (its OAuth app): the secret is a Key Vault reference in Azure. The
    # notification URL's secret and the state signing key are derived from the client secret.
    withings_client_id: str | None = None
    withings_client_secret: SecretStr | None = None
    withings_public_base_url: str | None = Field(
        default=None, description="public https base URL of this app, for the OAuth callback and notifications"
    )
    withings_api_url: str = "https://wbsapi.withings.net"
    withings_authorize_url: str = "https://account.withings.com/oauth2_user/authorize2"
    withings_scopes: str = "user.info,user.metrics,user.activity"
    withings_calls_per_minute: int = Field(default=120, ge=1, le=10_000)
    withings_rate_limit_pause_s: int = Field(default=60, ge=1, le=3600)
    withings_poll_max_age_minutes: int = Field(default=60, ge=1)
    withings_backfill_days: int = Field(default=30, ge=0, le=3650)
    withings_notify_allowed_networks: Annotated[tuple[Network, ...], NoDecode] = Field(
        default=(), description="comma-separated CIDRs allowed to call the notification URL (empty: any)"
    )

    @field_validator(
        "fhir_audience",
        "azure_client_id",
        "admin_token_issuer",
        "admin_token_audience",
        "admin_token_v1_issuer",
        "admin_token_client_id",
        "withings_client_id",
        "withings_client_secret",
        "withings_public_base_url",
        "oidc_token_url",
        "oidc_userinfo_url",
        "oidc_password_reset_url",
        "oidc_client_id",
        "oidc_client_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    _lists = field_validator("medisante_api_key_hashes", "bff_allowed_origins", mode="before")(_comma_list)

    @field_validator("medisante_api_key_hashes")
    @classmethod
    def _digests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        digests = tuple(digest.lower() for digest in value)
        if not all(_SHA256_HEX.fullmatch(digest) for digest in digests):
            raise ValueError("every item must be a SHA-256 digest in hex (64 characters 0-9, a-f)")
        return digests

    @field_validator("withings_notify_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        value = _comma_list(value)
        if not isinstance(value, tuple):
            return value
        try:
            return tuple(ipaddress.ip_network(item, strict=False) for item in value)
        except ValueError:
            raise ValueError("every item must be a network in CIDR form, e.g. 89.30.121.0/24") from None

    @field_validator("fhir_url", "cosmos_endpoint", "keyvault_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _oidc_configured(self) -> Settings:
        if self.identity_provider == "oidc" and not (self.oidc_token_url and self.oidc_userinfo_url):
            raise ValueError("IDENTITY_PROVIDER=oidc needs OIDC_TOKEN_URL and OIDC_USERINFO_URL")
        return self

    @model_validator(mode="after")
    def _storage_configured(self) -> Settings:
        if self.storage_connection_string is None and not self.storage_account_name:
            raise ValueError("set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__accountName")
        return self

    @property
    def admin_token_issuers(self) -> tuple[str, ...]:
        """The configured tenant's v2.0 issuer and its v1.0 issuer (Entra issues a v1.0 token
        unless the app's manifest says accessTokenAcceptedVersion 2)."""
        if not self.admin_token_issuer:
            return ()
        v2 = self.admin_token_issuer.rstrip("/")
        v1 = self.admin_token_v1_issuer
        entra = _ENTRA_V2_ISSUER.fullmatch(v2)
        if v1 is None and entra is not None:
            v1 = f"https://sts.windows.net/{entra.group(1)}/"
        return (v2, v1) if v1 else (v2,)

    @property
    def admin_token_audiences(self) -> tuple[str, ...]:
        """The App ID URI (v1.0 tokens) and the client id (v2.0 tokens)."""
        return tuple(a for a in (self.admin_token_audience, self.admin_token_client_id) if a)

    @property
    def withings_configured(self) -> bool:
        return bool(self.withings_client_id and self.withings_client_secret and self.withings_public_base_url)

    @property
    def is_local(self) -> bool:
        return self.hub_env == "local"

    @property
    def fhir_scope(self) -> str:
        return f"{(self.fhir_audience or self.fhir_url).rstrip('/')}/.default"


def _describe(error: ValidationError) -> str:
    # Only names and reasons: pydantic's own text would echo the offending values.
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else "settings"
        problems.append(f"{name.upper()}: {item['msg'].removeprefix('Value error, ')}")
    return "invalid settings: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()  # values come from the environment
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def reset_settings_cache() -> None:
    get_settings.cache_clear()
