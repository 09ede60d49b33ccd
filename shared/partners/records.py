"""A registered partner application as the registry stores it, and the registration request.

Confidential clients (type ``web``) get a secret shown once and stored only as a SHA-256 digest
(a 256-bit random secret needs no slow hash). Native and device clients are public: native ones
must use PKCE (S256), device ones the device authorization grant."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from shared.partners.scopes import METRIC_SCOPES, SCOPES
from shared.records import Instant, Record

AppType = Literal["web", "native", "device"]
AppStatus = Literal["pending", "approved", "suspended"]
APP_STATUSES: tuple[str, ...] = ("pending", "approved", "suspended")
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type, not a secret
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANTS_OF_TYPE: dict[str, frozenset[str]] = {
    "web": frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN}),
    "native": frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN}),
    "device": frozenset({DEVICE_CODE, REFRESH_TOKEN}),
}


def _redirect_problem(uri: str, app_type: str) -> str | None:
    """Why ``uri`` cannot be a redirect URI of an app of this type (RFC 6749 3.1.2, RFC 8252)."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment"
    if "*" in uri:
        return "a redirect URI is exact: no wildcard"
    if parts.scheme == "https" and parts.netloc:
        return None
    if app_type == "native":
        if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
            return None  # the loopback interface, any port (RFC 8252 7.3)
        if "." in parts.scheme and not parts.netloc and parts.path:
            return None  # a private-use scheme in reverse-domain form (RFC 8252 7.1)
        return "a native app's redirect URI is https, loopback http or a reverse-domain private-use scheme"
    return "a web app's redirect URI is an absolute https URL"


class AppRegistration(Record):
    """What an integrator sends to register an app (``POST /api/partner/apps``)."""

    name: str = Field(min_length=1, max_length=100)
    owner: str = Field(min_length=1, max_length=200, description="the integrator: organisation and contact")
    type: AppType = Field(description="web: confidential (a secret); native: public with PKCE; device: device grant")
    grant_types: list[str] = Field(alias="grantTypes", min_length=1, max_length=3)
    redirect_uris: list[str] = Field(default_factory=list, alias="redirectUris", max_length=10)
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES), description="the scopes the app will ask for")

    @field_validator("redirect_uris")
    @classmethod
    def _short(cls, value: list[str]) -> list[str]:
        if any(len(uri) > 500 for uri in value):
            raise ValueError("a redirect URI is at most 500 characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AppRegistration:
        allowed = GRANTS_OF_TYPE[self.type]
        unknown = sorted(set(self.grant_types) - allowed)
        if unknown:
            raise ValueError(f"a {self.type} app may use the grant types {sorted(allowed)}, not {unknown}")
        scopes = set(self.scopes)
        if scopes - set(SCOPES):
            raise ValueError(f"unknown scopes {sorted(scopes - set(SCOPES))}; known: {list(SCOPES)}")
        if not scopes & set(METRIC_SCOPES):
            raise ValueError("an app asks for at least one metric scope")
        if self.type == "device":
            if self.redirect_uris:
                raise ValueError("a device app has no redirect URI: it uses the device authorization grant")
        elif not self.redirect_uris:
            raise ValueError(f"a {self.type} app registers at least one exact redirect URI")
        for uri in self.redirect_uris:
            problem = _redirect_problem(uri, self.type)
            if problem:
                raise ValueError(problem)
        return self


class AppView(Record):
    """An app as the API shows it: never its secret, nor the secret's digest."""

    id: str = Field(description="the client_id")
    name: str
    owner: str
    type: AppType
    grant_types: list[str] = Field(alias="grantTypes")
    redirect_uris: list[str] = Field(alias="redirectUris")
    scopes: list[str]
    status: AppStatus = "pending"
    enabled_tenants: list[str] = Field(default_factory=list, alias="enabledTenants")
    created_at: Instant = Field(alias="createdAt")
    updated_at: Instant = Field(alias="updatedAt")


class TenantAppView(Record):
    """An app as a tenant's admins see it: whether the tenant enabled it, not who else did."""

    id: str = Field(description="the client_id")
    name: str
    owner: str
    type: AppType
    scopes: list[str]
    status: AppStatus
    enabled: bool


class PartnerApp(AppView):
    """A registered app. ``id`` is its OAuth ``client_id``; it identifies the software only."""

    secret_digest: str | None = Field(default=None, alias="secretDigest")

    @property
    def confidential(self) -> bool:
        return self.type == "web"

    @property
    def requires_pkce(self) -> bool:
        """Public clients cannot keep a secret: the code is bound to a PKCE verifier (S256)."""
        return self.type == "native"

    def view(self) -> AppView:
        return AppView.model_validate(self.to_item())

    def public(self) -> dict[str, object]:
        return self.view().to_item()

    def for_tenant(self, tenant: str) -> TenantAppView:
        return TenantAppView.model_validate({**self.to_item(), "enabled": tenant in self.enabled_tenants})


class RegisteredApp(Record):
    """The registration's answer: the secret appears here once and never again."""

    app: AppView
    client_secret: str | None = Field(
        default=None, alias="clientSecret", description="confidential apps only; shown once, stored as a digest"
    )


class AppList(Record):
    items: list[AppView]


class TenantAppList(Record):
    items: list[TenantAppView]
