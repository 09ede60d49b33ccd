"""Withings tokens live only in Key Vault: one secret per Withings user (``withings-<userid>``),
tagged with the access token's expiry, never logged.

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

LEASE_S = 30


class NeedsReconsent(HubError):
    """The user's grant is gone (invalid refresh token, unlinked): consent again to resume."""

    status, code = 409, "needs_reconsent"


def secret_name(userid: str) -> str:
    return f"withings-{userid}"


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

    def save(self, tokens: Tokens) -> None:
        expires = dt.datetime.fromtimestamp(tokens.expires_at, tz=dt.UTC).isoformat()
        name = secret_name(tokens.userid)

        def write() -> None:
            self.secrets.set_secret(
                name,
                tokens.to_json(),
                content_type="application/json",
                tags={"source": "withings", "accessTokenExpiresAt": expires},
            )

        try:
            write()
        except ResourceExistsError:  # deleted at an unlink, still soft-deleted: a reconnect
            self.secrets.begin_recover_deleted_secret(name).wait()
            write()

    def load(self, userid: str) -> Tokens:
        try:
            value = self.secrets.get_secret(secret_name(userid)).value
        except ResourceNotFoundError:
            raise NeedsReconsent(f"no Withings tokens for user {userid}") from None
        if value is None:
            raise NeedsReconsent(f"no Withings tokens for user {userid}")
        return Tokens.from_json(value)

    def delete(self, userid: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.secrets.begin_delete_secret(secret_name(userid)).wait()

    def access_token(self, userid: str, *, refresh_if: str | None = None) -> str:
        """A valid access token. ``refresh_if``: the token Withings just refused; it is replaced
        unless another worker replaced it already."""
        tokens = self.load(userid)
        if not tokens.expired(self.clock()) and tokens.access_token != refresh_if:
            return tokens.access_token
        with self._lease(userid):
            tokens = self.load(userid)  # someone may have refreshed while we waited
            if not tokens.expired(self.clock()) and tokens.access_token != refresh_if:
                return tokens.access_token
            try:
                fresh = self.client.refresh(tokens.refresh_token)
            except WithingsAuthError:
                self.consents.require_reconsent("withings", userid, "withings-refresh")
                raise NeedsReconsent(f"Withings refused the refresh token of user {userid}") from None
            self.save(fresh)  # the rotated refresh token is safe before the new access token is used
            return fresh.access_token

    @contextlib.contextmanager
    def _lease(self, userid: str) -> Iterator[None]:
        blob = self.locks.get_blob_client(f"withings-refresh-{userid}")
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
            raise DependencyError(f"could not take the token lock of Withings user {userid}") from exc
        try:
            yield
        finally:
            with contextlib.suppress(HttpResponseError):
                lease.release()
