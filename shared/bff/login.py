"""The BFF's login and reset policy: every attempt is counted against the account and the
client address before it is checked, so that guessing is limited however many callers race; a
failure that is not a guess (the identity provider down, an account with no patient) is given
back; a success clears the account's count, and only failures count against an address."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import BadRequest, Forbidden, HubError, TenantSuspended, Unauthorized
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from shared.bff.identity import IdentityProvider, UserProfile
    from shared.bff.sessions import Session, SessionStore
    from shared.bff.throttle import Throttle
    from shared.tenants.directory import TenantDirectory


@dataclass(frozen=True)
class LoginLimits:
    failures_per_address: int
    failures_per_account: int
    resets_per_hour: int


@dataclass
class Login:
    identity: IdentityProvider
    sessions: SessionStore
    throttle: Throttle
    limits: LoginLimits
    tenants: TenantDirectory

    def login(
        self, username: str, password: str, address: str, tenant: str | None = None
    ) -> tuple[str, Session]:
        """(session id, session) for a correct password, or 401 / 429; the session runs in the
        user's tenant (``tenant`` when the user is in several this deployment serves)."""
        profile = self.authenticate(username, password, address, tenant)
        if profile.clinician:
            raise Forbidden("a clinician's account does not sign in to the patient app")
        return self.sessions.create(profile)

    def authenticate(self, username: str, password: str, address: str, tenant: str | None = None) -> UserProfile:
        """The user, in the tenant they act in, for a correct password, or 401 / 403 / 429,
        under the same limits as every login (the BFF's, the partner authorization pages')."""
        limits = [
            ("login-address", address, self.limits.failures_per_address),
            ("login-account", username, self.limits.failures_per_account),
        ]
        self.throttle.take_all(limits, "too many failed logins; try again later")
        try:
            profile = self.identity.authenticate(username, password)
            profile = dataclasses.replace(profile, tenant=self._tenant_of(profile, tenant))
        except Unauthorized:
            raise  # a wrong password: it stays counted
        except HubError:
            for kind, subject, _ in limits:
                self.throttle.give_back(kind, subject)
            raise
        self.throttle.clear("login-account", username)
        self.throttle.give_back("login-address", address)
        return profile

    def _tenant_of(self, profile: UserProfile, asked: str | None) -> str:
        """The identity provider names the user's tenants; the check is ours (an identity
        provider's app does not filter users by tenant)."""
        if not profile.tenants:
            if asked not in (None, DEFAULT_TENANT):
                raise Forbidden("this account does not belong to that medical centre")
            return DEFAULT_TENANT
        served = [t for t in profile.tenants if self.tenants.status(t) is not None]
        if not served:
            raise Forbidden("this account belongs to no medical centre this hub serves")
        if asked is not None:
            if asked not in served:
                raise Forbidden("this account does not belong to that medical centre")
            served = [asked]
        if len(served) > 1:
            raise BadRequest("this account belongs to several medical centres: name one in tenantId")
        if self.tenants.status(served[0]) != "active":
            raise TenantSuspended("this medical centre's account is suspended")
        return served[0]

    def request_password_reset(self, email: str, address: str) -> None:
        per_hour = self.limits.resets_per_hour
        limits = [("reset-address", address, per_hour * 10), ("reset-email", email, per_hour)]
        self.throttle.take_all(limits, "too many password reset requests; try again later")
        self.identity.request_password_reset(email)
