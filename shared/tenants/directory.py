"""The tenants a worker process serves, as it sees them: the registry read at most every
``ttl_s`` seconds (``TENANT_CACHE_SECONDS``), so that no request pays a registry read. A
suspension or a new webhook key applies everywhere within that time, and at once in the process
that made the change. The default tenant is the deployment itself: always served, always active,
with the deployment's own Medisanté key digests."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.errors import DependencyError
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from shared.tenants.records import TenantRecord
    from shared.tenants.registry import TenantRegistry


# An unknown key makes the process read the registry again at most this often: a tenant's new
# key works within seconds, and wrong keys cannot make every request a registry read.
MISS_REREAD_S = 5.0


class TenantDirectory:
    def __init__(
        self,
        registry: TenantRegistry,
        default_key_digests: tuple[str, ...],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.default_key_digests = default_key_digests
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._tenants: dict[str, TenantRecord] = {}
        self._read_at: float | None = None
        self._missed_at: float | None = None

    def _snapshot(self) -> dict[str, TenantRecord]:
        now = self.clock()
        with self._lock:
            if self._read_at is not None and now - self._read_at < self.ttl_s:
                return self._tenants
        try:
            tenants = {tenant.id: tenant for tenant in self.registry.list()}
        except Exception as exc:
            with self._lock:
                if self._read_at is not None:
                    return self._tenants  # the last known tenants, until the registry answers again
            raise DependencyError("the tenant registry is unavailable; retry") from exc
        with self._lock:
            self._tenants, self._read_at = tenants, now
        return tenants

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = None

    def status(self, tenant_id: str) -> str | None:
        """``active``, ``suspended``, or None for a tenant this deployment does not serve. A
        tenant this process has not seen yet (registered since its last read) is looked up
        again at once rather than taken for unknown."""
        if tenant_id == DEFAULT_TENANT:
            return "active"
        tenant = self._snapshot().get(tenant_id)
        if tenant is None:
            self.invalidate()
            tenant = self._snapshot().get(tenant_id)
        return tenant.status if tenant is not None else None

    def name(self, tenant_id: str) -> str:
        """The tenant's name (the default tenant's: the deployment's own, ``default``)."""
        tenant = self._snapshot().get(tenant_id) if tenant_id != DEFAULT_TENANT else None
        return tenant.name if tenant is not None else tenant_id

    def fhir_url(self, tenant_id: str) -> str | None:
        """The tenant's own FHIR service, or None: the hub's."""
        tenant = self._snapshot().get(tenant_id) if tenant_id != DEFAULT_TENANT else None
        return tenant.fhir_url if tenant is not None else None

    def lookback(self, tenant_id: str) -> dt.timedelta | None:
        """The tenant's own attribution look-back, or None: the deployment's."""
        tenant = self._snapshot().get(tenant_id) if tenant_id != DEFAULT_TENANT else None
        days = tenant.settings.attribution_lookback_days if tenant is not None else None
        return dt.timedelta(days=days) if days is not None else None

    def serves_tenants(self) -> bool:
        """Whether any tenant is registered (else the deployment is its one default tenant)."""
        return bool(self._snapshot())

    def has_keys(self) -> bool:
        return bool(self.default_key_digests) or any(
            tenant.settings.medisante_api_key_hashes for tenant in self._snapshot().values()
        )

    def tenant_of_key(self, presented: str) -> str | None:
        """The tenant whose Medisanté key this is, compared in constant time against the
        deployment's digests, then (only for another key) against every digest of every tenant."""
        candidate = hashlib.sha256(presented.encode("utf-8")).hexdigest()
        if _matches(candidate, self.default_key_digests):
            return DEFAULT_TENANT  # the deployment's own keys: no registry read on the answer path
        found = self._owner(candidate, self._snapshot())
        if found is None and self._may_reread():  # a tenant's new key: at most one read per MISS_REREAD_S
            self.invalidate()
            found = self._owner(candidate, self._snapshot())
        return found

    def _may_reread(self) -> bool:
        now = self.clock()
        with self._lock:
            if self._missed_at is not None and now - self._missed_at < MISS_REREAD_S:
                return False
            self._missed_at = now
            return True

    def _owner(self, candidate: str, tenants: dict[str, TenantRecord]) -> str | None:
        found: str | None = None
        for tenant in tenants.values():  # every tenant compared: the time does not tell which
            if _matches(candidate, tuple(tenant.settings.medisante_api_key_hashes)) and found is None:
                found = tenant.id
        return found


def _matches(candidate: str, digests: tuple[str, ...]) -> bool:
    """Constant time over every digest (no early exit)."""
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(candidate, digest)
    return matched
