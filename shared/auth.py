"""Caller authentication. Device webhooks: shared keys, stored only as SHA-256 digests and
compared in constant time against every configured digest (two at once during a rotation).
Admin endpoints: Entra ID (OIDC) bearer tokens carrying an app role."""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ConfigurationError, DependencyError, Forbidden, Unauthorized

if TYPE_CHECKING:
    import jwt

    from shared.settings import Settings


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def require_api_key(presented: str | None, digests: tuple[str, ...], header: str) -> None:
    if not digests:
        raise ConfigurationError(f"no API key is configured for this endpoint ({header})")
    if not presented:
        raise Unauthorized(f"the {header} header is missing", challenge=f'ApiKey header="{header}"')
    candidate = key_digest(presented)
    matched = False
    for digest in digests:  # no early exit: the time taken does not depend on which key matched
        matched |= hmac.compare_digest(candidate, digest)
    if not matched:
        raise Unauthorized(f"the {header} header does not hold a valid key", challenge=f'ApiKey header="{header}"')


@dataclass(frozen=True)
class Principal:
    """Who called an admin endpoint: the token's object id (a user or a daemon app)."""

    subject: str
    name: str | None = None
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # Entra group object ids (the token's groups claim)

    @property
    def member_keys(self) -> tuple[str, ...]:
        """What a tenant membership may name: this principal, or any of its groups."""
        return (f"oid:{self.subject}", *(f"group:{group}" for group in self.groups))


class BearerTokenValidator:
    """Validates Entra ID (or any OIDC provider's) RS256 access tokens: signature against the
    issuer's published keys (discovered, then cached), ``iss``, ``aud``, ``exp``/``nbf``, and an
    app role. 401 for a missing or invalid token, 403 for a valid token without the role."""

    def __init__(
        self, issuers: tuple[str, ...], audiences: tuple[str, ...], role: str, *, timeout_s: float = 10.0
    ) -> None:
        self.issuer = issuers[0].rstrip("/")  # its discovery document names the signing keys
        self.issuers = issuers
        self.audiences = audiences
        self.role = role
        self.timeout_s = timeout_s
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _key_client(self) -> jwt.PyJWKClient:
        import jwt
        import requests

        with self._lock:
            if self._keys is None:
                try:
                    response = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout_s)
                    response.raise_for_status()
                    jwks_uri = response.json()["jwks_uri"]
                except (requests.RequestException, ValueError, KeyError) as exc:
                    raise DependencyError("the token issuer's OpenID configuration is unavailable") from exc
                self._keys = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=3600, timeout=int(self.timeout_s))
            return self._keys

    def validate(self, authorization: str | None) -> Principal:
        import jwt  # here, not at import: the JWT and crypto libraries are off every cold start

        challenge = 'Bearer realm="iomt-hub"'
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("a bearer token is required (Authorization: Bearer ...)", challenge=challenge)
        token = authorization[7:].strip()
        invalid = f'{challenge}, error="invalid_token"'
        try:
            key = self._key_client().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=list(self.audiences),
                issuer=list(self.issuers),
                options={"require": ["exp", "iss", "aud", "sub"]},
                leeway=60,
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise DependencyError("the token issuer's signing keys are unavailable") from exc
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the bearer token has expired", challenge=invalid) from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the bearer token is not valid: {_token_problem(exc)}", challenge=invalid) from None
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or self.role not in roles:
            raise Forbidden(f"the token does not carry the {self.role} app role")
        subject = str(claims.get("oid") or claims["sub"])
        name = claims.get("preferred_username") or claims.get("name") or claims.get("azp")
        groups = claims.get("groups") or []
        return Principal(
            subject=subject,
            name=str(name) if name else None,
            roles=tuple(str(role) for role in roles),
            groups=tuple(str(group) for group in groups) if isinstance(groups, list) else (),
        )


def _token_problem(error: Exception) -> str:
    """What is wrong with a token, in the caller's terms (never the library's exception name)."""
    import jwt

    problems: tuple[tuple[type[Exception], str], ...] = (
        (jwt.InvalidSignatureError, "its signature does not verify"),
        (jwt.InvalidAudienceError, "it was issued for another audience"),
        (jwt.InvalidIssuerError, "it was not issued by the configured issuer"),
        (jwt.ImmatureSignatureError, "it is not valid yet"),
        (jwt.MissingRequiredClaimError, "it lacks a required claim (exp, iss, aud or sub)"),
        (jwt.InvalidAlgorithmError, "it is not signed with RS256"),
        (jwt.PyJWKClientError, "it is signed with a key the issuer does not publish"),
        (jwt.DecodeError, "it is not a well-formed JWT"),
    )
    return next((text for kind, text in problems if isinstance(error, kind)), "it could not be verified")


@functools.lru_cache(maxsize=4)
def _validator(issuers: tuple[str, ...], audiences: tuple[str, ...], role: str) -> BearerTokenValidator:
    return BearerTokenValidator(issuers, audiences, role)


def admin_validator(settings: Settings, role: str | None = None) -> BearerTokenValidator:
    """Entra ID tokens for the hub's app carrying ``role`` (default: the admin role): v1.0 or
    v2.0 tokens of exactly the configured tenant, for the App ID URI or the client id."""
    if not settings.admin_token_issuers or not settings.admin_token_audiences:
        raise ConfigurationError("admin authentication is not configured (ADMIN_TOKEN_ISSUER, ADMIN_TOKEN_AUDIENCE)")
    return _validator(settings.admin_token_issuers, settings.admin_token_audiences, role or settings.admin_role)
