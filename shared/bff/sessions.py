"""Server-side sessions: the app holds an opaque ``sid`` cookie; Cosmos DB holds the session
under a hash of it (a leaked database yields no usable sid). Idle and absolute expiry are
enforced here, in code: the local Cosmos server does not enforce TTL."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors
from pydantic import Field

from shared.bff.identity import UserProfile
from shared.clients.cosmos import delete_if_present, read_or_none
from shared.clock import utc_now
from shared.errors import Unauthorized
from shared.records import Instant, Record

_TOUCH_EVERY = dt.timedelta(minutes=1)  # idle expiry moves at most once a minute: fewer writes


def session_key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionRecord(Record):
    """Stored under the hash of the session id: the id itself exists only in the cookie."""

    id: str
    profile: UserProfile
    created_at: Instant = Field(alias="createdAt")
    last_seen_at: Instant = Field(alias="lastSeenAt")
    absolute_expires_at: Instant = Field(alias="absoluteExpiresAt")
    ttl: int = Field(description="Cosmos DB removes the item after this many seconds")


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
        record = SessionRecord(
            id=key,
            profile=profile,
            created_at=now,
            last_seen_at=now,
            absolute_expires_at=now + self.absolute,
            ttl=int(self.absolute.total_seconds()),
        )
        self.container.create_item(record.to_item())
        return sid, Session(key, profile, now + self.absolute)

    def resolve(self, sid: str | None) -> Session:
        """The live session of this sid, or 401 (unknown, forged, idle or past its lifetime)."""
        expired = Unauthorized("no valid session: log in again")
        if not sid or len(sid) > 200:
            raise expired
        key = session_key(sid)
        item = read_or_none(self.container, key, key)
        if item is None:
            raise expired
        record = SessionRecord.from_item(item)
        now = self.clock()
        if now >= record.absolute_expires_at or now >= record.last_seen_at + self.idle:
            self.end(sid)
            raise expired
        if now - record.last_seen_at >= _TOUCH_EVERY:
            touched = record.model_copy(update={"last_seen_at": now}).to_item()
            try:  # conditional: a session ended meanwhile (logout) is never brought back
                self.container.replace_item(
                    key, touched, etag=item["_etag"], match_condition=MatchConditions.IfNotModified
                )
            except cosmos_errors.CosmosResourceNotFoundError:
                raise expired from None
            except cosmos_errors.CosmosAccessConditionFailedError:
                pass  # touched by a concurrent request: the idle clock moved anyway
        return Session(key, record.profile, record.absolute_expires_at)

    def end(self, sid: str) -> None:
        key = session_key(sid)
        delete_if_present(self.container, key, key)
