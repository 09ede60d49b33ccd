"""The example partner (``examples/partner.py``, Authlib's OAuth client) runs both flows against
the project's own host: a native app's authorization code with PKCE, and a gateway's device code;
each sends readings and follows its receipt until the worker has written them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from examples import partner
from local.functions_host import serving
from local.scripted_user import ScriptedUser
from shared.composition import AppContext
from shared.partners.records import AppRegistration
from tests.helpers.clinic import process
from tests.helpers.partners import PASSWORD, clinic_with_anna

PORT = 7094
SCOPES = partner.SCOPES.split()


@pytest.fixture
def hub(clean_cosmos: AppContext, clean_fhir: str, store: Any) -> Iterator[str]:
    clinic_with_anna(clean_cosmos, clean_fhir)
    with serving(PORT) as url:
        yield url


def _app(context: AppContext, app_type: str, grants: list[str], redirect: list[str]) -> str:
    app, _ = context.partner_apps.register(AppRegistration.model_validate({
        "name": f"Example {app_type}", "owner": "Example", "type": app_type, "grantTypes": grants,
        "redirectUris": redirect, "scopes": SCOPES,
    }))  # fmt: skip
    context.partner_apps.set_status(app.id, "approved")
    context.partner_apps.enable(app.id, "clinic-a")
    return app.id


def _send_and_follow(hub: str, token: dict[str, Any], store: Any) -> dict[str, Any]:
    readings = partner.granted_only(partner.sample_readings(), token["scope"])
    receipt_id = partner.send(hub, token["access_token"], readings)
    process(store)  # the worker, as the host runs it
    return partner.follow(hub, token["access_token"], receipt_id, wait_s=0)


def test_the_example_runs_the_code_flow_with_pkce_and_follows_its_receipt(hub, clean_cosmos, store):
    redirect = "http://127.0.0.1:8765/callback"
    client_id = _app(clean_cosmos, "native", ["authorization_code", "refresh_token"], [redirect])
    patient = ScriptedUser("anna@example.org", PASSWORD, untick={"metrics.steps.write"})
    token = partner.code_flow(hub, client_id, None, redirect, patient.authorize)
    assert set(token["scope"].split()) == set(SCOPES) - {"metrics.steps.write"}
    receipt = _send_and_follow(hub, token, store)
    assert [r["status"] for r in receipt["readings"]] == ["written", "written"]  # steps not sent: not allowed


def test_the_example_runs_the_device_flow_and_its_readings_are_written(hub, clean_cosmos, store):
    client_id = _app(clean_cosmos, "device", [partner.DEVICE_GRANT, "refresh_token"], [])
    patient = ScriptedUser("anna@example.org", PASSWORD)
    token = partner.device_flow(
        hub, client_id, lambda started: patient.connect_device(started["verification_uri"], started["user_code"]),
        sleep=lambda _: None,  # the user answered before the first poll: no need to wait here
    )
    assert set(token["scope"].split()) == set(SCOPES)
    receipt = _send_and_follow(hub, token, store)
    assert [r["status"] for r in receipt["readings"]] == ["written", "written", "written"]
    assert all(r["fhirId"].startswith("Observation/") for r in receipt["readings"])
