"""Integrity under attack and races: no patient can touch another's data, no race loses a
grant or lets more password checks through than the limit, odd input is a 4xx that names the
problem, and the logs carry no person's identifier. Everything runs on the local stack."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import logging
import threading
from collections import Counter
from typing import Any

import jwt
import pytest
import requests

from shared import cli
from shared.api import bff as bff_api
from shared.api import callers
from shared.api import devices as devices_api
from shared.api import medisante as medisante_api
from shared.api import withings as withings_api
from shared.composition import AppContext, reset_context
from shared.consent.models import consent_id
from shared.devices.types import DEVICE_TYPE_KINDS, registry_id
from shared.localstack import (
    LOCAL_ADMIN_AUDIENCE,
    LOCAL_ADMIN_CLIENT,
    LOCAL_API_CLIENT_ID,
    LOCAL_TENANT_ID,
    local_admin_issuer,
    local_issuer,
)
from shared.pipeline.store import RawRecordStore
from tests.helpers.app import PASSWORD, UPLOAD, create_user, login, upload
from tests.helpers.clinic import assign, deliver, fixture_text, payload_at, process
from tests.helpers.common import MEDISANTE_KEY, answer, http_request, run_together
from tests.helpers.stack import client_token, put_patient, search, send

BP_IMEI = "358000000000047"
EXCEPTION_NAME = ("Error", "Exception", "Traceback")


@pytest.fixture
def stack(clean_cosmos: AppContext, clean_fhir: str, store: RawRecordStore) -> AppContext:
    for patient in ("anna", "bob", "carl"):
        put_patient(clean_fhir, patient)
    return clean_cosmos




# -- 1. a patient cannot take a clinic's device ----------------------------------------------------


def test_a_patient_cannot_assign_a_clinic_device_to_themselves(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str, monkeypatch: pytest.MonkeyPatch
):
    assert assign(admin_token, BP_IMEI, "blood-pressure-monitor", "anna")[0] == 200
    device_id = registry_id("medisante", BP_IMEI)
    assert (
        answer(send(devices_api.unassign_device, "POST", "x", token=admin_token, route_params={"id": device_id}))[0]
        == 204
    )

    create_user(monkeypatch, "bob@example.org", "bob")
    sid = login("bob@example.org")
    body = {"deviceId": BP_IMEI, "deviceProvider": "medisante", "deviceType": "blood-pressure-monitor"}
    status, error = answer(
        send(devices_api.assign_device, "POST", "x", sid=sid, body={**body, "assignedPatientId": "x"})
    )
    assert status == 403
    assert "assigned by the clinic" in error["error"]["message"]
    status, device = answer(send(devices_api.get_device, "GET", "x", token=admin_token, route_params={"id": device_id}))
    assert device["patientId"] is None  # nothing changed

    # The clinic's next assignment works, and the monitor's readings go to that patient.
    assert assign(admin_token, BP_IMEI, "blood-pressure-monitor", "carl", valid_from=None)[0] == 200
    deliver(payload_at("blood-pressure", "measured-after-carls-assignment", dt.datetime.now(dt.UTC)))
    process(store)
    assert {o["subject"]["reference"] for o in search(fhir_url, "Observation")} == {"Patient/carl"}


# -- 2. an Observation never changes subject --------------------------------------------------------


def test_another_patient_cannot_overwrite_or_delete_an_observation_by_reusing_its_uuid(
    stack: AppContext, store: RawRecordStore, fhir_url: str, monkeypatch: pytest.MonkeyPatch
):
    create_user(monkeypatch, "anna@example.org", "anna")
    create_user(monkeypatch, "bob@example.org", "bob")
    anna, bob = login("anna@example.org"), login("bob@example.org", address="203.0.113.8")
    heart_rate = copy.deepcopy(UPLOAD["samples"][0])
    heart_rate.pop("device", None)
    heart_rate.pop("source", None)
    permissions = ["HKQuantityTypeIdentifierHeartRate"]
    assert upload(anna, {"permissions": permissions, "samples": [heart_rate]})[0] == 202
    process(store)

    forged = {**heart_rate, "value": heart_rate["value"] + 40}
    assert upload(bob, {"permissions": permissions, "samples": [forged]})[0] == 202
    assert upload(bob, {"deleted": [{"uuid": heart_rate["uuid"]}]})[0] == 202
    process(store)

    [annas] = search(fhir_url, "Observation", subject="Patient/anna")
    assert (annas["valueQuantity"]["value"], annas["status"]) == (heart_rate["value"], "final")
    [bobs] = search(fhir_url, "Observation", subject="Patient/bob")
    assert bobs["id"] != annas["id"]
    assert bobs["status"] == "entered-in-error"  # bob's deletion touched only bob's own reading
    assert bobs["identifier"] == annas["identifier"]  # the same source id, two patients, two resources


# -- 3. concurrent read-modify-writes lose nothing -------------------------------------------------


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_clinic_assignments_keep_every_kind_in_the_consent(stack: AppContext, admin_token: str, trial: int):
    devices = [
        (f"35800000000{trial}001", "blood-pressure-monitor"),
        (f"35800000000{trial}002", "glucometer"),
        (f"35800000000{trial}003", "scale"),
        (f"35800000000{trial}004", "thermometer"),
    ]
    results = run_together([functools.partial(assign, admin_token, imei, kind, "anna") for imei, kind in devices])
    assert [status for status, _ in results] == [200] * 4
    record = stack.consents.get(consent_id("medisante", "anna"))
    expected = {kind.value for _, device_type in devices for kind in DEVICE_TYPE_KINDS[device_type]}
    assert set(record.scopes) == expected
    assert len(record.history) == 4


def test_concurrent_wrong_passwords_are_checked_at_most_the_limit(stack: AppContext, monkeypatch: pytest.MonkeyPatch):
    create_user(monkeypatch, "anna@example.org", "anna")
    limit = stack.settings.login_max_failures_per_account

    def wrong(n: int) -> int:
        body = {"username": "anna@example.org", "password": f"wrong-{n}"}
        headers = {"x-forwarded-for": f"198.51.100.{n}"}
        return send(bff_api.login, "POST", "x", body=body, headers=headers).status_code

    statuses = Counter(run_together([functools.partial(wrong, n) for n in range(40)]))
    assert statuses == Counter({401: limit, 429: 40 - limit})


def test_the_address_limit_counts_the_hop_our_front_end_added_not_what_the_caller_wrote(
    stack: AppContext, monkeypatch: pytest.MonkeyPatch
):
    limit = stack.settings.login_max_failures_per_address

    def attempt(n: int) -> int:
        # The caller writes a new address each time; the front end appends the real one.
        headers = {"x-forwarded-for": f"10.9.{n}.1, 192.0.2.44"}
        body = {"username": f"user{n}@example.org", "password": "wrong"}
        return send(bff_api.login, "POST", "x", body=body, headers=headers).status_code

    assert [attempt(n) for n in range(limit)] == [401] * limit
    assert attempt(limit) == 429


def test_client_address_takes_the_configured_hop_from_the_right():
    def address(header: str, hops: int) -> str:
        return callers.client_address(http_request("GET", "http://x/", headers={"x-forwarded-for": header}), hops)

    assert address("6.6.6.6, 203.0.113.5", 1) == "203.0.113.5"
    assert address("6.6.6.6, 203.0.113.5:4711, 10.0.0.2", 2) == "203.0.113.5"
    assert address("[2001:db8::1]:443", 1) == "2001:db8::1"
    assert address("203.0.113.5", 3) == "203.0.113.5"  # fewer hops than proxies: the first one wrote it
    assert address("203.0.113.5", 0) == "unknown"


# -- inputs that must be 4xx, never 500 -------------------------------------------------------------


def nested_xml(depth: int) -> str:
    return "<a>" * depth + "x" + "</a>" * depth


@pytest.mark.parametrize("format_name", ["medisante-xml", "fhir-xml"])
def test_deeply_nested_xml_is_a_400_naming_the_depth(store: RawRecordStore, format_name: str, tmp_path, capsys):
    response = medisante_api.medisante_webhook(
        http_request(
            "POST",
            f"http://localhost/api/health-data/medisante/{format_name}",
            body=nested_xml(1000).encode(),
            headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/xml"},
            route_params={"format": format_name},
        )
    )
    status, error = answer(response)
    assert status == 400
    assert "nested deeper than" in error["error"]["message"]
    path = tmp_path / "deep.xml"
    path.write_text(nested_xml(1000))
    assert cli.main(["convert", "--source", "medisante", "--format", format_name, str(path)]) == 2
    assert "nested deeper than" in capsys.readouterr().err


@pytest.mark.parametrize("username", ["a/b", "back\\slash", "what?", "hash#tag", "tab\there"])
def test_any_username_is_a_normal_counted_failed_login(stack: AppContext, username: str):
    for _ in range(stack.settings.login_max_failures_per_account):
        status, error = answer(send(bff_api.login, "POST", "x", body={"username": username, "password": "x" * 12}))
        assert (status, error["error"]["message"]) == (401, "invalid username or password")
    assert send(bff_api.login, "POST", "x", body={"username": username, "password": "x" * 12}).status_code == 429


def test_a_deletion_without_a_uuid_is_refused_at_ingress_and_not_counted(
    stack: AppContext, store: RawRecordStore, monkeypatch: pytest.MonkeyPatch
):
    create_user(monkeypatch, "anna@example.org", "anna")
    sid = login("anna@example.org")
    status, error = upload(sid, {"deleted": [{"foo": 1}]})
    assert status == 422
    assert error["error"]["details"] == [{"uuid": "deleted[0]", "reason": "deleted entry has no valid uuid"}]
    status, outcome = upload(sid, {"deleted": [{"uuid": UPLOAD["samples"][0]["uuid"]}, {"uuid": "nope"}]})
    assert (status, outcome["deleted"]) == (202, 1)
    assert outcome["rejected"] == [{"uuid": "deleted[1]", "reason": "deleted entry has no valid uuid"}]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("WITHINGS_NOTIFY_ALLOWED_NETWORKS", "10.0.0.0/8,not-a-network"),
        ("MEDISANTE_API_KEY_HASHES", "abc"),
        ("CLIENT_ADDRESS_TRUSTED_HOPS", "many"),
    ],
)
def test_a_bad_list_setting_is_one_configuration_error_naming_it(monkeypatch: pytest.MonkeyPatch, setting, value):
    monkeypatch.setenv(setting, value)
    reset_context()
    try:
        request = http_request(
            "POST",
            "http://localhost/api/withings/notify/x",
            body=b"userid=1&appli=4",
            headers={"content-type": "application/x-www-form-urlencoded"},
            route_params={"secret": "x"},
        )
        status, error = answer(withings_api.withings_notify(request))
    finally:
        monkeypatch.undo()
        reset_context()
    assert (status, error["error"]["code"]) == (500, "configuration_error")
    assert setting in error["error"]["message"]
    assert value not in error["error"]["message"]


def foreign_token(**claims: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = {"iss": local_admin_issuer(2), "aud": LOCAL_ADMIN_AUDIENCE, "sub": "x", "exp": 2_000_000_000, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "unknown-key"})


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", foreign_token(), jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")],
    ids=["garbage", "three-parts", "unknown-key", "hs256"],
)
def test_401_answers_say_what_is_wrong_without_library_names(stack: AppContext, token: str):
    status, error = answer(send(devices_api.list_devices, "GET", "x", token=token))
    assert status == 401
    message = error["error"]["message"]
    assert message.startswith("the bearer token is not valid: ")
    assert not any(word in message for word in EXCEPTION_NAME), message


# -- logs --------------------------------------------------------------------------------------------


PERSON = "patient-zq7x"
EMAIL = "zq7x.person@example.org"
WITHINGS_USER = "98765432"


def test_no_person_identifier_reaches_a_log_line_at_info_or_above(
    stack: AppContext, store: RawRecordStore, admin_token: str, monkeypatch: pytest.MonkeyPatch, caplog
):
    from shared.sources.withings.client import Tokens

    caplog.set_level(logging.INFO)
    put_patient(stack.settings.fhir_url, PERSON)
    create_user(monkeypatch, EMAIL, PERSON)
    sid = login(EMAIL)
    upload(sid, {**UPLOAD, "deleted": []})
    assert assign(admin_token, BP_IMEI, "blood-pressure-monitor", PERSON)[0] == 200
    deliver(fixture_text("blood-pressure"))
    process(store)
    send(bff_api.login, "POST", "x", body={"username": EMAIL, "password": "wrong password!"})
    tokens = stack.withings_tokens
    tokens.save(Tokens(WITHINGS_USER, "access", "refresh", 2_000_000_000.0, "user.metrics"))
    assert tokens.load(WITHINGS_USER).access_token == "access"
    tokens.delete(WITHINGS_USER)
    assert search(stack.settings.fhir_url, "Observation", subject=f"Patient/{PERSON}")  # the flows ran

    lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]
    assert lines  # the app does log at INFO
    leaks = [line for line in lines if any(secret in line for secret in (PERSON, EMAIL, WITHINGS_USER, PASSWORD))]
    assert leaks == []


def test_an_unexpected_error_is_logged_with_its_frames_but_not_its_message(
    stack: AppContext, monkeypatch: pytest.MonkeyPatch, admin_token: str, caplog
):
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("value 123.4 of patient anna")

    monkeypatch.setattr(type(stack.devices), "list", explode)
    status, error = answer(send(devices_api.list_devices, "GET", "x", token=admin_token))
    assert (status, error["error"]["code"]) == (500, "internal_error")
    assert "123.4" not in json.dumps(error)
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "RuntimeError at test_integrity.py:" in line
    assert "devices.py:" in line
    assert "in list_devices" in line
    assert "123.4" not in line
    assert "anna" not in line


def test_a_poisoned_record_logs_its_frames_but_not_its_message(
    stack: AppContext, store: RawRecordStore, monkeypatch: pytest.MonkeyPatch, caplog
):
    from shared.pipeline.worker import RawRecordWorker

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("glucose 5.5 for anna")

    envelope = store.accept(source="medisante", format="medisante-json", body="{}", content_type="application/json")
    worker = RawRecordWorker(store=store, processors={"medisante": explode}, max_attempts=1)
    assert worker.handle(envelope.to_json(), 1) == "poisoned"
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "ValueError at test_integrity.py:" in line
    assert "in _handle" in line
    assert "5.5" not in line
    assert "anna" not in line


def test_concurrent_cursor_moves_end_at_the_newest(stack: AppContext):
    from shared.names import CURSORS_CONTAINER
    from shared.sources.withings.sync import Cursors

    cursors = Cursors(stack.cosmos.get_container_client(CURSORS_CONTAINER))
    values = [1_700_000_000 + n * 60 for n in range(12)]
    run_together([functools.partial(cursors.advance, "777", "measure", value, 1.0) for value in values])
    cursor = cursors.get("777", "measure")
    assert cursor is not None
    assert cursor.lastupdate == max(values)


def test_two_patients_assigned_one_device_at_once_only_one_wins(stack: AppContext, admin_token: str):
    results = run_together(
        [functools.partial(assign, admin_token, "358000000000999", "scale", patient) for patient in ("anna", "bob")]
    )
    assert sorted(status for status, _ in results) == [200, 409]
    device = stack.devices.get(registry_id("medisante", "358000000000999"))
    assert len(device.assignments) == 1


# -- 10. real Entra ID token shapes -------------------------------------------------------------------


@pytest.fixture
def token_version():
    def set_version(version: int | None) -> None:
        requests.post(
            f"{local_issuer()}/_sim/access-token-version", json={"version": version}, timeout=5
        ).raise_for_status()

    yield set_version
    set_version(None)


@pytest.mark.parametrize(
    ("version", "issuer", "audience"),
    [
        (1, local_admin_issuer(1), LOCAL_ADMIN_AUDIENCE),  # a new app registration's default
        (2, local_admin_issuer(2), LOCAL_API_CLIENT_ID),  # accessTokenAcceptedVersion: 2
    ],
)
def test_entra_v1_and_v2_admin_tokens_are_both_accepted(
    stack: AppContext, token_version, version: int, issuer: str, audience: str
):
    token_version(version)
    token = client_token(LOCAL_ADMIN_CLIENT)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["ver"], claims["iss"], claims["aud"], claims["tid"]) == (
        f"{version}.0",
        issuer,
        audience,
        LOCAL_TENANT_ID,
    )
    assert answer(send(devices_api.list_devices, "GET", "x", token=token))[0] == 200


def test_a_v2_token_needs_the_client_id_configured(stack: AppContext, token_version, monkeypatch: pytest.MonkeyPatch):
    token_version(2)
    token = client_token(LOCAL_ADMIN_CLIENT)
    monkeypatch.setenv("ADMIN_TOKEN_CLIENT_ID", "")
    reset_context()
    try:
        status, error = answer(send(devices_api.list_devices, "GET", "x", token=token))
    finally:
        monkeypatch.undo()
        reset_context()
    assert (status, error["error"]["message"]) == (
        401,
        "the bearer token is not valid: it was issued for another audience",
    )


def test_the_v1_issuer_of_an_entra_tenant_is_derived(monkeypatch: pytest.MonkeyPatch):
    from shared.settings import Settings

    monkeypatch.delenv("ADMIN_TOKEN_V1_ISSUER")
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    settings = Settings.model_validate(
        {
            "COSMOS_ENDPOINT": "https://c",
            "FHIR_URL": "https://f",
            "KEYVAULT_URL": "https://k",
            "AzureWebJobsStorage__accountName": "s",
            "ADMIN_TOKEN_ISSUER": f"https://login.microsoftonline.com/{tenant}/v2.0",
        }
    )
    assert settings.admin_token_issuers == (
        f"https://login.microsoftonline.com/{tenant}/v2.0",
        f"https://sts.windows.net/{tenant}/",
    )


# -- 11. storage down: ingress answers 503 fast ---------------------------------------------------------


class BlackHole:
    """A TCP server that accepts connections and never answers: a hung storage endpoint."""

    def __init__(self) -> None:
        import socket

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.held: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.held.append(connection)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for connection in self.held:
            connection.close()
        self.server.close()


@pytest.mark.parametrize("failure", ["hung", "refused"])
def test_ingress_answers_503_with_retry_after_quickly_when_storage_is_down(
    monkeypatch: pytest.MonkeyPatch, failure: str
):
    import socket
    import time

    from shared.localstack import AZURITE_KEY

    hole = BlackHole()
    if failure == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # closed again: nothing listens there
    else:
        port = hole.port
    storage = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    monkeypatch.setenv("AzureWebJobsStorage", storage)
    monkeypatch.setenv("INGRESS_STORAGE_TIMEOUT_S", "1")
    reset_context()
    try:
        started = time.monotonic()
        response = medisante_api.medisante_webhook(
            http_request(
                "POST",
                "http://localhost/api/health-data/medisante/medisante-json",
                body=fixture_text("blood-pressure").encode(),
                headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/json"},
                route_params={"format": "medisante-json"},
            )
        )
        elapsed = time.monotonic() - started
    finally:
        hole.close()
        monkeypatch.undo()
        reset_context()
    status, error = answer(response)
    assert (status, error["error"]["code"]) == (503, "dependency_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert not any(word in error["error"]["message"] for word in EXCEPTION_NAME)
    # A deadline, not a benchmark: the SDK's default budget took 40-86 s here.
    assert elapsed < 10, elapsed


# -- 2. correcting an attribution writes anew; it never moves a resource ------------------------------


def test_correcting_an_attribution_marks_the_old_and_writes_new_observations(
    stack: AppContext, store: RawRecordStore, fhir_url: str, admin_token: str
):
    assert assign(admin_token, BP_IMEI, "blood-pressure-monitor", "anna")[0] == 200  # the wrong patient
    deliver(fixture_text("blood-pressure"))
    process(store)
    annas = search(fhir_url, "Observation", subject="Patient/anna")
    assert len(annas) == 2  # blood pressure and pulse

    device_id = registry_id("medisante", BP_IMEI)
    body = {"patientId": "bob", "from": "2026-01-01T00:00:00Z"}
    status, outcome = answer(
        send(devices_api.correct_attribution, "POST", "x", token=admin_token, body=body, route_params={"id": device_id})
    )
    assert (status, outcome["moved"]) == (200, 2), outcome
    assert [a["patientId"] for a in outcome["device"]["assignments"]] == ["bob"]

    after = {o["id"]: o for o in search(fhir_url, "Observation", subject="Patient/anna")}
    assert set(after) == {o["id"] for o in annas}  # still anna's, as mistakes
    assert {o["status"] for o in after.values()} == {"entered-in-error"}
    bobs = search(fhir_url, "Observation", subject="Patient/bob")
    assert {o["status"] for o in bobs} == {"final"}
    assert sorted(o["identifier"][0]["value"] for o in bobs) == sorted(o["identifier"][0]["value"] for o in annas)
    assert not {o["id"] for o in bobs} & set(after)
    assert "blood-pressure" in stack.consents.get(consent_id("medisante", "bob")).scopes

    # The next delivery of the same payload lands with bob only, and nothing is duplicated.
    deliver(fixture_text("blood-pressure"))
    process(store)
    assert len(search(fhir_url, "Observation", subject="Patient/bob")) == 2

    bad = {"patientId": "bob", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    route = {"id": device_id}
    assert (
        answer(send(devices_api.correct_attribution, "POST", "x", token=admin_token, body=bad, route_params=route))[0]
        == 400
    )
