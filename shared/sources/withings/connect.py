"""Linking a patient to a Withings account, and unlinking: the OAuth consent (authorize URL
with a signed state, callback exchanging the 30-second code), tokens to Key Vault, the consent
record, notification subscriptions, the initial backfill; and the reverse.

A link belongs to one tenant: the patient's. One Withings application serves every tenant, and
each tenant's links subscribe with the tenant's own notification URL (its own path secret), so
a Withings user linked in two tenants has two subscriptions, and Withings notifies each link."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from shared.consent.models import ConsentGrant
from shared.consent.registry import ConsentStore
from shared.errors import DependencyError
from shared.measurement import Kind
from shared.sources.withings.client import WithingsClient, WithingsError
from shared.sources.withings.jobs import SUBSCRIBED_APPLIS, SyncJob, enqueue_job
from shared.sources.withings.state import StateSigner
from shared.sources.withings.tokens import NeedsReconsent, TokenStore
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)

# What each Withings OAuth scope lets the hub read, as consent scopes (metric kinds).
SCOPE_KINDS: dict[str, tuple[Kind, ...]] = {
    "user.metrics": (
        Kind.BODY_WEIGHT,
        Kind.BODY_HEIGHT,
        Kind.BMI,
        Kind.BODY_FAT_PERCENT,
        Kind.BLOOD_PRESSURE,
        Kind.HEART_RATE,
        Kind.OXYGEN_SATURATION,
        Kind.BODY_TEMPERATURE,
        Kind.GLUCOSE,
        Kind.ECG,
        Kind.OTHER,
    ),
    "user.activity": (Kind.STEPS,),
}


def derived_secret(client_secret: str, purpose: str) -> str:
    """Secrets the connector needs besides the client secret (the notification URL's path
    secret, the state signing key), derived from it: rotating the client secret rotates them."""
    return hmac.new(client_secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def consent_scopes(granted: str) -> list[str]:
    names = {name.strip() for name in granted.replace(" ", ",").split(",") if name.strip()}
    return sorted({kind.value for name in names for kind in SCOPE_KINDS.get(name, ())})


@dataclass
class AccountUnlinker:
    """Ends a link, asked by the patient (disconnect) or by Withings (an unlink notification)."""

    client: WithingsClient
    tokens: TokenStore
    consents: ConsentStore
    notify_url_of: Callable[[str], str]  # a tenant's notification URL

    def unlink(self, userid: str, *, by: str = "withings", tenant: str = DEFAULT_TENANT) -> None:
        """Ends the user's link in ``tenant``: unsubscribes that tenant's notification URL (best
        effort: after an unlink Withings may refuse the token), deletes the link's tokens and
        revokes its consent. Data already written stays; a link in another tenant is untouched."""
        notify_url = self.notify_url_of(tenant)
        try:
            token = self.tokens.access_token(userid, tenant=tenant)
            for subscription in self.client.subscriptions(token):
                if subscription.get("callbackurl") == notify_url:
                    self.client.revoke(token, notify_url, int(subscription["appli"]))
        except (WithingsError, NeedsReconsent, DependencyError) as exc:
            log.warning("Withings unlink: unsubscribe skipped (%s); continuing", exc.code)
        self.tokens.delete(userid, tenant)
        consents = self.consents.for_tenant(tenant)
        record = consents.find_by_account("withings", userid)
        if record is not None:
            consents.revoke(record.id, by)


@dataclass
class WithingsConnector:
    client: WithingsClient
    tokens: TokenStore
    consents: ConsentStore
    state: StateSigner
    authorize_endpoint: str
    scopes: str
    redirect_uri: str
    unlinker: AccountUnlinker
    jobs: QueueClient

    @property
    def notify_url(self) -> str:
        """The default tenant's notification URL."""
        return self.unlinker.notify_url_of(DEFAULT_TENANT)

    def authorize_url(self, patient_id: str, tenant: str = DEFAULT_TENANT) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "scope": self.scopes,
            "redirect_uri": self.redirect_uri,
            "state": self.state.issue(patient_id, tenant),
        }
        return f"{self.authorize_endpoint}?{urlencode(query)}"

    def complete(self, code: str, state: str) -> tuple[str, str]:
        """(patient id, Withings userid) once everything is in place, in the tenant the state
        was issued for."""
        patient_id, tenant = self.state.consume(state)
        tokens = self.client.exchange_code(code, self.redirect_uri)
        self.tokens.save(tokens, tenant)
        scopes = consent_scopes(tokens.scope) or consent_scopes(self.scopes)
        grant = ConsentGrant(
            patient_id=patient_id, source="withings", scopes=scopes, attestation="patient", account_id=tokens.userid
        )
        self.consents.for_tenant(tenant).grant(grant, recorded_by=f"withings-oauth:{tokens.userid}")
        notify_url = self.unlinker.notify_url_of(tenant)
        for appli in SUBSCRIBED_APPLIS:
            self.client.subscribe(tokens.access_token, notify_url, appli)
        enqueue_job(self.jobs, SyncJob(userid=tokens.userid, tenant=tenant))  # the initial backfill
        return patient_id, tokens.userid

    def resubscribe(self, userid: str, tenant: str = DEFAULT_TENANT) -> dict[str, int]:
        """Makes the link's subscriptions point at its tenant's current notification URL (it
        changes when the client secret is rotated): stale ones revoked, missing ones made. Only
        URLs of this tenant are touched: the user's links in other tenants keep theirs."""
        notify_url = self.unlinker.notify_url_of(tenant)
        ours = urlsplit(notify_url).path.rsplit("/", 1)[0] + "/"  # this tenant's, whatever the secret
        token = self.tokens.access_token(userid, tenant=tenant)
        current = self.client.subscriptions(token)
        revoked = 0
        for subscription in current:
            url = str(subscription.get("callbackurl", ""))
            if url != notify_url and ours in url:
                self.client.revoke(token, url, int(subscription["appli"]))
                revoked += 1
        present = {int(s["appli"]) for s in current if s.get("callbackurl") == notify_url}
        missing = [appli for appli in SUBSCRIBED_APPLIS if appli not in present]
        for appli in missing:
            self.client.subscribe(token, notify_url, appli)
        return {"revoked": revoked, "subscribed": len(missing)}

    def unlink(self, userid: str, *, by: str = "withings", tenant: str = DEFAULT_TENANT) -> None:
        self.unlinker.unlink(userid, by=by, tenant=tenant)
