"""The BFF's login and reset policy: every attempt is counted against the account and the
client address before it is checked, so that guessing is limited however many callers race; a
failure that is not a guess (the identity provider down, an account with no patient) is given
back; a success clears the account's count, and only failures count against an address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import HubError, Unauthorized

if TYPE_CHECKING:
    from shared.bff.identity import IdentityProvider
    from shared.bff.sessions import Session, SessionStore
    from shared.bff.throttle import Throttle


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

    def login(self, username: str, password: str, address: str) -> tuple[str, Session]:
        """(session id, session) for a correct password, or 401 / 429."""
        limits = [
            ("login-address", address, self.limits.failures_per_address),
            ("login-account", username, self.limits.failures_per_account),
        ]
        self.throttle.take_all(limits, "too many failed logins; try again later")
        try:
            profile = self.identity.authenticate(username, password)
        except Unauthorized:
            raise  # a wrong password: it stays counted
        except HubError:
            for kind, subject, _ in limits:
                self.throttle.give_back(kind, subject)
            raise
        self.throttle.clear("login-account", username)
        self.throttle.give_back("login-address", address)
        return self.sessions.create(profile)

    def request_password_reset(self, email: str, address: str) -> None:
        per_hour = self.limits.resets_per_hour
        limits = [("reset-address", address, per_hour * 10), ("reset-email", email, per_hour)]
        self.throttle.take_all(limits, "too many password reset requests; try again later")
        self.identity.request_password_reset(email)
