"""Who the app's users are, behind one interface with two implementations: an OpenID Connect
provider (resource-owner password grant + UserInfo) or the built-in directory (users in
Cosmos DB, scrypt hashes, reset tokens delivered through an outbox queue)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import requests
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors
from azure.storage.queue import QueueClient
from pydantic import Field

from shared.bff.passwords import MIN_PASSWORD_LENGTH, dummy_hash, hash_password, verify_password
from shared.clients.cosmos import NoChange, read_or_none, update_item
from shared.clients.transport import http_session
from shared.clock import instant_text, utc_now
from shared.errors import BadRequest, Conflict, DependencyError, Forbidden, Unauthorized
from shared.records import Instant, Record
from shared.tenants import DEFAULT_TENANT

log = logging.getLogger(__name__)

WRONG_CREDENTIALS = "invalid username or password"


@dataclass(frozen=True)
class UserProfile:
    sub: str
    patient_id: str
    name: str | None = None
    email: str | None = None
    username: str | None = None
    tenant: str = DEFAULT_TENANT  # the one the session runs in (chosen at login among ``tenants``)
    tenants: tuple[str, ...] = ()  # the medical centres the identity provider says the user is in
    clinician: bool = False  # a clinician of the tenant (no patient: ``patient_id`` is empty)

    def userinfo(self) -> dict[str, Any]:
        """OIDC UserInfo claims, plus the patient the user maps to."""
        claims: dict[str, Any] = {"sub": self.sub, "patient_id": self.patient_id}
        for key, value in (("name", self.name), ("email", self.email), ("preferred_username", self.username)):
            if value:
                claims[key] = value
        return claims


class UserRecord(Record):
    """A user of the built-in directory: only a password hash and, during a reset, a token
    hash are stored, never either in clear."""

    id: str = Field(description="the user name, lower case")
    tenant_id: str = Field(default=DEFAULT_TENANT, alias="tenantId")
    email: str
    name: str
    patient_id: str = Field(default="", alias="patientId", description="empty for a clinician")
    role: Literal["patient", "clinician"] = "patient"
    sub: str
    password_hash: str = Field(alias="passwordHash")
    created_at: Instant = Field(alias="createdAt")
    reset_token_hash: str | None = Field(default=None, alias="resetTokenHash")
    reset_expires_at: Instant | None = Field(default=None, alias="resetExpiresAt")

    def to_item(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)

    def public(self) -> dict[str, Any]:
        return {"username": self.id, "sub": self.sub, "patientId": self.patient_id or None, "role": self.role}


class IdentityProvider(Protocol):
    def authenticate(self, username: str, password: str) -> UserProfile:
        """The user's profile; ``Unauthorized`` with one generic message otherwise."""

    def request_password_reset(self, email: str) -> None:
        """Starts a reset if the email is known; says nothing either way."""


# Characters a Cosmos DB item id cannot hold: such a user name cannot exist in the directory.
_NOT_IN_ITEM_IDS = frozenset("/\\?#")
MAX_USERNAME_LENGTH = 200


def directory_key(username: str) -> str | None:
    """The directory's item id for a user name, or None when no user can have that name."""
    key = username.strip().lower()
    if not key or len(key) > MAX_USERNAME_LENGTH or any(c in _NOT_IN_ITEM_IDS or not c.isprintable() for c in key):
        return None
    return key


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class DirectoryIdentityProvider:
    def __init__(
        self,
        users: ContainerProxy,
        outbox: QueueClient,
        token_lifetime: dt.timedelta,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.users = users
        self.outbox = outbox
        self.token_lifetime = token_lifetime
        self.clock = clock

    def create_user(
        self,
        username: str,
        password: str,
        *,
        email: str,
        name: str,
        patient_id: str | None,
        tenant_id: str = DEFAULT_TENANT,
        clinician: bool = False,
    ) -> UserRecord:
        """A patient (``patient_id``) or, with ``clinician``, a clinician of the tenant (no patient)."""
        if clinician == bool(patient_id):
            raise BadRequest("a user is a patient (with the patient's id) or a clinician (without one)")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        key = directory_key(username)
        if key is None:
            raise BadRequest(
                f"a user name has 1 to {MAX_USERNAME_LENGTH} printable characters, none of them / \\ ? or #"
            )
        user = UserRecord(
            id=key,
            tenant_id=tenant_id,
            email=email.strip().lower(),
            name=name,
            patient_id=patient_id or "",
            role="clinician" if clinician else "patient",
            sub=f"user-{secrets.token_hex(8)}",
            password_hash=hash_password(password),
            created_at=self.clock(),
        )
        try:
            created = self.users.create_item(user.to_item())
        except cosmos_errors.CosmosResourceExistsError:
            raise Conflict(f"a user named {user.id!r} exists already") from None
        return UserRecord.from_item(created)

    def _user(self, username: str) -> UserRecord | None:
        key = directory_key(username)
        if key is None:
            return None
        item = read_or_none(self.users, key, key)
        return UserRecord.from_item(item) if item is not None else None

    def authenticate(self, username: str, password: str) -> UserProfile:
        user = self._user(username)
        valid = verify_password(password, user.password_hash if user else dummy_hash())
        if user is None or not valid:
            raise Unauthorized(WRONG_CREDENTIALS)
        tenants = (user.tenant_id,) if user.tenant_id != DEFAULT_TENANT else ()
        return UserProfile(
            sub=user.sub, patient_id=user.patient_id, name=user.name, email=user.email, username=user.id,
            tenants=tenants, clinician=user.role == "clinician",
        )  # fmt: skip

    def request_password_reset(self, email: str) -> None:
        matches = list(
            self.users.query_items(
                "SELECT * FROM c WHERE c.email = @email",
                parameters=[{"name": "@email", "value": email.strip().lower()}],
                enable_cross_partition_query=True,
            )
        )
        if len(matches) != 1:
            return
        user = UserRecord.from_item(matches[0])
        token = secrets.token_urlsafe(32)
        expires = self.clock() + self.token_lifetime

        def set_token(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise NoChange  # deleted meanwhile: nothing to reset
            # The latest request's token wins.
            changed = {"reset_token_hash": _digest(token), "reset_expires_at": expires}
            return UserRecord.from_item(current).model_copy(update=changed).to_item()

        if update_item(self.users, user.id, user.id, set_token) is None:
            return
        message = {"email": user.email, "username": user.id, "token": token, "expiresAt": instant_text(expires)}
        self.outbox.send_message(json.dumps(message).encode())

    def confirm_password_reset(self, token: str, new_password: str) -> None:
        """Single use: the token is gone once the password is set."""
        if len(new_password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        matches = list(
            self.users.query_items(
                "SELECT * FROM c WHERE c.resetTokenHash = @hash",
                parameters=[{"name": "@hash", "value": _digest(token)}],
                enable_cross_partition_query=True,
            )
        )
        invalid = BadRequest("the reset token is invalid or has expired")
        if len(matches) != 1:
            raise invalid
        etag = matches[0]["_etag"]
        user = UserRecord.from_item(matches[0])
        if user.reset_expires_at is None or user.reset_expires_at < self.clock():
            raise invalid
        changed = {"password_hash": hash_password(new_password), "reset_token_hash": None, "reset_expires_at": None}
        item = user.model_copy(update=changed).to_item()
        try:
            self.users.replace_item(user.id, item, etag=etag, match_condition=MatchConditions.IfNotModified)
        except cosmos_errors.CosmosAccessConditionFailedError:
            raise invalid from None  # used concurrently: one use only


class OidcIdentityProvider:
    """Resource-owner password grant at the token endpoint, profile from UserInfo."""

    def __init__(
        self,
        token_url: str,
        userinfo_url: str,
        *,
        reset_url: str | None,
        client_id: str | None,
        client_secret: str | None,
        patient_claim: str,
        timeout_s: float = 10.0,
    ) -> None:
        self.token_url = token_url
        self.userinfo_url = userinfo_url
        self.reset_url = reset_url
        self.client = (client_id, client_secret or "") if client_id else None
        self.patient_claim = patient_claim
        self.timeout_s = timeout_s
        self.http = http_session()

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.post(url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise DependencyError("the identity provider is unreachable") from exc

    def authenticate(self, username: str, password: str) -> UserProfile:
        response = self._post(
            self.token_url,
            data={"grant_type": "password", "username": username, "password": password, "scope": "openid profile"},
            auth=self.client,
        )
        if response.status_code in (400, 401):  # invalid_grant and friends (RFC 6749 5.2)
            raise Unauthorized(WRONG_CREDENTIALS)
        if response.status_code != 200:
            raise DependencyError(f"the identity provider answered HTTP {response.status_code}")
        token = response.json().get("access_token")
        try:
            info = self.http.get(
                self.userinfo_url, headers={"Authorization": f"Bearer {token}"}, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise DependencyError("the identity provider is unreachable") from exc
        if info.status_code != 200:
            raise DependencyError(f"the identity provider's UserInfo answered HTTP {info.status_code}")
        claims = info.json()
        patient_id = claims.get(self.patient_claim)
        if not patient_id:
            raise Forbidden("this account is not linked to a patient")
        return UserProfile(
            sub=str(claims["sub"]),
            patient_id=str(patient_id),
            name=claims.get("name"),
            email=claims.get("email"),
            username=claims.get("preferred_username"),
            tenants=_claimed_tenants(claims.get("tenants")),
        )

    def request_password_reset(self, email: str) -> None:
        if not self.reset_url:
            log.warning("password reset requested but OIDC_PASSWORD_RESET_URL is not set")
            return
        response = self._post(self.reset_url, json={"email": email})
        if response.status_code >= 500:
            raise DependencyError(f"the identity provider's reset call answered HTTP {response.status_code}")


def _claimed_tenants(claim: Any) -> tuple[str, ...]:
    """UserInfo's ``tenants`` in the GipoNext shape, ``[{"id", "name"}]``; absent: none claimed."""
    if claim is None:
        return ()
    if not isinstance(claim, list) or not all(isinstance(t, dict) and isinstance(t.get("id"), str) for t in claim):
        raise DependencyError("the identity provider's UserInfo holds a tenants claim of an unknown shape")
    return tuple(str(t["id"]) for t in claim)
