"""The application registry (Cosmos DB): integrators register apps, a platform operator approves
or suspends them, and each tenant enables the approved apps its patients and staff may use.
Every change is a conditional write (``update_item``): concurrent changes all land."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from azure.cosmos import ContainerProxy

from shared.clients.cosmos import NoChange, filtered_query, read_or_none, update_item
from shared.clock import utc_now
from shared.errors import Conflict, NotFound
from shared.partners.records import AppRegistration, AppStatus, PartnerApp


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AppRegistry:
    def __init__(self, container: ContainerProxy, clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.container = container
        self.clock = clock

    def register(self, registration: AppRegistration) -> tuple[PartnerApp, str | None]:
        """(the app, pending approval; its client secret for a confidential app, shown once)."""
        now = self.clock()
        secret = secrets.token_urlsafe(32) if registration.type == "web" else None
        app = PartnerApp(
            id=f"app-{secrets.token_hex(12)}",
            name=registration.name,
            owner=registration.owner,
            type=registration.type,
            grant_types=sorted(set(registration.grant_types)),
            redirect_uris=list(dict.fromkeys(registration.redirect_uris)),
            scopes=sorted(set(registration.scopes)),
            secret_digest=secret_digest(secret) if secret else None,
            created_at=now,
            updated_at=now,
        )
        self.container.create_item(app.to_item())
        return app, secret

    def get(self, client_id: str) -> PartnerApp:
        item = read_or_none(self.container, client_id, client_id) if client_id else None
        if item is None:
            raise NotFound(f"no app with client_id {client_id!r}")
        return PartnerApp.from_item(item)

    def list(self, status: str | None = None) -> list[PartnerApp]:
        query, parameters = filtered_query({"status": status})
        items = self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True)
        return [PartnerApp.from_item(item) for item in items]

    def set_status(self, client_id: str, status: AppStatus) -> PartnerApp:
        """Approve or suspend. A suspended app's tokens stop working at once (the token endpoint
        and the metrics API check the app on every call)."""
        return self._change(client_id, lambda app: _with(app, status=status) if app.status != status else None)

    def enable(self, client_id: str, tenant: str) -> PartnerApp:
        """The tenant lets its patients and staff use the app; only an approved app."""

        def enabled(app: PartnerApp) -> PartnerApp | None:
            if app.status != "approved":
                raise Conflict(f"the app is {app.status}: only an approved app can be enabled")
            if tenant in app.enabled_tenants:
                return None
            return _with(app, enabled_tenants=sorted({*app.enabled_tenants, tenant}))

        return self._change(client_id, enabled)

    def disable(self, client_id: str, tenant: str) -> PartnerApp:
        def disabled(app: PartnerApp) -> PartnerApp | None:
            if tenant not in app.enabled_tenants:
                return None
            return _with(app, enabled_tenants=[t for t in app.enabled_tenants if t != tenant])

        return self._change(client_id, disabled)

    def authenticate(self, client_id: str, secret: str) -> bool:
        """Whether ``secret`` is the confidential app's client secret (constant time)."""
        try:
            app = self.get(client_id)
        except NotFound:
            return False
        presented = secret_digest(secret)
        return app.secret_digest is not None and hmac.compare_digest(presented, app.secret_digest)

    def usable_in(self, client_id: str, tenant: str) -> bool:
        """An approved app its tenant enabled: only then may it act for the tenant's people."""
        app = self.get(client_id)
        return app.status == "approved" and tenant in app.enabled_tenants

    def _change(self, client_id: str, change: Callable[[PartnerApp], PartnerApp | None]) -> PartnerApp:
        def apply(item: dict[str, Any] | None) -> dict[str, Any]:
            if item is None:
                raise NotFound(f"no app with client_id {client_id!r}")
            changed = change(PartnerApp.from_item(item))
            if changed is None:
                raise NoChange
            return changed.model_copy(update={"updated_at": self.clock()}).to_item()

        stored = update_item(self.container, client_id, client_id, apply)
        if stored is None:
            raise NotFound(f"no app with client_id {client_id!r}")
        return PartnerApp.from_item(stored)


def _with(app: PartnerApp, **changes: Any) -> PartnerApp:
    return app.model_copy(update=changes)
