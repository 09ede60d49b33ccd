"""Device Manager end to end on the local stack: register, assign, Medisanté payloads through
the webhook and the worker into FHIR; attribution by time, parking, consent, admin auth."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import cli
from shared.api import consents as consents_api
from shared.api import devices as devices_api
from shared.api import medisante as medisante_api
from shared.composition import AppContext, reset_context
from shared.devices.types import registry_id
from shared.localstack import LOCAL_ADMIN_AUDIENCE, local_admin_issuer, local_issuer
from shared.pipeline.store import RawRecordStore
from tests.helpers.clinic import FIXTURE_DEVICES, assign, call, deliver, fixture_text, payload_at, process
from tests.helpers.common import MEDISANTE_KEY, REPO, http_request
from tests.helpers.stack import put_patient, search


@pytest.fixture
def stack(clean_cosmos: AppContext, clean_fhir: str, store: RawRecordStore) -> AppContext:
    return clean_cosmos


def test_register_assign_and_every_medisante_fixture_lands_once_for_the_right_patient(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str
):
    put_patient(fhir_url, "anna")
    for name, (imei, device_type) in FIXTURE_DEVICES.items():
        status, device = assign(admin_token, imei, device_type, "anna")
        assert status == 200, device
        assert device["patientId"] == "anna"
        for _ in range(5):  # the portal re-delivers: harmless
            deliver(fixture_text(name))
    assert process(store) == 15
    observations = search(fhir_url, "Observation", _count="100")
    assert {o["subject"]["reference"] for o in observations} == {"Patient/anna"}
    codes = sorted(o["code"]["coding"][0]["code"] for o in observations)
    assert codes == sorted(["85354-9", "8867-4", "14743-9", "29463-7"]), codes  # no duplicate of any
    devices = search(fhir_url, "Device")
    assert len(devices) == 3
    assert {d["patient"]["reference"] for d in devices} == {"Patient/anna"}
    assert list(store.rejected.list_blobs()) == []


def test_registration_is_idempotent_and_devices_list_filters_and_pages(stack: AppContext, admin_token: str):
    body = {"provider": "medisante", "providerDeviceId": "SN-1", "type": "glucometer", "model": "BG800"}
    status, first = call(devices_api.register_device, "POST", "devices", admin_token, body)
    assert status == 201
    status, again = call(devices_api.register_device, "POST", "devices", admin_token, body)
    assert (status, again["id"]) == (200, first["id"])
    for n in range(2, 6):
        call(devices_api.register_device, "POST", "devices", admin_token, {**body, "providerDeviceId": f"SN-{n}"})
    call(
        devices_api.register_device,
        "POST",
        "devices",
        admin_token,
        {"provider": "withings", "providerDeviceId": "W-1", "type": "scale"},
    )
    seen, token = [], None
    while True:
        params = {"provider": "medisante", "pageSize": "2"}
        if token:
            params["continuationToken"] = token
        status, page = call(devices_api.list_devices, "GET", "devices", admin_token, params=params)
        assert status == 200
        assert len(page["items"]) <= 2
        seen += [item["providerDeviceId"] for item in page["items"]]
        token = page["continuationToken"]
        if not token:
            break
    assert sorted(seen) == [f"SN-{n}" for n in range(1, 6)]
    status, got = call(devices_api.get_device, "GET", "devices/x", admin_token, route_params={"id": first["id"]})
    assert (status, got["providerDeviceId"]) == (200, "SN-1")
    status, error = call(devices_api.get_device, "GET", "devices/x", admin_token, route_params={"id": "nope"})
    assert status == 404
    assert "nope" in error["error"]["message"]


def test_unknown_patient_is_422_and_an_identifier_resolves(stack: AppContext, fhir_url: str, admin_token: str):
    status, error = assign(admin_token, "358000000000047", "blood-pressure-monitor", "nobody")
    assert status == 422
    assert "Patient/nobody" in error["error"]["message"]
    put_patient(fhir_url, "bob", ("urn:clinic:mrn", "MRN-7"))
    status, device = assign(admin_token, "358000000000047", "blood-pressure-monitor", "urn:clinic:mrn|MRN-7")
    assert (status, device["patientId"]) == (200, "bob")
    status, error = assign(admin_token, "900000000000001", "glucometer", "urn:clinic:mrn|MRN-404")
    assert status == 422


def test_assigned_to_another_patient_is_409_until_unassigned(stack: AppContext, fhir_url: str, admin_token: str):
    put_patient(fhir_url, "anna")
    put_patient(fhir_url, "bob")
    imei, device_type = FIXTURE_DEVICES["blood-pressure"]
    assert assign(admin_token, imei, device_type, "anna")[0] == 200
    assert assign(admin_token, imei, device_type, "anna")[0] == 200  # same patient again: harmless
    status, error = assign(admin_token, imei, device_type, "bob", valid_from=None)
    assert status == 409
    assert "unassign" in error["error"]["message"]
    device_id = registry_id("medisante", imei)
    status, _ = call(devices_api.unassign_device, "POST", "x", admin_token, route_params={"id": device_id})
    assert status == 204
    status, device = assign(admin_token, imei, device_type, "bob", valid_from=None)
    assert status == 200
    assert device["patientId"] == "bob"
    assert [a["patientId"] for a in device["assignments"]] == ["anna", "bob"]
    assert device["assignments"][0]["to"] is not None


def test_readings_before_and_after_a_reassignment_go_to_the_right_patients(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str
):
    put_patient(fhir_url, "anna")
    put_patient(fhir_url, "bob")
    imei, device_type = FIXTURE_DEVICES["weight"]
    now = dt.datetime.now(dt.UTC)
    assert (
        assign(admin_token, imei, device_type, "anna", valid_from=(now - dt.timedelta(hours=3)).isoformat())[0] == 200
    )
    before = payload_at("weight", "before-reassignment", now - dt.timedelta(hours=2))
    device_id = registry_id("medisante", imei)
    assert call(devices_api.unassign_device, "POST", "x", admin_token, route_params={"id": device_id})[0] == 204
    assert assign(admin_token, imei, device_type, "bob", valid_from=None)[0] == 200
    after = payload_at("weight", "after-reassignment", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    deliver(after)
    deliver(before)
    process(store)
    by_correlation = {
        o["identifier"][0]["value"].split("/")[0]: o["subject"]["reference"]
        for o in search(fhir_url, "Observation", _count="100")
    }
    assert by_correlation == {"before-reassignment": "Patient/anna", "after-reassignment": "Patient/bob"}


def test_reading_from_an_unassigned_device_is_parked_then_attributed_when_assigned(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str, capsys: pytest.CaptureFixture[str]
):
    receipt = deliver(fixture_text("glucose"))
    process(store)
    assert search(fhir_url, "Observation") == []
    assert list(store.rejected.list_blobs()) == []  # parked, not rejected
    assert cli.main(["parked"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["receiptId"], p["stale"]) for p in listed] == [(receipt, False)]
    assert "900000000000001" in listed[0]["deviceIdentifiers"]

    put_patient(fhir_url, "carla")
    imei, device_type = FIXTURE_DEVICES["glucose"]
    assert assign(admin_token, imei, device_type, "carla")[0] == 200
    assert process(store) == 1  # the assignment re-drove the parked record
    observations = search(fhir_url, "Observation")
    assert [o["subject"]["reference"] for o in observations] == ["Patient/carla"]
    assert list(stack.parked.all()) == []


def test_parked_reading_outside_the_new_assignment_stays_parked(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str
):
    deliver(fixture_text("glucose"))  # measured 2026-02-07
    process(store)
    put_patient(fhir_url, "carla")
    imei, device_type = FIXTURE_DEVICES["glucose"]
    assert assign(admin_token, imei, device_type, "carla", valid_from=None)[0] == 200  # from now on only
    assert process(store) == 0
    assert search(fhir_url, "Observation") == []
    assert len(list(stack.parked.all())) == 1


def test_revoked_or_unconsented_kinds_are_not_written_and_are_audited(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str
):
    put_patient(fhir_url, "dora")
    imei, _ = FIXTURE_DEVICES["blood-pressure"]
    # A glucometer consents glucose only: this device's blood pressure and pulse are outside it.
    assert assign(admin_token, imei, "glucometer", "dora")[0] == 200
    receipt = deliver(fixture_text("blood-pressure"))
    process(store)
    assert search(fhir_url, "Observation") == []
    audit = stack.consent_audit.get(receipt)
    assert audit is not None
    assert {(w.kind, w.reason, w.count) for w in audit.withheld} == {
        ("blood-pressure", "blood-pressure is outside the consented scopes", 1),
        ("heart-rate", "heart-rate is outside the consented scopes", 1),
    }

    status, record = call(
        consents_api.grant_consent,
        "POST",
        "consents",
        admin_token,
        {"patientId": "dora", "source": "medisante", "scopes": ["blood-pressure", "heart-rate"]},
    )
    assert status == 200
    assert record["scopes"] == ["blood-pressure", "heart-rate"]
    assert record["recordedBy"] == "iomt-admin-local"
    status, revoked = call(consents_api.revoke_consent, "POST", "x", admin_token, route_params={"id": record["id"]})
    assert (status, revoked["status"]) == (200, "revoked")
    assert revoked["revokedAt"]
    receipt = deliver(payload_at("blood-pressure", "after-revocation", dt.datetime.now(dt.UTC)))
    process(store)
    assert search(fhir_url, "Observation") == []
    audit = stack.consent_audit.get(receipt)
    assert audit is not None
    assert {w.reason for w in audit.withheld} == {"consent for medisante is revoked"}

    status, listed = call(consents_api.list_consents, "GET", "consents", admin_token, params={"patientId": "dora"})
    assert status == 200
    assert [r["status"] for r in listed["items"]] == ["revoked"]


def test_consent_grant_validates_scopes_and_patient(stack: AppContext, fhir_url: str, admin_token: str):
    status, error = call(
        consents_api.grant_consent,
        "POST",
        "consents",
        admin_token,
        {"patientId": "x", "source": "medisante", "scopes": ["blood-pressure", "telepathy"]},
    )
    assert status == 400
    assert "scopes" in error["error"]["message"]
    status, error = call(
        consents_api.grant_consent,
        "POST",
        "consents",
        admin_token,
        {"patientId": "ghost", "source": "withings", "scopes": ["steps"]},
    )
    assert status == 422
    status, error = call(consents_api.get_consent, "GET", "x", admin_token, route_params={"id": "withings.ghost"})
    assert status == 404


ADMIN_ENDPOINTS = [
    (devices_api.register_device, "POST", {}),
    (devices_api.list_devices, "GET", {}),
    (devices_api.get_device, "GET", {"id": "device-1"}),
    (devices_api.assign_device, "POST", {}),
    (devices_api.unassign_device, "POST", {"id": "device-1"}),
    (consents_api.grant_consent, "POST", {}),
    (consents_api.list_consents, "GET", {}),
    (consents_api.get_consent, "GET", {"id": "medisante.p1"}),
    (consents_api.revoke_consent, "POST", {"id": "medisante.p1"}),
]


def forged_token(**overrides: Any) -> str:
    """Well formed, but signed by a key the issuer never published (or with wrong claims)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {
        "iss": local_admin_issuer(2),
        "aud": LOCAL_ADMIN_AUDIENCE,
        "sub": "mallory",
        "exp": now + 600,
        "roles": ["IoMT.Admin"],
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "not-a-published-key"})


def issuer_signed_token(**overrides: Any) -> str:
    """Signed with the local issuer's own published key, with the given claims changed."""
    key = serialization.load_pem_private_key((REPO / "local" / ".data" / "oidc" / "signing-key.pem").read_bytes(), None)
    kid = jwt.PyJWKClient(f"{local_issuer()}/discovery/v2.0/keys").get_signing_keys()[0].key_id
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {
        "iss": local_admin_issuer(2),
        "aud": LOCAL_ADMIN_AUDIENCE,
        "sub": "iomt-admin-local",
        "exp": now + 600,
        "roles": ["IoMT.Admin"],
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


@pytest.mark.parametrize(("handler", "method", "route"), ADMIN_ENDPOINTS, ids=lambda v: getattr(v, "__name__", ""))
def test_admin_endpoints_refuse_missing_invalid_and_role_less_tokens(
    handler, method: str, route: dict[str, str], no_role_token: str
):
    now = int(dt.datetime.now(dt.UTC).timestamp())
    cases = {
        None: 401,
        "not-a-jwt": 401,
        forged_token(): 401,  # signed by a key the issuer does not publish (e.g. rotated out)
        issuer_signed_token(exp=now - 3600): 401,  # expired
        issuer_signed_token(aud="api://another-app"): 401,
        issuer_signed_token(iss="https://login.example.org/other-tenant/v2.0"): 401,
        issuer_signed_token(roles=["Something.Else"]): 403,
        no_role_token: 403,
    }
    for token, expected in cases.items():
        status, body = call(handler, method, "x", token, route_params=route)
        assert status == expected, (token, body)
        assert body["error"]["code"] in ("unauthorized", "forbidden")


BODY_ENDPOINTS = [
    (devices_api.register_device, {"provider": "medisante", "providerDeviceId": "SN-1", "type": "glucometer"}, "type"),
    (
        devices_api.assign_device,
        {"deviceId": "1", "deviceProvider": "medisante", "deviceType": "scale", "assignedPatientId": "p"},
        "deviceType",
    ),
    (consents_api.grant_consent, {"patientId": "p", "source": "withings", "scopes": ["steps"]}, "source"),
]


@pytest.mark.parametrize(("handler", "good", "field"), BODY_ENDPOINTS, ids=lambda v: getattr(v, "__name__", ""))
def test_admin_bodies_wrong_type_oversized_or_malformed_are_4xx_never_500(
    stack: AppContext, admin_token: str, handler, good: dict[str, Any], field: str
):
    text = json.dumps(good).encode()
    assert call(handler, "POST", "x", admin_token, text, headers={"content-type": "text/plain"})[0] == 415
    assert call(handler, "POST", "x", admin_token, text, headers={"content-type": ""})[0] == 415
    status, error = call(handler, "POST", "x", admin_token, text[:-5])
    assert status == 400
    assert "malformed JSON" in error["error"]["message"]
    status, error = call(handler, "POST", "x", admin_token, b"\xff\xfe{}")
    assert status == 400
    status, error = call(handler, "POST", "x", admin_token, b"[]")
    assert status == 400
    status, error = call(handler, "POST", "x", admin_token, {**good, field: "toaster"})
    assert status == 400
    assert error["error"]["details"][0]["field"] == field
    assert "toaster" not in json.dumps(error)  # names the field, never echoes the value
    assert call(handler, "POST", "x", admin_token, {**good, "extra": 1})[0] == 400
    assert call(handler, "POST", "x", admin_token, b"")[0] == 400
    huge = json.dumps({**good, "padding": "x" * (stack.settings.max_body_bytes + 1)}).encode()
    assert call(handler, "POST", "x", admin_token, huge)[0] == 413


def test_list_parameters_are_checked(stack: AppContext, admin_token: str):
    status, error = call(devices_api.list_devices, "GET", "x", admin_token, params={"pageSize": "0"})
    assert status == 400
    assert "pageSize" in error["error"]["message"]
    assert call(devices_api.list_devices, "GET", "x", admin_token, params={"provider": "fitbit"})[0] == 400
    status, _ = call(devices_api.list_devices, "GET", "x", admin_token, params={"continuationToken": "garbage"})
    assert status == 400
    assert call(consents_api.list_consents, "GET", "x", admin_token, params={"status": "maybe"})[0] == 400


def test_parked_readings_past_the_lookback_are_reported_and_not_attributed_automatically(
    stack: AppContext,
    store: RawRecordStore,
    fhir_url: str,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("ATTRIBUTION_LOOKBACK_DAYS", "0")
    reset_context()
    try:
        receipt = deliver(fixture_text("glucose"))
        process(store)
        put_patient(fhir_url, "carla")
        imei, device_type = FIXTURE_DEVICES["glucose"]
        assert assign(admin_token, imei, device_type, "carla")[0] == 200
        assert process(store) == 0  # nothing re-driven: past the look-back
        assert search(fhir_url, "Observation") == []
        assert cli.main(["parked", "--stale"]) == 0
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(p["receiptId"], p["stale"]) for p in listed] == [(receipt, True)]
        # Manual handling: replay it by receipt; the assignment now covers it.
        assert cli.main(["replay", "--from", "archive", "--receipt", receipt]) == 0
        assert process(store) == 1
        assert [o["subject"]["reference"] for o in search(fhir_url, "Observation")] == ["Patient/carla"]
    finally:
        monkeypatch.undo()
        reset_context()


def test_fhir_standard_payload_is_attributed_by_its_device_identifier(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str
):
    from tests.helpers.common import FHIR_BUNDLE

    put_patient(fhir_url, "erik")
    assert assign(admin_token, "358000000000047", "scale", "erik")[0] == 200
    response = medisante_api.medisante_webhook(
        http_request(
            "POST",
            "http://localhost/api/health-data/medisante/fhir-json",
            body=json.dumps(FHIR_BUNDLE).encode(),
            headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/fhir+json"},
            route_params={"format": "fhir-json"},
        )
    )
    assert response.status_code == 202
    process(store)
    observations = search(fhir_url, "Observation")
    assert [(o["code"]["coding"][0]["code"], o["subject"]["reference"]) for o in observations] == [
        ("29463-7", "Patient/erik")
    ]
