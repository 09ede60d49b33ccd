"""The partner authorization pages in a real browser (Playwright driving Debian's Chromium),
served by the project's own Functions host: a patient signs in, unticks a scope and allows; or
denies. The app's redirect URI is caught by the browser (the app is not running here)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from local.functions_host import serving
from shared.composition import AppContext
from tests.helpers.browser import chromium
from tests.helpers.common import registered
from tests.helpers.partners import PASSWORD, clinic_with_anna
from tests.helpers.stack import send

REDIRECT = "https://app.example.com/oauth/callback"
ASKED = "metrics.blood-pressure.write metrics.heart-rate.write metrics.body-weight.write offline_access"
PORT = 7093


@pytest.fixture
def hub(clean_cosmos: AppContext, clean_fhir: str, store: Any) -> Iterator[tuple[AppContext, str, str, str]]:
    from shared.partners.records import AppRegistration

    clinic_with_anna(clean_cosmos, clean_fhir)
    registration = AppRegistration.model_validate({
        "name": "Vitals Diary", "owner": "Example Health", "type": "web",
        "grantTypes": ["authorization_code", "refresh_token"], "redirectUris": [REDIRECT], "scopes": ASKED.split(),
    })  # fmt: skip
    app, secret = clean_cosmos.partner_apps.register(registration)
    clean_cosmos.partner_apps.set_status(app.id, "approved")
    clean_cosmos.partner_apps.enable(app.id, "clinic-a")
    assert secret is not None
    with serving(PORT) as url:
        yield clean_cosmos, url, app.id, secret


def _authorize_url(host: str, client_id: str) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": ASKED,
             "state": "st-1", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    return f"{host}/api/oauth2/authorize?{urlencode(query)}", verifier


def _catch_redirect(page: Any) -> list[str]:
    caught: list[str] = []

    def fulfil(route: Any) -> None:
        caught.append(route.request.url)
        route.fulfill(status=200, body="the app", content_type="text/plain")

    page.route(f"{REDIRECT}*", fulfil)
    return caught


def test_a_patient_signs_in_unticks_a_scope_and_the_token_carries_the_rest(hub):
    context, host, client_id, secret = hub
    url, verifier = _authorize_url(host, client_id)
    with chromium() as browser:
        page = browser.new_page()
        caught = _catch_redirect(page)
        response = page.goto(url)
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # no script at all
        assert page.title() == "Sign in"
        # The keyboard alone: the user name has the focus, Tab reaches the password, Enter signs in.
        page.keyboard.type("anna@example.org")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.title() == "Allow this app?", page.inner_text("main")
        heart_rate = page.get_by_label("Send your heart rate readings to your care team")
        assert heart_rate.is_checked()
        heart_rate.uncheck()
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(f"{REDIRECT}*")
    [back] = caught
    query = parse_qs(urlsplit(back).query)
    assert query["state"] == ["st-1"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": client_id, "client_secret": secret}  # fmt: skip
    answer = send(registered("partner_token"), "POST", "x", body=urlencode(form).encode(),
                  headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    token = json.loads(answer.get_body())
    assert answer.status_code == 200, token
    assert set(token["scope"].split()) == set(ASKED.split()) - {"metrics.heart-rate.write"}
    record = context.consents.for_tenant("clinic-a").find("anna", client_id)
    assert record is not None
    assert record.scopes == ["blood-pressure", "body-weight"]

    # The app's readings of the granted kinds land for Anna in clinic-a; the unticked kind is 403.
    at = "2026-12-01T08:00:00+01:00"
    weight = {"id": "w-1", "kind": "body-weight", "value": 71.2, "unit": "kg", "effectiveDateTime": at}
    heart = {"id": "hr-1", "kind": "heart-rate", "value": 66, "unit": "/min", "effectiveDateTime": at}
    bearer = {"authorization": f"Bearer {token['access_token']}", "content-type": "application/json"}
    refused = send(registered("partner_readings"), "POST", "x", body={"readings": [weight, heart]}, headers=bearer)
    assert (refused.status_code, json.loads(refused.get_body())["error"]["code"]) == (403, "insufficient_scope")
    accepted = send(registered("partner_readings"), "POST", "x", body={"readings": [weight]}, headers=bearer)
    assert accepted.status_code == 202
    receipt_id = json.loads(accepted.get_body())["receiptId"]
    from tests.helpers.clinic import process

    process(context.raw_store)
    receipt = json.loads(send(registered("partner_receipt"), "GET", "x", headers=bearer,
                              route_params={"id": receipt_id}).get_body())  # fmt: skip
    [fate] = receipt["readings"]
    assert fate["status"] == "written"
    from shared.fhir.mapping import tenant_of
    from tests.helpers.stack import search

    [observation] = search(context.settings.fhir_url, "Observation", subject="Patient/anna")
    assert (f"Observation/{observation['id']}", tenant_of(observation)) == (fate["fhirId"], "clinic-a")


def test_a_wrong_password_a_denial_and_a_forged_form_are_refused_with_a_page(hub):
    context, host, client_id, _ = hub
    url, _ = _authorize_url(host, client_id)
    with chromium() as browser:
        page = browser.new_page()
        caught = _catch_redirect(page)
        page.goto(url)
        page.get_by_label("User name").fill("anna@example.org")
        page.get_by_label("Password").fill("not the password")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text() == "The user name or password is wrong."
        page.get_by_label("User name").fill("anna@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Deny").click()
        page.wait_for_url(f"{REDIRECT}*")
        assert parse_qs(urlsplit(caught[0]).query)["error"] == ["access_denied"]
        assert context.consents.for_tenant("clinic-a").find("anna", client_id) is None

        # An unknown app, a redirect URI that is not registered: an error page, no redirect.
        page.goto(url.replace(client_id, "app-000000000000000000000000"))
        assert page.title() == "This app's request is not valid"
        page.goto(url.replace("app.example.com", "evil.example.com"))
        assert page.title() == "This app's request is not valid"
        assert len(caught) == 1
    # A form posted from elsewhere (no CSRF cookie) is refused.
    forged = send(registered("partner_authorize"), "POST", "x",
                  body=urlencode({"request": urlsplit(url).query, "csrf": "guess", "step": "login",
                                  "username": "anna@example.org", "password": PASSWORD}).encode(),
                  headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert forged.status_code == 403
    assert "This form has expired" in forged.get_body().decode()


def test_a_gateway_without_a_browser_is_connected_with_the_code_typed_on_the_verification_page(hub):
    import requests

    from shared.partners.records import AppRegistration

    context, host, _, _ = hub
    gateway, _ = context.partner_apps.register(AppRegistration.model_validate({
        "name": "Bedside Gateway", "owner": "Example Devices", "type": "device",
        "grantTypes": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "scopes": ["metrics.body-weight.write", "metrics.heart-rate.write", "offline_access"],
    }))  # fmt: skip
    context.partner_apps.set_status(gateway.id, "approved")
    context.partner_apps.enable(gateway.id, "clinic-a")
    scope = "metrics.body-weight.write metrics.heart-rate.write offline_access"
    started = requests.post(f"{host}/api/oauth2/device_authorization", data={"client_id": gateway.id, "scope": scope},
                            timeout=10).json()  # fmt: skip
    assert started["verification_uri"] == f"{host}/api/oauth2/device"
    assert (started["interval"], started["expires_in"]) == (5, 600)

    def poll() -> dict:
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": started["device_code"],
                "client_id": gateway.id}  # fmt: skip
        return requests.post(f"{host}/api/oauth2/token", data=form, timeout=10).json()

    assert poll()["error"] == "authorization_pending"
    assert poll()["error"] == "slow_down"  # polled again within the interval
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{host}/api/oauth2/device")  # the user types the code shown on the device
        assert page.title() == "Connect a device"
        page.get_by_label("Code shown on the device").fill(started["user_code"].lower().replace("-", " "))
        page.get_by_label("User name").fill("anna@example.org")
        page.get_by_label("Password").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()
        assert page.title() == "Allow this app?", page.inner_text("main")
        page.get_by_label("Send your heart rate readings to your care team").uncheck()
        with page.expect_navigation():
            page.get_by_role("button", name="Allow").click()
        assert page.title() == "The device is connected"
    token = poll()
    assert set(token["scope"].split()) == {"metrics.body-weight.write", "offline_access"}, token
    assert token["refresh_token"]
    assert poll()["error"] == "invalid_request"  # the device code is spent
    record = context.consents.for_tenant("clinic-a").find("anna", gateway.id)
    assert record is not None
    assert record.scopes == ["body-weight"]


def test_the_metadata_is_at_the_hosts_root_and_names_every_endpoint(hub):
    import requests

    _, host, _, _ = hub
    metadata = requests.get(f"{host}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["issuer"] == host
    assert metadata["authorization_endpoint"] == f"{host}/api/oauth2/authorize"
    assert metadata["token_endpoint"] == f"{host}/api/oauth2/token"
    assert metadata["device_authorization_endpoint"] == f"{host}/api/oauth2/device_authorization"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "client_credentials" not in metadata["grant_types_supported"]
    assert "metrics.ecg.write" in metadata["scopes_supported"]
