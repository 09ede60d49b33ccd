"""Server-side sessions: the app holds an opaque ``sid`` cookie; Cosmos DB holds the session
under a hash of it (a leaked database yields no usable sid). Idle and absolute expiry are
enforced here, in code: the local Cosmos server does not enforce TTL."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors

from shared.bff.identity import UserProfile
from shared.clients.cosmos import delete_if_present
from shared.clock import instant_text, utc_now
from shared.errors import Unauthorized

_TOUCH_EVERY = dt.timedelta(minutes=1)  # idle expiry moves at most once a minute: fewer writes


def session_key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    key: str
    profile: UserProfile
    absolute_expiry: dt.datetime


class SessionStore:
    def __init__(
        self,
        container: ContainerProxy,
        idle: dt.timedelta,
        absolute: dt.timedelta,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.container = container
        self.idle = idle
        self.absolute = absolute
        self.clock = clock

    def create(self, profile: UserProfile) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        key = session_key(sid)
        self.container.create_item(
            {
                "id": key,
                "profile": profile.__dict__,
                "createdAt": instant_text(now),
                "lastSeenAt": instant_text(now),
                "absoluteExpiresAt": instant_text(now + self.absolute),
                "ttl": int(self.absolute.total_seconds()),  # Cosmos DB clean-up in Azure
            }
        )
        return sid, Session(key, profile, now + self.absolute)

    def resolve(self, sid: str | None) -> Session:
        """The live session of this sid, or 401 (unknown, forged, idle or past its lifetime)."""
        expired = Unauthorized("no valid session: log in again")
        if not sid or len(sid) > 200:
            raise expired
        key = session_key(sid)
        try:
            item: dict[str, Any] = self.container.read_item(key, partition_key=key)
        except cosmos_errors.CosmosResourceNotFoundError:
            raise expired from None
        now = self.clock()
        last_seen = dt.datetime.fromisoformat(item["lastSeenAt"])
        absolute_expiry = dt.datetime.fromisoformat(item["absoluteExpiresAt"])
        if now >= absolute_expiry or now >= last_seen + self.idle:
            self.end(sid)
            raise expired
        if now - last_seen >= _TOUCH_EVERY:
            item["lastSeenAt"] = instant_text(now)
            try:  # conditional: a session ended meanwhile (logout) is never brought back
                self.container.replace_item(
                    key, item, etag=item["_etag"], match_condition=MatchConditions.IfNotModified
                )
            except cosmos_errors.CosmosResourceNotFoundError:
                raise expired from None
            except cosmos_errors.CosmosAccessConditionFailedError:
                pass  # touched by a concurrent request: the idle clock moved anyway
        return Session(key, UserProfile(**item["profile"]), absolute_expiry)

    def end(self, sid: str) -> None:
        key = session_key(sid)
        delete_if_present(self.container, key, key)
