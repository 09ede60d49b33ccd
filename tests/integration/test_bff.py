"""The mobile app's BFF end to end on the local stack: users, login, sessions, device assignment,
HealthKit uploads into FHIR, deletions, logout; both identity adapters; abuse."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
import requests

from shared.api import bff as bff_api
from shared.api import devices as devices_api
from shared.api import healthkit as hk_api
from shared.api import pipeline as pipeline_api
from shared.bff.identity import DirectoryIdentityProvider
from shared.bff.sessions import SessionStore
from shared.composition import AppContext, reset_context
from shared.localstack import LOCAL_INGEST_CLIENT, local_issuer
from shared.pipeline.store import RawRecordStore
from tests.helpers.app import PASSWORD, UPLOAD, create_user, login, request, upload
from tests.helpers.clinic import call
from tests.helpers.common import answer
from tests.helpers.stack import client_token, drive_queue, put_patient, search

WATCH = "com.apple.health.142CD7CC-2F1B-4C3D-9E8F-7A6B5C4D3E2F"


@pytest.fixture
def stack(clean_cosmos: AppContext, clean_fhir: str, store: RawRecordStore) -> AppContext:
    clean_cosmos.reset_outbox.clear_messages()
    put_patient(clean_fhir, "anna")
    put_patient(clean_fhir, "bob")
    return clean_cosmos










def process(store: RawRecordStore) -> int:
    return drive_queue(store, pipeline_api.process_raw_record)


def by_code(fhir_url: str, patient: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for observation in search(fhir_url, "Observation", subject=f"Patient/{patient}", _count="200"):
        found.setdefault(observation["code"]["coding"][0]["code"], []).append(observation)
    return found


def test_the_whole_app_flow(stack: AppContext, store: RawRecordStore, fhir_url: str, monkeypatch: pytest.MonkeyPatch):
    create_user(monkeypatch, "anna@example.org", "anna")
    response = request(bff_api.login, "POST", "x", body={"username": "anna@example.org", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    flags = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert {"HttpOnly", "Secure", "SameSite", "Path"} <= flags
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    sid = cookie.split(";", 1)[0].split("=", 1)[1]
    assert sid not in response.get_body().decode()  # no token in the body
    assert "token" not in json.loads(response.get_body())

    status, profile = answer(request(bff_api.profile, "GET", "x", sid=sid))
    assert status == 200
    assert (profile["patient_id"], profile["email"]) == ("anna", "anna@example.org")
    assert profile["sub"].startswith("user-")

    assign_body = {
        "deviceId": WATCH,
        "deviceProvider": "healthkit",
        "deviceType": "smartwatch",
        "name": "Anna's Apple Watch",
        "assignedPatientId": "bob",  # the app cannot choose: the session's patient is used
    }
    status, device = answer(request(devices_api.assign_device, "POST", "x", sid=sid, body=assign_body))
    assert (status, device["patientId"]) == (200, "anna")

    status, outcome = upload(sid, UPLOAD)
    assert status == 202, outcome
    assert (outcome["accepted"], outcome["rejected"], outcome["deleted"]) == (5, [], 1)
    process(store)
    codes = by_code(fhir_url, "anna")
    [bp] = codes["85354-9"]
    assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in bp["component"]} == {
        "8480-6": 128,
        "8462-4": 84,
    }
    [spo2] = codes["2708-6"]
    assert (spo2["valueQuantity"]["value"], spo2["valueQuantity"]["code"]) == (97, "%")
    [mass] = codes["29463-7"]
    assert (round(mass["valueQuantity"]["value"], 2), mass["valueQuantity"]["code"]) == (69.99, "kg")
    log = stack.cosmos.get_container_client("deletion-log").read_item(outcome["receiptId"], outcome["receiptId"])
    assert log["unknown"] == ["DEADBEEF-0000-4000-8000-000000000001"]

    # The same upload again creates nothing new.
    assert upload(sid, UPLOAD)[0] == 202
    process(store)
    assert sum(len(v) for v in by_code(fhir_url, "anna").values()) == sum(len(v) for v in codes.values())

    heart_rate_uuid = UPLOAD["samples"][0]["uuid"]
    status, outcome = upload(sid, {"deleted": [{"uuid": heart_rate_uuid}]})
    assert (status, outcome["accepted"], outcome["deleted"]) == (202, 0, 1)
    process(store)
    [heart_rate] = by_code(fhir_url, "anna")["8867-4"]
    assert heart_rate["status"] == "entered-in-error"
    assert upload(sid, {"deleted": [{"uuid": heart_rate_uuid}]})[0] == 202  # again: harmless
    process(store)

    logout = request(bff_api.logout, "POST", "x", sid=sid)
    assert logout.status_code == 204
    assert "Max-Age=0" in logout.headers["Set-Cookie"]
    assert answer(request(bff_api.profile, "GET", "x", sid=sid))[0] == 401
    assert upload(sid, UPLOAD)[0] == 401


def test_iphone_and_watch_steps_stay_two_observations(stack: AppContext, store: RawRecordStore, fhir_url: str):
    steps = next(s for s in UPLOAD["samples"] if s["type"] == "HKQuantityTypeIdentifierStepCount")
    from_watch = {**copy.deepcopy(steps), "uuid": "11111111-2222-4333-8444-555555555555"}
    from_watch["source"] = {"name": "Anna's Apple Watch", "bundleIdentifier": WATCH}
    document = {"permissions": ["HKQuantityTypeIdentifierStepCount"], "samples": [steps, from_watch]}
    status, outcome = answer(
        request(
            hk_api.healthkit_ingest,
            "POST",
            "x",
            body=document,
            route_params={"format": "healthkit-json"},
            headers={"authorization": f"Bearer {client_token(LOCAL_INGEST_CLIENT)}", "x-patient-id": "anna"},
        )
    )
    assert (status, outcome["accepted"]) == (202, 2)
    process(store)
    observations = by_code(fhir_url, "anna")["55423-8"]
    assert sorted(o["valueQuantity"]["value"] for o in observations) == [1843, 1843]  # never summed
    assert len({o["device"]["reference"] for o in observations}) == 2


def test_service_to_service_endpoint_needs_the_ingest_role_and_a_known_patient(stack: AppContext, admin_token: str):
    document = {"permissions": ["HKQuantityTypeIdentifierHeartRate"], "samples": [UPLOAD["samples"][0]]}
    ingest_token = client_token(LOCAL_INGEST_CLIENT)

    def send(token: str | None, patient: str | None) -> int:
        headers = {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if patient:
            headers["x-patient-id"] = patient
        return request(
            hk_api.healthkit_ingest,
            "POST",
            "x",
            body=document,
            route_params={"format": "healthkit-json"},
            headers=headers,
        ).status_code

    assert send(None, "anna") == 401
    assert send(admin_token, "anna") == 403  # an admin is not an ingesting BFF
    assert send(ingest_token, None) == 400
    assert send(ingest_token, "nobody") == 422
    assert send(ingest_token, "anna") == 202


def test_vetting_accepts_the_good_samples_and_lists_each_refusal(
    stack: AppContext, store: RawRecordStore, fhir_url: str, monkeypatch: pytest.MonkeyPatch, admin_token: str
):
    create_user(monkeypatch, "anna@example.org", "anna")
    sid = login("anna@example.org")
    # The watch belongs to another patient (assigned by the clinic).
    status, _ = call(
        devices_api.assign_device,
        "POST",
        "x",
        admin_token,
        {"deviceId": WATCH, "deviceProvider": "healthkit", "deviceType": "smartwatch", "assignedPatientId": "bob"},
    )
    assert status == 200
    samples = copy.deepcopy(UPLOAD["samples"])
    heart_rate, pressure, spo2, steps, mass = samples
    bad_date = {**copy.deepcopy(steps), "uuid": "22222222-2222-4222-8222-222222222222", "startDate": "yesterday"}
    not_a_number = {**copy.deepcopy(steps), "uuid": "33333333-3333-4333-8333-333333333333", "value": "NaN"}
    negative = {**copy.deepcopy(mass), "uuid": "44444444-4444-4444-8444-444444444444", "value": -80}
    no_uuid = {k: v for k, v in steps.items() if k != "uuid"}
    permissions = [p for p in UPLOAD["permissions"] if p != "HKQuantityTypeIdentifierBodyMass"]
    document = {
        "permissions": permissions,
        "samples": [heart_rate, pressure, spo2, steps, mass, bad_date, not_a_number, negative, no_uuid],
    }
    status, outcome = upload(sid, document)
    assert status == 202
    reasons = {item["uuid"]: item["reason"] for item in outcome["rejected"]}
    assert "another patient" in reasons[heart_rate["uuid"]]  # the watch is bob's
    assert "another patient" in reasons[spo2["uuid"]]
    assert "not among the HealthKit types" in reasons[mass["uuid"]]
    assert "startDate" in reasons[bad_date["uuid"]]
    assert "finite" in reasons[not_a_number["uuid"]]
    assert "plausible" in reasons[negative["uuid"]]
    assert "uuid" in reasons["samples[8]"]
    assert outcome["accepted"] == 2  # blood pressure (entered by hand) and the iPhone's steps
    process(store)
    written = {o["identifier"][0]["value"] for o in search(fhir_url, "Observation", _count="100")}
    assert written == {pressure["uuid"], steps["uuid"]}  # nothing beyond the accepted samples
    consent = stack.consents.find("anna", "healthkit")
    assert consent is not None
    assert "body-weight" not in consent.scopes


def test_bad_uploads_are_4xx(stack: AppContext, monkeypatch: pytest.MonkeyPatch):
    create_user(monkeypatch, "anna@example.org", "anna")
    sid = login("anna@example.org")
    status, error = upload(sid, UPLOAD, format_name="garmin-json")
    assert status == 400
    assert "healthkit-json" in error["error"]["message"]
    many = {"samples": [UPLOAD["samples"][0]] * 10_000}
    assert upload(sid, many)[0] == 413
    response = request(
        hk_api.upload_health_data,
        "POST",
        "x",
        sid=sid,
        body=b'{"samples": [NaN]}',
        route_params={"format": "healthkit-json"},
    )
    assert response.status_code == 400
    status, error = upload(sid, {"permissions": UPLOAD["permissions"], "samples": [{"uuid": "nope"}]})
    assert status == 422
    assert error["error"]["details"][0]["uuid"] == "samples[0]"
    assert upload(sid, {"samples": "all of them"})[0] == 400
    wrong_type = request(
        hk_api.upload_health_data, "POST", "x", sid=sid, body=b"<xml/>", route_params={"format": "healthkit-json"},
        headers={"content-type": "application/xml"},
    )  # fmt: skip
    assert wrong_type.status_code == 415


def test_sessions_refuse_missing_forged_and_expired_cookies(stack: AppContext, monkeypatch: pytest.MonkeyPatch):
    create_user(monkeypatch, "anna@example.org", "anna")
    assert answer(request(bff_api.profile, "GET", "x"))[0] == 401
    assert answer(request(bff_api.profile, "GET", "x", sid="forged-session-id"))[0] == 401
    assert answer(request(bff_api.profile, "GET", "x", headers={"cookie": 'sid="x; y'}))[0] == 401
    live = stack.sessions
    profile = stack.identity.authenticate("anna@example.org", PASSWORD)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    stale = SessionStore(live.container, live.idle, live.absolute, clock=lambda: long_ago)
    sid, _ = stale.create(profile)  # idle for an hour, longer than the idle limit
    assert answer(request(bff_api.profile, "GET", "x", sid=sid))[0] == 401
    ancient = SessionStore(live.container, live.idle, live.absolute, clock=lambda: long_ago - dt.timedelta(days=2))
    sid, _ = ancient.create(profile)
    assert answer(request(bff_api.profile, "GET", "x", sid=sid))[0] == 401
    fresh = login("anna@example.org")
    cross_site = request(bff_api.profile, "GET", "x", sid=fresh, headers={"origin": "https://evil.example"})
    assert cross_site.status_code == 403


def test_login_brute_force_is_throttled_per_account_and_per_address(stack: AppContext, monkeypatch: pytest.MonkeyPatch):
    create_user(monkeypatch, "anna@example.org", "anna")

    def attempt(username: str, password: str, address: str):
        return request(
            bff_api.login,
            "POST",
            "x",
            body={"username": username, "password": password},
            headers={"x-forwarded-for": address},
        )

    for n in range(5):
        status, error = answer(attempt("anna@example.org", f"wrong-{n}", f"198.51.100.{n}"))
        assert status == 401
        assert error["error"]["message"] == "invalid username or password"
    blocked = attempt("anna@example.org", PASSWORD, "198.51.100.99")  # even the right password
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    # One address trying many accounts.
    for n in range(20):
        assert attempt(f"user{n}@example.org", "x", "192.0.2.1").status_code == 401
    assert attempt("someone@example.org", "x", "192.0.2.1").status_code == 429
    status, error = answer(attempt("nobody@example.org", "x", "192.0.2.2"))
    assert (status, error["error"]["message"]) == (401, "invalid username or password")  # no enumeration


def test_directory_password_reset_by_single_use_expiring_token(stack: AppContext, monkeypatch: pytest.MonkeyPatch):
    create_user(monkeypatch, "anna@example.org", "anna")
    outbox = stack.reset_outbox

    def reset(email: str) -> int:
        return request(bff_api.reset_password, "POST", "x", body={"email": email}).status_code

    assert reset("nobody@example.org") == 204
    assert list(outbox.peek_messages()) == []
    assert reset("anna@example.org") == 204
    [message] = outbox.receive_messages()
    token = json.loads(message.content)["token"]

    def confirm(token: str, password: str) -> int:
        body = {"token": token, "newPassword": password}
        return request(bff_api.confirm_password_reset, "POST", "x", body=body).status_code

    assert confirm(token, "short") == 400
    assert confirm(token, "a brand new password") == 204
    login("anna@example.org", "a brand new password")
    assert confirm(token, "yet another password") == 400  # single use

    assert reset("anna@example.org") == 204
    token = json.loads(next(iter(outbox.receive_messages())).content)["token"]
    directory = stack.directory
    later = DirectoryIdentityProvider(
        directory.users,
        directory.outbox,
        directory.token_lifetime,
        clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=2),
    )
    with pytest.raises(Exception, match="expired"):
        later.confirm_password_reset(token, "too late a password")
    assert reset("anna@example.org") == 204  # the third in the window for this email
    assert reset("anna@example.org") == 429


def test_oidc_identity_provider(stack: AppContext, monkeypatch: pytest.MonkeyPatch):
    issuer = local_issuer()
    monkeypatch.setenv("IDENTITY_PROVIDER", "oidc")
    monkeypatch.setenv("OIDC_TOKEN_URL", f"{issuer}/oauth2/v2.0/token")
    monkeypatch.setenv("OIDC_USERINFO_URL", f"{issuer}/oidc/userinfo")
    monkeypatch.setenv("OIDC_PASSWORD_RESET_URL", f"{issuer}/password-reset")
    reset_context()
    try:
        sid = login("anna@example.org", "local-patient-password")
        status, profile = answer(request(bff_api.profile, "GET", "x", sid=sid))
        assert status == 200
        assert (profile["sub"], profile["patient_id"], profile["name"]) == ("oidc-user-anna", "anna", "Anna Example")
        status, error = answer(
            request(bff_api.login, "POST", "x", body={"username": "anna@example.org", "password": "wrong"})
        )
        assert (status, error["error"]["message"]) == (401, "invalid username or password")
        no_patient = request(
            bff_api.login, "POST", "x", body={"username": "nopatient@example.org", "password": "local-patient-password"}
        )
        assert no_patient.status_code == 403
        before = requests.get(f"{issuer}/password-reset/requests", timeout=5).json()["emails"]
        assert request(bff_api.reset_password, "POST", "x", body={"email": "anna@example.org"}).status_code == 204
        assert request(bff_api.reset_password, "POST", "x", body={"email": "ghost@example.org"}).status_code == 204
        after = requests.get(f"{issuer}/password-reset/requests", timeout=5).json()["emails"]
        assert after[len(before) :] == ["anna@example.org"]
        confirm = request(
            bff_api.confirm_password_reset, "POST", "x", body={"token": "x" * 20, "newPassword": "y" * 12}
        )
        assert confirm.status_code == 404  # completed at the provider
    finally:
        monkeypatch.undo()
        reset_context()
