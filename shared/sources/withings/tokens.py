"""Withings tokens live only in Key Vault: one secret per link of a Withings user to a tenant
(``withings-<userid>`` in the default tenant, ``withings-<tenant>-<userid>`` in another), tagged
with the access token's expiry, never logged. The same Withings user linked in two tenants
consented twice and has two independent token pairs.

Refresh is single-flight per user across every instance: a blob lease is the lock. Withings
rotates the refresh token on every refresh and two racing refreshes log the user out, so the
holder re-reads the secret (someone may have refreshed meanwhile), refreshes, and stores the
rotated refresh token before anyone uses the new access token."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobLeaseClient, ContainerClient
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.consent.registry import ConsentStore
from shared.errors import DependencyError, HubError
from shared.sources.withings.client import Tokens, WithingsAuthError, WithingsClient
from shared.tenants import DEFAULT_TENANT

LEASE_S = 30


class NeedsReconsent(HubError):
    """The user's grant is gone (invalid refresh token, unlinked): consent again to resume."""

    status, code = 409, "needs_reconsent"


def secret_name(userid: str, tenant: str = DEFAULT_TENANT) -> str:
    return f"withings-{userid}" if tenant == DEFAULT_TENANT else f"withings-{tenant}-{userid}"


class TokenStore:
    def __init__(
        self,
        secrets: SecretClient,
        locks: ContainerClient,
        client: WithingsClient,
        consents: ConsentStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secrets
        self.locks = locks
        self.client = client
        self.consents = consents
        self.clock = clock

    def save(self, tokens: Tokens, tenant: str = DEFAULT_TENANT) -> None:
        expires = dt.datetime.fromtimestamp(tokens.expires_at, tz=dt.UTC).isoformat()
        name = secret_name(tokens.userid, tenant)

        def write() -> None:
            self.secrets.set_secret(
                name,
                tokens.to_json(),
                content_type="application/json",
                tags={"source": "withings", "tenant": tenant, "accessTokenExpiresAt": expires},
            )

        try:
            write()
        except ResourceExistsError:  # deleted at an unlink, still soft-deleted: a reconnect
            self.secrets.begin_recover_deleted_secret(name).wait()
            write()

    def load(self, userid: str, tenant: str = DEFAULT_TENANT) -> Tokens:
        try:
            value = self.secrets.get_secret(secret_name(userid, tenant)).value
        except ResourceNotFoundError:
            raise NeedsReconsent(f"no Withings tokens for user {userid}") from None
        if value is None:
            raise NeedsReconsent(f"no Withings tokens for user {userid}")
        return Tokens.from_json(value)

    def delete(self, userid: str, tenant: str = DEFAULT_TENANT) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.secrets.begin_delete_secret(secret_name(userid, tenant)).wait()

    def access_token(self, userid: str, *, tenant: str = DEFAULT_TENANT, refresh_if: str | None = None) -> str:
        """A valid access token of the user's link in ``tenant``. ``refresh_if``: the token
        Withings just refused; it is replaced unless another worker replaced it already."""
        tokens = self.load(userid, tenant)
        if not tokens.expired(self.clock()) and tokens.access_token != refresh_if:
            return tokens.access_token
        with self._lease(secret_name(userid, tenant)):
            tokens = self.load(userid, tenant)  # someone may have refreshed while we waited
            if not tokens.expired(self.clock()) and tokens.access_token != refresh_if:
                return tokens.access_token
            try:
                fresh = self.client.refresh(tokens.refresh_token)
            except WithingsAuthError:
                self.consents.for_tenant(tenant).require_reconsent("withings", userid, "withings-refresh")
                raise NeedsReconsent(f"Withings refused the refresh token of user {userid}") from None
            self.save(fresh, tenant)  # the rotated refresh token is safe before the new access token is used
            return fresh.access_token

    @contextlib.contextmanager
    def _lease(self, name: str) -> Iterator[None]:
        blob = self.locks.get_blob_client(f"{name}-refresh")
        with contextlib.suppress(ResourceExistsError):
            blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob)
        try:
            for attempt in Retrying(
                stop=stop_after_delay(LEASE_S * 2),
                wait=wait_exponential(multiplier=0.05, max=1),
                retry=retry_if_exception_type(HttpResponseError),
                reraise=False,
            ):
                with attempt:
                    lease.acquire(lease_duration=LEASE_S)
        except RetryError as exc:
            raise DependencyError(f"could not take the token lock of {name}") from exc
        try:
            yield
        finally:
            with contextlib.suppress(HttpResponseError):
                lease.release()
