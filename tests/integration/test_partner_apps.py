"""The partner platform's application registry: integrators register, platform operators approve
or suspend, tenants enable. Against the local Cosmos DB server, through the registered handlers."""

from __future__ import annotations

import functools
import hashlib

import pytest

from shared.composition import AppContext
from shared.localstack import LOCAL_ADMIN_CLIENT, LOCAL_PLATFORM_CLIENT
from tests.helpers.common import answer, registered, run_together
from tests.helpers.stack import client_token, send

WEB_APP = {
    "name": "Vitals Diary",
    "owner": "Example Health Ltd, integrations@example.com",
    "type": "web",
    "grantTypes": ["authorization_code", "refresh_token"],
    "redirectUris": ["https://app.example.com/oauth/callback"],
    "scopes": ["metrics.blood-pressure.write", "metrics.heart-rate.write", "offline_access"],
}
GATEWAY = {
    "name": "Bedside Gateway",
    "owner": "Example Devices",
    "type": "device",
    "grantTypes": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
    "scopes": ["metrics.body-weight.write"],
}


def _register(body: dict, address: str = "198.51.100.1") -> tuple[int, dict]:
    headers = {"x-forwarded-for": address}
    return answer(send(registered("register_app"), "POST", "x", body=body, headers=headers))


@pytest.fixture
def apps(clean_cosmos: AppContext) -> AppContext:
    for tenant in ("clinic-a", "clinic-b"):
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
        clean_cosmos.tenant_administration.add_member(tenant, f"oid:{LOCAL_ADMIN_CLIENT[0]}")
    return clean_cosmos


def test_a_confidential_app_gets_its_secret_once_and_the_hub_keeps_only_a_digest(apps):
    status, registered_app = _register(WEB_APP)
    assert status == 201
    app, secret = registered_app["app"], registered_app["clientSecret"]
    assert (app["status"], app["type"], len(secret) >= 40) == ("pending", "web", True)
    assert "secretDigest" not in app
    stored = apps.partner_apps.container.read_item(app["id"], app["id"])
    assert secret not in str(stored)
    assert stored["secretDigest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert apps.partner_apps.authenticate(app["id"], secret)
    assert not apps.partner_apps.authenticate(app["id"], secret[:-1] + "x")
    assert not apps.partner_apps.authenticate("app-unknown", secret)
    # A public app has no secret at all.
    status, gateway = _register(GATEWAY, "198.51.100.2")
    assert (status, gateway["clientSecret"], gateway["app"]["type"]) == (201, None, "device")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"type": "native", "redirectUris": ["http://evil.example.com/cb"]}, "native app's redirect URI"),
        ({"redirectUris": ["https://app.example.com/*"]}, "no wildcard"),
        ({"redirectUris": ["https://app.example.com/cb#frag"]}, "no fragment"),
        ({"redirectUris": []}, "at least one exact redirect URI"),
        ({"scopes": ["metrics.blood-pressure.write", "admin"]}, "unknown scopes"),
        ({"scopes": ["offline_access"]}, "at least one metric scope"),
        ({"grantTypes": ["client_credentials"]}, "not ['client_credentials']"),
        ({"type": "device", "grantTypes": ["authorization_code"]}, "a device app may use"),
        ({**GATEWAY, "redirectUris": ["https://app.example.com/cb"]}, "a device app has no redirect URI"),
    ],
)
def test_a_registration_that_breaks_a_rule_is_a_400_naming_it(apps, change, words):
    status, body = _register({**WEB_APP, **change})
    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert words in str(body["error"])


def test_native_apps_may_use_loopback_and_private_use_redirects():
    from shared.partners.records import AppRegistration

    native = {**WEB_APP, "type": "native"}
    for uri in ("http://127.0.0.1:53100/cb", "com.example.vitals:/oauth/cb", "https://app.example.com/native"):
        assert AppRegistration.model_validate({**native, "redirectUris": [uri]}).redirect_uris == [uri]


def test_registrations_are_limited_per_address(apps):
    for _ in range(5):
        assert _register(GATEWAY, "203.0.113.50")[0] == 201
    response = send(registered("register_app"), "POST", "x", body=GATEWAY, headers={"x-forwarded-for": "203.0.113.50"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert _register(GATEWAY, "203.0.113.51")[0] == 201  # another address is not held back


def test_operators_approve_tenants_enable_and_a_suspended_app_is_usable_nowhere(apps):
    registry = apps.partner_apps
    client_id = _register(WEB_APP)[1]["app"]["id"]
    operator, admin = client_token(LOCAL_PLATFORM_CLIENT), client_token(LOCAL_ADMIN_CLIENT)

    def call(name: str, token: str, tenant: str | None = None, **route: str) -> tuple[int, dict]:
        route = {**route, **({"tenantId": tenant} if tenant else {})}
        handler = registered(f"tenant_{name}" if tenant else name)
        return answer(send(handler, "GET" if "list" in name else "POST", "x", token=token, route_params=route))

    assert call("enable_app", admin, "clinic-a", clientId=client_id)[0] == 409  # pending: not yet
    assert call("approve_app", admin, clientId=client_id)[0] == 403  # a tenant admin is no operator
    assert call("approve_app", operator, clientId="app-nothing")[0] == 404
    status, approved = call("approve_app", operator, clientId=client_id)
    assert (status, approved["status"]) == (200, "approved")
    status, enabled = call("enable_app", admin, "clinic-a", clientId=client_id)
    assert (status, enabled["enabled"]) == (200, True)
    assert registry.usable_in(client_id, "clinic-a")
    assert not registry.usable_in(client_id, "clinic-b")
    status, listed = call("list_tenant_apps", admin, "clinic-b")
    assert status == 200
    assert [(a["id"], a["enabled"]) for a in listed["items"]] == [(client_id, False)]
    assert "enabledTenants" not in listed["items"][0]  # a tenant does not see who else uses it
    status, everything = call("list_apps", operator)
    assert [a["enabledTenants"] for a in everything["items"]] == [["clinic-a"]]

    assert call("suspend_app", operator, clientId=client_id)[1]["status"] == "suspended"
    assert not registry.usable_in(client_id, "clinic-a")
    assert call("enable_app", admin, "clinic-b", clientId=client_id)[0] == 409
    call("approve_app", operator, clientId=client_id)
    assert registry.usable_in(client_id, "clinic-a")  # its enablements survive a suspension
    status, disabled = call("disable_app", admin, "clinic-a", clientId=client_id)
    assert (status, disabled["enabled"]) == (200, False)
    assert not registry.usable_in(client_id, "clinic-a")


def test_concurrent_enablements_by_many_tenants_all_land(apps):
    tenants = [f"clinic-{n}" for n in range(6)]
    for tenant in tenants:
        if tenant not in ("clinic-a", "clinic-b"):
            apps.tenant_administration.create(tenant, tenant)
    client_id = _register(GATEWAY)[1]["app"]["id"]
    apps.partner_apps.set_status(client_id, "approved")
    run_together([functools.partial(apps.partner_apps.enable, client_id, tenant) for tenant in tenants])
    assert apps.partner_apps.get(client_id).enabled_tenants == sorted(tenants)
