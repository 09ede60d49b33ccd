"""Withings public API client. Every answer is HTTP 200 with a ``status`` in the JSON body: this
client reads it on every call and raises a typed error. OAuth token exchange and refresh go
through Authlib, with compliance hooks that unwrap Withings' envelope."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from shared.clients.transport import http_session
from shared.errors import DependencyError, HubError

if TYPE_CHECKING:
    from authlib.integrations.requests_client import OAuth2Session

AUTH_STATUSES = frozenset({100, 101, 102, 200, 401})
BAD_REQUEST_STATUSES = frozenset(range(201, 214)) | {293}
RATE_LIMITED = 601


class WithingsError(HubError):
    """An answer with a non-zero body status."""

    status, code = 502, "withings_error"

    def __init__(self, message: str, *, withings_status: int) -> None:
        super().__init__(message)
        self.withings_status = withings_status


class WithingsAuthError(WithingsError):
    """The token or grant is not (or no longer) valid: the user must consent again."""


class WithingsRateLimited(WithingsError):
    status, code = 503, "withings_rate_limited"


class WithingsBadRequest(WithingsError):
    status, code = 400, "withings_bad_request"


class WithingsServerError(WithingsError):
    status, code = 503, "withings_unavailable"


def error_for(status: int, what: str, error: str | None = None) -> WithingsError:
    text = f"Withings {what}: status {status}" + (f" ({error})" if error else "")
    lowered = (error or "").lower()
    if status in AUTH_STATUSES or (status == 503 and ("refresh_token" in lowered or "invalid code" in lowered)):
        return WithingsAuthError(text, withings_status=status)
    if status == RATE_LIMITED:
        return WithingsRateLimited(text, withings_status=status)
    if status in BAD_REQUEST_STATUSES:
        return WithingsBadRequest(text, withings_status=status)
    return WithingsServerError(text, withings_status=status)


@dataclass(frozen=True)
class Tokens:
    userid: str
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds
    scope: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Tokens:
        return cls(**json.loads(text))

    def expired(self, now: float, margin_s: float = 120) -> bool:
        return now >= self.expires_at - margin_s


def envelope_body(response: requests.Response, what: str) -> dict[str, Any]:
    """The ``body`` of a successful ``{"status": 0, "body": {...}}`` answer; a typed error else."""
    try:
        envelope = response.json()
    except ValueError:
        raise WithingsServerError(f"Withings {what}: not JSON", withings_status=-1) from None
    status = envelope.get("status") if isinstance(envelope, dict) else None
    if status != 0:
        raise error_for(int(status) if isinstance(status, int) else -1, what, envelope.get("error"))
    body: dict[str, Any] = envelope.get("body") or {}
    return body


def _unwrap(what: str) -> Callable[[requests.Response], requests.Response]:
    """Authlib hook: Withings wraps the token answer in its envelope."""

    def hook(response: requests.Response) -> requests.Response:
        response._content = json.dumps(envelope_body(response, what)).encode()
        return response

    return hook


Budget = Callable[[], None]  # blocks or raises until one more Withings call is allowed


class WithingsClient:
    def __init__(
        self,
        api_url: str,
        client_id: str,
        client_secret: str,
        *,
        budget: Budget | None = None,
        timeout_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.budget = budget or (lambda: None)
        self.timeout_s = timeout_s
        self.clock = clock
        self.http = http_session()

    # -- OAuth --------------------------------------------------------------------------------
    def _oauth(self) -> OAuth2Session:
        # Imported here: Authlib costs ~90 ms to import, and only token calls need it (not the
        # cold start of every function).
        from authlib.integrations.requests_client import OAuth2Session

        session = OAuth2Session(
            self.client_id,
            self.client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method's name, not a secret
        )
        session.register_compliance_hook("access_token_response", _unwrap("token exchange"))
        session.register_compliance_hook("refresh_token_response", _unwrap("token refresh"))
        return session

    def _tokens(self, answer: dict[str, Any]) -> Tokens:
        return Tokens(
            userid=str(answer["userid"]),
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            expires_at=self.clock() + float(answer.get("expires_in", 10800)),
            scope=str(answer.get("scope", "")),
        )

    def _token_request(self, grant: Callable[..., Any], **params: Any) -> Tokens:
        """An Authlib grant call at Withings' token endpoint (``action=requesttoken``)."""
        self.budget()
        try:
            answer = grant(f"{self.api_url}/v2/oauth2", action="requesttoken", timeout=self.timeout_s, **params)
        except requests.RequestException as exc:
            raise DependencyError("Withings is unreachable") from exc
        return self._tokens(dict(answer))

    def exchange_code(self, code: str, redirect_uri: str) -> Tokens:
        oauth = self._oauth()
        return self._token_request(
            oauth.fetch_token, grant_type="authorization_code", code=code, redirect_uri=redirect_uri
        )

    def refresh(self, refresh_token: str) -> Tokens:
        return self._token_request(self._oauth().refresh_token, refresh_token=refresh_token)

    # -- data and notify ------------------------------------------------------------------------
    def call(self, path: str, action: str, token: str, **params: Any) -> tuple[str, dict[str, Any]]:
        """(the answer's text, its body); the text is what the pipeline archives and parses."""
        self.budget()
        data = {"action": action, **{k: v for k, v in params.items() if v is not None}}
        try:
            response = self.http.post(
                f"{self.api_url}/{path.lstrip('/')}",
                data=data,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise DependencyError("Withings is unreachable") from exc
        if response.status_code >= 500:
            raise WithingsServerError(f"Withings {action}: HTTP {response.status_code}", withings_status=-1)
        return response.text, envelope_body(response, action)

    def subscribe(self, token: str, callback_url: str, appli: int) -> None:
        self.call("notify", "subscribe", token, callbackurl=callback_url, appli=appli, comment="iomt-hub")

    def revoke(self, token: str, callback_url: str, appli: int) -> None:
        self.call("notify", "revoke", token, callbackurl=callback_url, appli=appli)

    def subscriptions(self, token: str) -> list[dict[str, Any]]:
        _, body = self.call("notify", "list", token)
        profiles: list[dict[str, Any]] = body.get("profiles", [])
        return profiles
