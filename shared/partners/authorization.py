"""The hub's OAuth 2.0 authorization server for partner apps, on Authlib's server components:
the authorization code grant with PKCE (RFC 6749, RFC 7636), refresh tokens that rotate on
every use (a rotated one used again revokes its whole family), and revocation (RFC 7009).

Nothing is stored in plaintext: codes and tokens are kept in Cosmos DB under the SHA-256 digest
of their value. Codes are single use and live ``CODE_LIFETIME_S``; access tokens live
``ACCESS_LIFETIME_S``. Every client must send a PKCE challenge with S256 (a downgrade to
``plain`` or a missing challenge is refused), and redirect URIs are matched exactly. An app acts
only while approved and only for people of the tenants that enabled it."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    JsonRequest,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos import exceptions as cosmos_errors
from requests.structures import CaseInsensitiveDict

from shared.clients.cosmos import read_or_none
from shared.consent.models import PARTNER_SOURCE
from shared.consent.registry import ConsentStore
from shared.errors import NotFound
from shared.partners.records import AUTHORIZATION_CODE, DEVICE_CODE, REFRESH_TOKEN, PartnerApp
from shared.partners.registry import AppRegistry
from shared.partners.scopes import METRIC_SCOPES, OFFLINE_ACCESS, SCOPES

CODE_LIFETIME_S = 60
ACCESS_LIFETIME_S = 900
REFRESH_LIFETIME_S = 30 * 86400


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class PartnerUser:
    """Who consented: a patient (for themselves) or a clinician (for their tenant's patients)."""

    sub: str
    tenant: str
    patient_id: str | None = None
    name: str | None = None

    def item(self) -> dict[str, Any]:
        return {"sub": self.sub, "tenant": self.tenant, "patientId": self.patient_id, "name": self.name}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PartnerUser:
        return cls(str(item["sub"]), str(item["tenant"]), item.get("patientId"), item.get("name"))


@dataclass
class OAuthCall:
    """An HTTP request as the authorization server reads it."""

    method: str
    url: str
    form: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OAuthAnswer:
    status: int
    body: str
    headers: dict[str, str]


class _HubRequest(OAuth2Request):  # type: ignore[misc]
    """An ``OAuthCall`` as Authlib reads it: the query's and the form's parameters."""

    def __init__(self, call: OAuthCall) -> None:
        super().__init__(call.method, call.url, headers=CaseInsensitiveDict(call.headers))
        self._args = {key: values[-1] for key, values in parse_qs(urlsplit(call.url).query).items()}
        self._form = dict(call.form)
        self.payload = BasicOAuth2Payload({**self._args, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, app: PartnerApp, registry: AppRegistry) -> None:
        self.app = app
        self.registry = registry

    def get_client_id(self) -> str:
        return self.app.id

    def get_default_redirect_uri(self) -> str | None:
        return self.app.redirect_uris[0] if len(self.app.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        asked = scope.split() if scope else []
        return " ".join(s for s in asked if s in self.app.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris  # exact: no prefix, no pattern

    def check_client_secret(self, client_secret: str) -> bool:
        return self.registry.authenticate(self.app.id, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.app.confidential:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and AUTHORIZATION_CODE in self.app.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.app.grant_types


class _Code:
    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.code_challenge = item.get("codeChallenge")
        self.code_challenge_method = item.get("codeChallengeMethod")

    def get_redirect_uri(self) -> str:
        return str(self.item["redirectUri"])

    def get_scope(self) -> str:
        return str(self.item["scope"])

    def get_nonce(self) -> None:
        return None

    def get_auth_time(self) -> int:
        return int(self.item["issuedAt"])


class _Token:
    def __init__(self, item: dict[str, Any], client: _Client | None) -> None:
        self.item = item
        self.client = client

    def check_client(self, client: _Client) -> bool:
        return bool(self.item["clientId"] == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.item["scope"])

    def get_expires_in(self) -> int:
        return int(self.item["expiresAt"] - self.item["issuedAt"])

    def is_expired(self) -> bool:
        return bool(self.item["expiresAt"] <= time.time())

    def is_revoked(self) -> bool:
        return bool(self.item.get("revoked"))

    def get_user(self) -> PartnerUser:
        return PartnerUser.from_item(self.item["user"])

    def get_client(self) -> _Client | None:
        return self.client


class GrantStore:
    """Codes and tokens under the digest of their value (Cosmos DB, partition key ``/id``)."""

    def __init__(self, container: ContainerProxy, clock: Callable[[], float] = time.time) -> None:
        self.container = container
        self.clock = clock

    def put(self, kind: str, value: str, lifetime_s: int, **fields: Any) -> dict[str, Any]:
        now = self.clock()
        item = {"id": f"{kind}:{digest(value)}", "kind": kind, "issuedAt": now, "expiresAt": now + lifetime_s,
                "ttl": lifetime_s + 86400, **fields}  # fmt: skip
        self.container.upsert_item(item)
        return item

    def get(self, kind: str, value: str) -> dict[str, Any] | None:
        key = f"{kind}:{digest(value)}"
        return read_or_none(self.container, key, key)

    def take(self, kind: str, value: str) -> dict[str, Any] | None:
        """A single-use item (a code, a consent page's ticket), deleted as it is read: of two
        concurrent uses only one gets it. None when unknown, used or expired."""
        item = self.get(kind, value)
        if item is None:
            return None
        try:
            self.container.delete_item(
                item["id"], partition_key=item["id"], etag=item["_etag"], match_condition=MatchConditions.IfNotModified
            )
        except (cosmos_errors.CosmosResourceNotFoundError, cosmos_errors.CosmosAccessConditionFailedError):
            return None
        return item if item["expiresAt"] > self.clock() else None

    def mark_revoked(self, item: dict[str, Any]) -> None:
        self.container.upsert_item({k: v for k, v in {**item, "revoked": True}.items() if not k.startswith("_")})

    def revoke_grant_of(self, client_id: str, tenant: str, patient_id: str) -> int:
        """Every live token an app holds for one patient of one tenant (the consent ended)."""
        query = (
            "SELECT * FROM c WHERE c.clientId = @client AND c.user.tenant = @tenant AND c.user.patientId = @patient"
            " AND (c.kind = 'access' OR c.kind = 'refresh')"
        )
        parameters: list[dict[str, object]] = [
            {"name": "@client", "value": client_id},
            {"name": "@tenant", "value": tenant},
            {"name": "@patient", "value": patient_id},
        ]
        items = list(self.container.query_items(query, parameters=parameters, enable_cross_partition_query=True))
        for item in items:
            if not item.get("revoked"):
                self.mark_revoked(item)
        return len(items)

    def revoke_family(self, family: str) -> int:
        query = "SELECT * FROM c WHERE c.family = @family"
        items = list(self.container.query_items(query, parameters=[{"name": "@family", "value": family}],
                                                enable_cross_partition_query=True))  # fmt: skip
        for item in items:
            if not item.get("revoked"):
                self.mark_revoked(item)
        return len(items)


class _S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE for every client, with S256 only: no challenge, or ``plain``, is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]
    server: PartnerAuthorizationServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.server.store.put(
            "code",
            code,
            CODE_LIFETIME_S,
            clientId=request.client.get_client_id(),
            redirectUri=request.payload.redirect_uri,
            scope=request.payload.scope,
            user=request.user.item(),
            codeChallenge=data.get("code_challenge"),
            codeChallengeMethod=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        item = self.server.store.take("code", code)  # single use, whatever follows
        if item is None or item["clientId"] != client.get_client_id():
            return None
        return _Code(item)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        return None  # taken (deleted) when it was read

    def authenticate_user(self, authorization_code: _Code) -> PartnerUser:
        return PartnerUser.from_item(authorization_code.item["user"])


class _RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation
    server: PartnerAuthorizationServer

    def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
        store = self.server.store
        item = store.get("refresh", refresh_token)
        if item is None:
            return None
        if item.get("revoked"):  # a rotated token used again: stolen, or replayed; end the family
            store.revoke_family(str(item["family"]))
            return None
        if item["expiresAt"] <= store.clock():
            return None
        return _Token(item, None)

    def authenticate_user(self, refresh_token: _Token) -> PartnerUser:
        return refresh_token.get_user()

    def revoke_old_credential(self, refresh_token: _Token) -> None:
        self.server.store.mark_revoked(refresh_token.item)


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]
    server: PartnerAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        hinted_access = token_type_hint == "access_token"  # noqa: S105 - RFC 7009's hint, not a secret
        kinds = ("access", "refresh") if hinted_access else ("refresh", "access")
        for kind in kinds:
            item = self.server.store.get(kind, token_string)
            if item is not None:
                return _Token(item, None)
        return None

    def revoke_token(self, token: _Token, request: OAuth2Request) -> None:
        """The app's whole grant ends, and with it the patient's consent to the app."""
        self.server.store.revoke_family(str(token.item["family"]))
        self.server.end_consent(token.item["clientId"], token.get_user(), "partner-revocation")


USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alikes
DEVICE_LIFETIME_S = 600
DEVICE_INTERVAL_S = 5


def user_code_key(user_code: str) -> str:
    """The code as typed: case, spaces and dashes do not matter."""
    return "".join(c for c in user_code.upper() if c.isalnum())


class _DeviceCredential:
    def __init__(self, item: dict[str, Any], granted: dict[str, Any] | None) -> None:
        self.item = item
        self.granted = granted

    def get_client_id(self) -> str:
        return str(self.item["clientId"])

    def get_scope(self) -> str:
        if self.granted is not None and self.granted.get("status") == "approved":
            return str(self.granted["grantedScope"])
        return str(self.item["scope"])

    def get_user_code(self) -> str:
        return str(self.item["userCode"])

    def is_expired(self) -> bool:
        return bool(self.item["expiresAt"] <= time.time())


class _DeviceCodeGrant(DeviceCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none", "client_secret_basic", "client_secret_post"]
    server: PartnerAuthorizationServer

    def query_device_credential(self, device_code: str) -> _DeviceCredential | None:
        store = self.server.store
        item = store.get("device", device_code)
        if item is None:
            return None
        granted = store.get("usercode", item["userCode"])
        if granted is not None and granted.get("status") in ("approved", "denied"):
            item = store.take("device", device_code)  # decided: the device code is spent with this poll
            if item is None:
                return None
        return _DeviceCredential(item, granted)

    def query_user_grant(self, user_code: str) -> tuple[PartnerUser | None, bool] | None:
        granted = self.server.store.get("usercode", user_code)
        if granted is None or granted.get("status") == "pending":
            return None
        if granted["status"] == "denied":
            return None, False
        return PartnerUser.from_item(granted["user"]), True

    def should_slow_down(self, credential: _DeviceCredential) -> bool:
        """Polled again before the interval: slow down (the interval is the device's to keep)."""
        now = time.time()
        last = float(credential.item.get("lastPoll") or 0)
        self.server.store.container.upsert_item(
            {k: v for k, v in {**credential.item, "lastPoll": now}.items() if not k.startswith("_")}
        )
        return now - last < DEVICE_INTERVAL_S


class _DeviceAuthorization(DeviceAuthorizationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["none", "client_secret_basic", "client_secret_post"]
    EXPIRES_IN = DEVICE_LIFETIME_S
    INTERVAL = DEVICE_INTERVAL_S
    server: PartnerAuthorizationServer

    def create_endpoint_response(self, request: OAuth2Request) -> tuple[int, dict[str, Any], list[Any]]:
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE):
            raise UnauthorizedClientError("this app does not use the device authorization grant")
        scope = request.payload.scope or ""
        self.server.validate_requested_scope(scope)
        asked = client.get_allowed_scope(scope)
        if not asked:
            raise InvalidScopeError("the app asks for no scope it registered")
        device_code = secrets.token_urlsafe(32)
        letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
        user_code = f"{letters[:4]}-{letters[4:]}"
        base = request.uri.split("/api/oauth2/", 1)[0]
        verification_uri = f"{base}/api/oauth2/device"
        store = self.server.store
        key = user_code_key(user_code)
        store.put("device", device_code, DEVICE_LIFETIME_S, clientId=client.get_client_id(), scope=asked, userCode=key)
        store.put("usercode", key, DEVICE_LIFETIME_S, clientId=client.get_client_id(), scope=asked, status="pending")
        data = {
            "device_code": device_code, "user_code": user_code, "verification_uri": verification_uri,
            "verification_uri_complete": f"{verification_uri}?user_code={user_code}", "expires_in": DEVICE_LIFETIME_S,
            "interval": DEVICE_INTERVAL_S,
        }  # fmt: skip
        return 200, data, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


class PartnerAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, apps: AppRegistry, store: GrantStore, consents: ConsentStore) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.apps = apps
        self.store = store
        self.consents = consents
        self.register_grant(_AuthorizationCodeGrant, [_S256Required(required=True)])
        self.register_grant(_RefreshTokenGrant)
        self.register_grant(_DeviceCodeGrant)
        self.register_endpoint(_Revocation)
        self.register_endpoint(_DeviceAuthorization)
        self.register_token_generator("default", self._generate_token)

    # -- Authlib's framework hooks -------------------------------------------------------------
    def query_client(self, client_id: str) -> _Client | None:
        try:
            app = self.apps.get(client_id)
        except NotFound:
            return None
        return _Client(app, self.apps) if app.status == "approved" else None

    def create_oauth2_request(self, request: OAuthCall) -> OAuth2Request:
        return _HubRequest(request)

    def create_json_request(self, request: OAuthCall) -> JsonRequest:
        return JsonRequest(request.method, request.url, headers=request.headers)

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthAnswer:
        import json

        text = body if isinstance(body, str) else json.dumps(body)
        return OAuthAnswer(status, text, dict(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _generate_token(self, grant_type: str, client: _Client, user: PartnerUser | None = None,
                        scope: str | None = None, expires_in: int | None = None,
                        include_refresh_token: bool = True) -> dict[str, Any]:  # fmt: skip
        token: dict[str, Any] = {
            "token_type": "Bearer", "access_token": secrets.token_urlsafe(32), "expires_in": ACCESS_LIFETIME_S,
            "scope": scope or "",
        }  # fmt: skip
        offline = OFFLINE_ACCESS in (scope or "").split() and client.check_grant_type(REFRESH_TOKEN)
        if include_refresh_token and offline:
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        previous = getattr(request, "refresh_token", None)
        family = str(previous.item["family"]) if previous is not None else secrets.token_hex(16)
        fields = {"clientId": request.client.get_client_id(), "scope": token.get("scope", ""),
                  "user": request.user.item(), "family": family}  # fmt: skip
        self.store.put("access", token["access_token"], ACCESS_LIFETIME_S, **fields)
        if "refresh_token" in token:
            self.store.put("refresh", token["refresh_token"], REFRESH_LIFETIME_S, **fields)

    # -- what the hub's pages and endpoints call -----------------------------------------------
    def describe(self, call: OAuthCall) -> tuple[PartnerApp, str, list[str]]:
        """(the app, its redirect URI, the scopes it asks for among those it registered) of a
        valid authorization request; Authlib's OAuth2Error (with its description) otherwise."""
        values = parse_qs(urlsplit(call.url).query, keep_blank_values=True)
        if any(not all(" " <= c <= "~" for c in value) for vs in values.values() for value in vs):
            raise InvalidRequestError("the request's parameters hold characters OAuth does not allow")  # RFC 6749 A
        try:
            grant = self.get_consent_grant(request=call, end_user=None)
        except ValueError:  # Authlib refusing to describe what it was given
            raise InvalidRequestError("the request's parameters are not valid") from None
        app: PartnerApp = grant.client.app
        asked = [scope for scope in (grant.request.payload.scope or "").split() if scope in app.scopes]
        if not asked:
            raise InvalidRequestError("the app asks for no scope it registered")
        return app, str(grant.redirect_uri), asked

    def approve(self, call: OAuthCall, user: PartnerUser | None, scopes: list[str] | None = None) -> OAuthAnswer:
        """The user's answer on the consent page (None: denied), as the redirect back to the
        app. ``scopes``: the ones the user left ticked (a subset of those asked)."""
        grant = self.get_consent_grant(request=call, end_user=user)
        if user is not None:
            if not self.apps.usable_in(grant.client.get_client_id(), user.tenant):
                raise AccessDeniedError("this app is not enabled for your medical centre",
                                        redirect_uri=grant.redirect_uri)  # fmt: skip
            if scopes is not None:
                asked = grant.request.payload.scope.split()
                grant.request.payload.data["scope"] = " ".join(s for s in asked if s in scopes)
        answer: OAuthAnswer = self.create_authorization_response(request=grant.request, grant_user=user, grant=grant)
        if user is not None and answer.status == 302 and user.patient_id:
            self._record_consent(grant.client.get_client_id(), user, grant.request.payload.scope)
        return answer

    def _record_consent(self, client_id: str, user: PartnerUser, scope: str) -> None:
        """The patient's consent to the app, scope by scope: the worker enforces it like any other."""
        from shared.consent.models import ConsentGrant

        kinds = sorted(METRIC_SCOPES[s].value for s in scope.split() if s in METRIC_SCOPES)
        if not kinds or not user.patient_id:
            return
        grant = ConsentGrant(patient_id=user.patient_id, source=client_id, scopes=kinds, attestation="patient")
        self.consents.for_tenant(user.tenant).grant(grant, recorded_by=f"partner-oauth:{user.sub}")

    def end_consent(self, client_id: str, user: PartnerUser, by: str) -> None:
        if not user.patient_id:
            return
        consents = self.consents.for_tenant(user.tenant)
        record = consents.find(user.patient_id, client_id)
        if record is not None and record.active:
            consents.revoke(record.id, by)

    def consent_changed(self, tenant: str, patient_id: str, source: str) -> None:
        """A partner app's consent revoked (by the patient, a clinic, the app's own revocation):
        its tokens for that patient end with it."""
        if not PARTNER_SOURCE.fullmatch(source):
            return
        record = self.consents.for_tenant(tenant).find(patient_id, source)
        if record is None or not record.active:
            self.store.revoke_grant_of(source, tenant, patient_id)

    def token(self, call: OAuthCall) -> OAuthAnswer:
        answer: OAuthAnswer = self.create_token_response(call)
        return answer

    def revoke(self, call: OAuthCall) -> OAuthAnswer:
        answer: OAuthAnswer = self.create_endpoint_response(_Revocation.ENDPOINT_NAME, call)
        return answer

    def device_authorization(self, call: OAuthCall) -> OAuthAnswer:
        answer: OAuthAnswer = self.create_endpoint_response(_DeviceAuthorization.ENDPOINT_NAME, call)
        return answer

    def pending_device(self, user_code: str) -> tuple[PartnerApp, list[str]] | None:
        """(the app, the scopes it asks for) of a user code still waiting for its user, or None."""
        item = self.store.get("usercode", user_code_key(user_code))
        if item is None or item.get("status") != "pending" or item["expiresAt"] <= self.store.clock():
            return None
        try:
            app = self.apps.get(str(item["clientId"]))
        except NotFound:
            return None
        return (app, str(item["scope"]).split()) if app.status == "approved" else None

    def decide_device(self, user_code: str, user: PartnerUser, scopes: list[str] | None) -> bool:
        """The user's answer on the verification page (``scopes`` None: denied). False when the
        code is no longer pending (decided, expired) or the app is not enabled for the user."""
        key = user_code_key(user_code)
        item = self.store.get("usercode", key)
        if item is None or item.get("status") != "pending" or item["expiresAt"] <= self.store.clock():
            return False
        client_id = str(item["clientId"])
        if scopes is not None and not self.apps.usable_in(client_id, user.tenant):
            return False
        granted = " ".join(s for s in str(item["scope"]).split() if scopes is not None and s in scopes)
        decided = {k: v for k, v in item.items() if not k.startswith("_")}
        status = "approved" if scopes is not None else "denied"
        decided |= {"status": status, "user": user.item(), "grantedScope": granted}
        try:
            self.store.container.replace_item(
                item["id"], decided, etag=item["_etag"], match_condition=MatchConditions.IfNotModified
            )
        except cosmos_errors.CosmosAccessConditionFailedError:
            return False  # decided meanwhile, elsewhere
        if scopes is not None:
            self._record_consent(client_id, user, granted)
        return True

    def metadata(self, issuer: str) -> dict[str, Any]:
        """RFC 8414 metadata, validated by Authlib's model of it."""
        from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

        endpoint = f"{issuer}/api/oauth2"
        metadata = AuthorizationServerMetadata({
            "issuer": issuer,
            "authorization_endpoint": f"{endpoint}/authorize",
            "token_endpoint": f"{endpoint}/token",
            "revocation_endpoint": f"{endpoint}/revoke",
            "device_authorization_endpoint": f"{endpoint}/device_authorization",
            "userinfo_endpoint": f"{endpoint}/userinfo",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        })  # fmt: skip
        metadata.validate()
        return dict(metadata)

    def bearer(self, access_token: str) -> tuple[PartnerUser, str, set[str]] | None:
        """(user, client_id, scopes) of a live access token of a still-approved app, or None."""
        item = self.store.get("access", access_token)
        if item is None or item.get("revoked") or item["expiresAt"] <= self.store.clock():
            return None
        if self.query_client(str(item["clientId"])) is None:
            return None
        return PartnerUser.from_item(item["user"]), str(item["clientId"]), set(str(item["scope"]).split())

