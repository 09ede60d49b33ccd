"""The OAuth ``state`` of the connect flow: signed (HMAC), expiring and single use. The nonce is
recorded when the state is issued and consumed by the callback: a replay finds nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable

from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.errors import BadRequest
from shared.tenants import DEFAULT_TENANT

STATE_LIFETIME_S = 600


class StateSigner:
    def __init__(self, key: bytes, container: ContainerProxy, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.container = container
        self.clock = clock

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def issue(self, patient_id: str, tenant: str = DEFAULT_TENANT) -> str:
        nonce = secrets.token_urlsafe(16)
        expires = int(self.clock()) + STATE_LIFETIME_S
        claims = {"n": nonce, "p": patient_id, "t": tenant, "e": expires}
        payload = json.dumps(claims, separators=(",", ":")).encode()
        self.container.create_item({"id": f"state-{nonce}", "expires": expires, "ttl": STATE_LIFETIME_S})
        return f"{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{self._mac(payload)}"

    def consume(self, state: str) -> tuple[str, str]:
        """(patient, tenant) the state was issued for; 400 for a forged, expired or replayed state."""
        invalid = BadRequest("the state parameter is invalid, expired or already used")
        try:
            encoded, mac = state.split(".", 1)
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            claims = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid from None
        if not hmac.compare_digest(mac, self._mac(payload)) or int(claims.get("e", 0)) < self.clock():
            raise invalid
        try:
            self.container.delete_item(f"state-{claims['n']}", partition_key=f"state-{claims['n']}")
        except cosmos_errors.CosmosResourceNotFoundError:
            raise invalid from None
        return str(claims["p"]), str(claims.get("t") or DEFAULT_TENANT)
