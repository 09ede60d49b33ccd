"""The tenant registry: operators register, list, suspend and reactivate medical centres (CLI),
on the real Cosmos DB server; the default tenant is the deployment itself."""

from __future__ import annotations

import datetime as dt
import functools
import json

import pytest

from shared import cli
from shared.composition import AppContext
from shared.errors import BadRequest, Conflict, NotFound
from shared.tenants import DEFAULT_TENANT
from tests.helpers.common import run_together

DIGEST = "a" * 64


@pytest.fixture
def tenants(clean_cosmos: AppContext):
    return clean_cosmos.tenants


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_operators_create_list_suspend_and_reactivate_tenants(tenants, capsys):
    code, [created], _ = run_cli(
        capsys, "tenant", "create", "--id", "clinic-a", "--name", "Clinic A", "--lookback-days", "3",
        "--medisante-key-hash", DIGEST, "--fhir-url", "https://fhir.clinic-a.example/fhir",
    )  # fmt: skip
    assert code == 0
    assert (created["id"], created["status"], created["fhirUrl"]) == (
        "clinic-a", "active", "https://fhir.clinic-a.example/fhir"
    )  # fmt: skip
    assert created["settings"] == {"attributionLookbackDays": 3, "medisanteApiKeyHashes": [DIGEST]}
    assert run_cli(capsys, "tenant", "create", "--id", "clinic-b", "--name", "Clinic B")[0] == 0
    code, listed, _ = run_cli(capsys, "tenant", "list")
    assert [t["id"] for t in listed] == ["clinic-a", "clinic-b"]
    code, [suspended], _ = run_cli(capsys, "tenant", "suspend", "--id", "clinic-a")
    assert suspended["status"] == "suspended"
    assert tenants.get("clinic-a").status == "suspended"
    assert tenants.get("clinic-b").active  # the other is untouched
    code, [again], _ = run_cli(capsys, "tenant", "activate", "--id", "clinic-a")
    assert again["status"] == "active"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--id", "Clinic A", "--name", "x"], "tenant id"),
        (["--id=-a", "--name", "x"], "tenant id"),
        (["--id", "clinic-c", "--name", "x", "--medisante-key-hash", "the-key-itself"], "never a key"),
        (["--id", DEFAULT_TENANT, "--name", "x"], "deployment's own tenant"),
    ],
)
def test_an_invalid_tenant_exits_2_naming_the_problem(tenants, capsys, args, words):
    code, printed, err = run_cli(capsys, "tenant", "create", *args)
    assert (code, printed) == (2, [])
    assert words in err
    assert "Error" not in err  # no library exception name


def test_unknown_tenants_are_not_found_and_the_default_cannot_be_suspended(tenants):
    with pytest.raises(NotFound):
        tenants.get("nobody")
    with pytest.raises(NotFound):
        tenants.set_status("nobody", "suspended")
    with pytest.raises(Conflict):
        tenants.set_status(DEFAULT_TENANT, "suspended")
    with pytest.raises(BadRequest):
        tenants.create("x", "too short an id")


def test_of_two_concurrent_registrations_of_one_id_exactly_one_wins(tenants):
    def create(name: str) -> str:
        try:
            tenants.create("clinic-race", name)
        except Conflict:
            return "conflict"
        return "created"

    outcomes = run_together([functools.partial(create, name) for name in ("first", "second", "third")])
    assert sorted(outcomes) == ["conflict", "conflict", "created"]
    assert tenants.get("clinic-race").name in ("first", "second", "third")


def test_concurrent_suspensions_and_reactivations_leave_one_consistent_status(tenants):
    tenants.create("clinic-flip", "Flip")
    statuses = ["suspended", "active"] * 4
    run_together([functools.partial(tenants.set_status, "clinic-flip", status) for status in statuses])
    assert tenants.get("clinic-flip").status in ("suspended", "active")
    assert len(tenants.list()) == 1


def test_a_reading_of_the_default_tenant_lands_tagged_with_it(clean_cosmos, clean_fhir, store, admin_token):
    from tests.helpers.clinic import FIXTURE_DEVICES, assign, deliver, fixture_text, process
    from tests.helpers.stack import put_patient, search

    put_patient(clean_fhir, "anna")
    imei, device_type = FIXTURE_DEVICES["weight"]
    assert assign(admin_token, imei, device_type, "anna")[0] == 200
    deliver(fixture_text("weight"))
    process(store)
    tagged = search(clean_fhir, "Observation", _tag=f"urn:iomt-hub:tenant|{DEFAULT_TENANT}")
    assert tagged
    assert {o["subject"]["reference"] for o in tagged} == {"Patient/anna"}
    assert search(clean_fhir, "Observation", _tag="urn:iomt-hub:tenant|clinic-a") == []
    [device] = search(clean_fhir, "Device", _tag=f"urn:iomt-hub:tenant|{DEFAULT_TENANT}")
    assert device["patient"] == {"reference": "Patient/anna"}


# -- isolation of the stores (the same patient id and device serial in two tenants) ---------------


def _registration(serial: str):
    from shared.devices.models import DeviceRegistration

    return DeviceRegistration(provider="medisante", provider_device_id=serial, type="scale")


def test_a_tenant_never_sees_another_tenants_devices_by_id_serial_or_listing(clean_cosmos):
    a, b = clean_cosmos.devices.for_tenant("clinic-a"), clean_cosmos.devices.for_tenant("clinic-b")
    device_a, _ = a.register(_registration("866000000000123"))
    a.assign(device_a.id, "anna")
    device_b, created = b.register(_registration("866000000000123"))  # the same serial: another device
    assert created
    assert device_b.id != device_a.id
    assert (device_a.tenant_id, device_b.tenant_id) == ("clinic-a", "clinic-b")
    with pytest.raises(NotFound):
        b.get(device_a.id)
    with pytest.raises(NotFound):
        b.assign(device_a.id, "anna")  # nor changed through another tenant
    with pytest.raises(NotFound):
        clean_cosmos.devices.get(device_a.id)  # the default tenant is a tenant like any other
    assert b.find("medisante", "866000000000123").id == device_b.id
    assert [d.id for d in b.list()[0]] == [device_b.id]
    assert b.get(device_b.id).patient_id is None  # A's assignment is A's
    assert clean_cosmos.devices.list()[0] == []


def test_a_tenant_never_sees_another_tenants_consents(clean_cosmos):
    from shared.consent.models import ConsentGrant, consent_id

    a, b = clean_cosmos.consents.for_tenant("clinic-a"), clean_cosmos.consents.for_tenant("clinic-b")
    grant = ConsentGrant(patient_id="anna", source="medisante", scopes=["body-weight"], attestation="clinic")
    record_a, _ = a.grant(grant, "clinic-a-admin")
    assert record_a.id == consent_id("medisante", "anna", "clinic-a") == "clinic-a:medisante.anna"
    assert b.find("anna", "medisante") is None
    with pytest.raises(NotFound):
        b.get(record_a.id)
    with pytest.raises(NotFound):
        b.revoke(record_a.id, "clinic-b-admin")
    assert b.list() == []
    assert clean_cosmos.consents.find("anna", "medisante") is None  # nor in the default tenant
    assert [r.id for r in a.list()] == [record_a.id]
    assert a.get(record_a.id).active


@pytest.mark.parametrize("b_consents", [False, True])
def test_the_worker_attributes_and_writes_each_tenants_readings_only_within_it(
    clean_cosmos, clean_fhir, store, b_consents
):
    from shared.api import pipeline as pipeline_api
    from shared.consent.models import ConsentGrant
    from shared.fhir.mapping import TENANT_TAG_SYSTEM
    from shared.pipeline.envelope import TENANT_ATTRIBUTE
    from tests.helpers.clinic import fixture_text
    from tests.helpers.stack import drive_queue, search

    grant = ConsentGrant(patient_id="anna", source="medisante", scopes=["body-weight", "bmi"], attestation="clinic")
    for tenant in ("clinic-a", "clinic-b"):  # the same serial and patient id in both
        clean_cosmos.tenants.create(tenant, tenant.title())
        devices = clean_cosmos.devices.for_tenant(tenant)
        device, _ = devices.register(_registration("866000000000123"))
        devices.assign(device.id, "anna", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        if tenant == "clinic-a" or b_consents:
            clean_cosmos.consents.for_tenant(tenant).grant(grant, f"{tenant}-admin")
    for tenant in ("clinic-a", "clinic-b"):
        store.accept(
            source="medisante", format="medisante-json", body=fixture_text("weight"),
            content_type="application/json", attributes={TENANT_ATTRIBUTE: tenant},
        )  # fmt: skip
    drive_queue(store, pipeline_api.process_raw_record)

    def tenant_of(resource: dict) -> str:
        [tag] = [tag["code"] for tag in resource["meta"]["tag"] if tag["system"] == TENANT_TAG_SYSTEM]
        return str(tag)

    observations = search(clean_fhir, "Observation", _count="100")
    by_tenant: dict[str, set[str]] = {}
    for observation in observations:
        by_tenant.setdefault(tenant_of(observation), set()).add(observation["id"])
    expected = {"clinic-a", "clinic-b"} if b_consents else {"clinic-a"}  # B's own consent decides for B
    assert set(by_tenant) == expected
    if b_consents:
        assert by_tenant["clinic-a"].isdisjoint(by_tenant["clinic-b"])
        assert len(by_tenant["clinic-a"]) == len(by_tenant["clinic-b"])
    devices = search(clean_fhir, "Device")
    assert sorted(tenant_of(device) for device in devices) == sorted(expected)  # one Device per tenant
    for observation in observations:
        [device] = [d for d in devices if f"Device/{d['id']}" == observation["device"]["reference"]]
        assert tenant_of(device) == tenant_of(observation)


# -- a tenant's webhook key, suspension and held work ------------------------------------------------


def _webhook(key: str, text: str):
    from shared.api import medisante as medisante_api
    from tests.helpers.common import answer, http_request

    return answer(
        medisante_api.medisante_webhook(
            http_request(
                "POST", "http://localhost/api/health-data/medisante/medisante-json", body=text.encode(),
                headers={"x-api-key": key, "content-type": "application/json"},
                route_params={"format": "medisante-json"},
            )
        )
    )  # fmt: skip


def _clinic_with_a_scale(context, tenant: str, key: str, fhir_url: str | None = None) -> None:
    import hashlib

    from shared.consent.models import ConsentGrant

    digest = hashlib.sha256(key.encode()).hexdigest()
    context.tenant_administration.create(tenant, tenant.title(), medisante_key_hashes=[digest], fhir_url=fhir_url)
    devices = context.devices.for_tenant(tenant)
    device, _ = devices.register(_registration("866000000000123"))
    devices.assign(device.id, "anna", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    grant = ConsentGrant(patient_id="anna", source="medisante", scopes=["body-weight", "bmi"], attestation="clinic")
    context.consents.for_tenant(tenant).grant(grant, f"{tenant}-admin")


def _tenants_written(fhir_url: str) -> set[str]:
    from shared.fhir.mapping import tenant_of
    from tests.helpers.stack import search

    return {tenant_of(o) for o in search(fhir_url, "Observation", _count="100")}


def test_a_tenants_key_puts_its_deliveries_in_that_tenant_only(clean_cosmos, clean_fhir, store):
    from tests.helpers.clinic import fixture_text, process

    _clinic_with_a_scale(clean_cosmos, "clinic-a", "clinic-a-webhook-key-0001")
    status, body = _webhook("clinic-a-webhook-key-0001", fixture_text("weight"))
    assert status == 202, body
    from shared.pipeline.envelope import RawEnvelope

    [message] = store.queue.peek_messages()
    assert RawEnvelope.from_json(message.content).tenant == "clinic-a"
    process(store)
    assert _tenants_written(clean_fhir) == {"clinic-a"}
    assert _webhook("a-key-nobody-has-0000000", fixture_text("weight"))[0] == 401


def test_a_suspended_tenant_is_refused_its_queued_work_is_held_and_reactivation_redrives_it(
    clean_cosmos, clean_fhir, store
):
    from tests.helpers.clinic import fixture_text, process

    key = "clinic-s-webhook-key-0001"
    _clinic_with_a_scale(clean_cosmos, "clinic-s", key)
    assert _webhook(key, fixture_text("weight"))[0] == 202  # queued while active
    administration = clean_cosmos.tenant_administration
    administration.suspend("clinic-s")
    status, body = _webhook(key, fixture_text("weight"))
    assert (status, body["error"]["code"]) == (403, "tenant_suspended")
    assert process(store) == 1  # the queued record is taken off the queue...
    assert _tenants_written(clean_fhir) == set()  # ...but nothing of it is written
    [held] = clean_cosmos.held.of("clinic-s")
    assert held.reason == "tenant suspended"
    tenant, redriven = administration.activate("clinic-s")
    assert (tenant.status, redriven) == ("active", [held.receipt_id])
    assert clean_cosmos.held.of("clinic-s") == []
    process(store)
    assert _tenants_written(clean_fhir) == {"clinic-s"}  # held, never lost


def test_a_record_of_a_tenant_this_deployment_does_not_serve_is_held(clean_cosmos, clean_fhir, store):
    from shared.pipeline.envelope import TENANT_ATTRIBUTE
    from tests.helpers.clinic import fixture_text, process

    envelope = store.accept(
        source="medisante", format="medisante-json", body=fixture_text("weight"),
        content_type="application/json", attributes={TENANT_ATTRIBUTE: "nobody"},
    )  # fmt: skip
    process(store)
    [held] = clean_cosmos.held.of("nobody")
    assert (held.receipt_id, held.reason) == (envelope.receipt_id, "tenant not served by this deployment")
    assert _tenants_written(clean_fhir) == set()


# -- the app's sessions run in the user's tenant ------------------------------------------------


@pytest.fixture
def oidc(clean_cosmos, monkeypatch):
    from shared.composition import get_context, reset_context
    from shared.localstack import local_issuer

    issuer = local_issuer()
    monkeypatch.setenv("IDENTITY_PROVIDER", "oidc")
    monkeypatch.setenv("OIDC_TOKEN_URL", f"{issuer}/oauth2/v2.0/token")
    monkeypatch.setenv("OIDC_USERINFO_URL", f"{issuer}/oidc/userinfo")
    reset_context()
    yield get_context()
    monkeypatch.undo()
    reset_context()


def _login(username: str, **fields: str):
    from shared.api import bff as bff_api
    from tests.helpers.common import answer
    from tests.helpers.stack import send

    body = {"username": username, "password": "local-patient-password", **fields}
    response = send(bff_api.login, "POST", "oauth/token", body=body)
    status, answered = answer(response)
    sid = response.headers.get("Set-Cookie", "").split(";", 1)[0].split("=", 1)[-1] if status == 200 else None
    return status, answered, sid


def test_an_oidc_user_of_a_tenant_uploads_into_that_tenant_only(oidc, clean_fhir, store):
    from shared.api import healthkit as hk_api
    from tests.helpers.app import UPLOAD
    from tests.helpers.clinic import process
    from tests.helpers.stack import put_patient, send

    put_patient(clean_fhir, "anna")
    oidc.tenant_administration.create("clinic-a", "Clinic A")
    status, _, sid = _login("clinic-a@example.org")
    assert status == 200
    route = {"format": "healthkit-json"}
    response = send(hk_api.upload_health_data, "POST", "x", sid=sid, body=UPLOAD, route_params=route)
    assert response.status_code == 202, response.get_body()
    process(store)
    assert _tenants_written(clean_fhir) == {"clinic-a"}
    assert oidc.consents.for_tenant("clinic-a").find("anna", "healthkit") is not None
    assert oidc.consents.find("anna", "healthkit") is None  # nothing in the default tenant


def test_an_oidc_user_whose_userinfo_names_a_tenant_this_deployment_does_not_serve_is_refused(oidc):
    oidc.tenant_administration.create("clinic-a", "Clinic A")
    status, answered, sid = _login("elsewhere@example.org")
    assert (status, sid) == (403, None)
    assert "no medical centre this hub serves" in answered["error"]["message"]
    status, answered, _ = _login("clinic-a@example.org", tenantId="clinic-b")
    assert status == 403  # nor a tenant the user does not belong to


def test_a_suspended_tenants_sessions_and_logins_are_refused(oidc):
    from shared.api import bff as bff_api
    from tests.helpers.common import answer
    from tests.helpers.stack import send

    oidc.tenant_administration.create("clinic-a", "Clinic A")
    status, _, sid = _login("clinic-a@example.org")
    assert status == 200
    oidc.tenant_administration.suspend("clinic-a")
    status, body = answer(send(bff_api.profile, "GET", "x", sid=sid))
    assert (status, body["error"]["code"]) == (403, "tenant_suspended")
    status, body, _ = _login("clinic-a@example.org")
    assert (status, body["error"]["code"]) == (403, "tenant_suspended")
    oidc.tenant_administration.activate("clinic-a")
    assert answer(send(bff_api.profile, "GET", "x", sid=sid))[0] == 200  # the session lives on


# -- admin tokens work in their tenants --------------------------------------------------------------


def _admin_call(token: str, handler_name: str, tenant: str | None = None, **kwargs):
    from tests.helpers.common import answer, registered
    from tests.helpers.stack import send

    handler = registered(handler_name)
    route = {"tenantId": tenant} if tenant else {}
    route |= kwargs.pop("route_params", {})
    return answer(send(handler, kwargs.pop("method", "GET"), "x", token=token, route_params=route, **kwargs))


def _scale(tenant_devices, serial: str):
    device, _ = tenant_devices.register(_registration(serial))
    return device


def test_admin_tokens_work_only_in_the_tenants_they_are_members_of(clean_cosmos, capsys):
    from shared.localstack import LOCAL_ADMIN_CLIENT, LOCAL_GROUP_ADMIN_CLIENT, LOCAL_PLATFORM_CLIENT
    from tests.helpers.stack import client_token

    admin_token, group_token, platform_token = map(
        client_token, (LOCAL_ADMIN_CLIENT, LOCAL_GROUP_ADMIN_CLIENT, LOCAL_PLATFORM_CLIENT)
    )
    # A deployment without tenants: every admin works in the default tenant, as before.
    assert _admin_call(admin_token, "list_devices")[0] == 200
    administration = clean_cosmos.tenant_administration
    administration.create("clinic-a", "Clinic A")
    administration.create("clinic-b", "Clinic B")
    device_a = _scale(clean_cosmos.devices.for_tenant("clinic-a"), "866000000000123")
    device_b = _scale(clean_cosmos.devices.for_tenant("clinic-b"), "866000000000123")
    status, body = _admin_call(admin_token, "list_devices")
    assert (status, body["error"]["code"]) == (403, "forbidden")  # tenants exist: no membership, no access
    assert cli.main(["tenant", "add-member", "--id", "clinic-a", "--member", f"oid:{LOCAL_ADMIN_CLIENT[0]}"]) == 0
    assert cli.main(["tenant", "add-member", "--id", "clinic-b", "--member", "group:group-clinic-b-admins"]) == 0
    capsys.readouterr()
    status, page = _admin_call(admin_token, "list_devices")  # its only tenant
    assert (status, [d["id"] for d in page["items"]]) == (200, [device_a.id])
    assert _admin_call(admin_token, "tenant_list_devices", "clinic-a")[1]["items"][0]["tenantId"] == "clinic-a"
    # Another tenant, by path or by id: refused or not found, never shown.
    assert _admin_call(admin_token, "tenant_list_devices", "clinic-b")[0] == 403
    assert _admin_call(admin_token, "tenant_get_device", "clinic-b", route_params={"id": device_b.id})[0] == 403
    assert _admin_call(admin_token, "get_device", route_params={"id": device_b.id})[0] == 404
    status, _ = _admin_call(admin_token, "unassign_device", method="POST", route_params={"id": device_b.id})
    assert status == 404
    assert _admin_call(admin_token, "tenant_list_devices", "nobody")[0] == 404
    # Through a group membership.
    status, page = _admin_call(group_token, "list_devices")
    assert (status, [d["id"] for d in page["items"]]) == (200, [device_b.id])
    assert _admin_call(group_token, "get_device", route_params={"id": device_a.id})[0] == 404
    # A platform operator may name any tenant.
    for tenant, device in (("clinic-a", device_a), ("clinic-b", device_b)):
        status, found = _admin_call(platform_token, "tenant_get_device", tenant, route_params={"id": device.id})
        assert (status, found["tenantId"]) == (200, tenant)
    # A suspended tenant's admins are refused.
    administration.suspend("clinic-a")
    status, body = _admin_call(admin_token, "list_devices")
    assert (status, body["error"]["code"]) == (403, "tenant_suspended")
    assert cli.main(["tenant", "remove-member", "--id", "clinic-b", "--member", "group:group-clinic-b-admins"]) == 0
    assert _admin_call(group_token, "list_devices")[0] == 403


def test_consents_through_the_tenant_routes_stay_in_their_tenant(clean_cosmos, clean_fhir):
    from shared.localstack import LOCAL_PLATFORM_CLIENT
    from tests.helpers.common import answer, registered
    from tests.helpers.stack import client_token, put_patient, send

    token = client_token(LOCAL_PLATFORM_CLIENT)
    put_patient(clean_fhir, "anna", tenant="clinic-a")  # the tenants share the hub's FHIR service
    for tenant in ("clinic-a", "clinic-b"):
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
    body = {"patientId": "anna", "source": "medisante", "scopes": ["body-weight"], "attestation": "clinic"}
    in_a = {"tenantId": "clinic-a"}
    grant = registered("tenant_grant_consent")
    status, record = answer(send(grant, "POST", "x", token=token, body=body, route_params=in_a))
    assert (status, record["id"], record["tenantId"]) == (201, "clinic-a:medisante.anna", "clinic-a")
    # Anna is clinic-a's patient: in clinic-b (and in the default tenant) she does not exist.
    for elsewhere in ({"tenantId": "clinic-b"}, {"tenantId": "default"}):
        status, refused = answer(send(grant, "POST", "x", token=token, body=body, route_params=elsewhere))
        assert (status, refused["error"]["message"]) == (422, "no Patient/anna in the FHIR server")

    def listed(tenant: str) -> list[str]:
        route = {"tenantId": tenant}
        status, page = answer(send(registered("tenant_list_consents"), "GET", "x", token=token, route_params=route))
        assert status == 200
        return [item["id"] for item in page["items"]]

    assert (listed("clinic-a"), listed("clinic-b")) == (["clinic-a:medisante.anna"], [])
    route = {"tenantId": "clinic-b", "id": record["id"]}
    assert answer(send(registered("tenant_revoke_consent"), "POST", "x", token=token, route_params=route))[0] == 404
    assert clean_cosmos.consents.for_tenant("clinic-a").get(record["id"]).active  # untouched


def test_a_tenant_with_its_own_fhir_service_is_written_there_and_only_there(clean_cosmos, clean_fhir, store):
    from tests.helpers.clinic import fixture_text, process
    from tests.helpers.stack import FaultyProxy

    with FaultyProxy(clean_fhir, []) as own_fhir:  # the tenant's "own" service, in front of the test server
        key = "clinic-own-fhir-key-0001"
        _clinic_with_a_scale(clean_cosmos, "clinic-own", key, fhir_url=own_fhir.url)
        _clinic_with_a_scale(clean_cosmos, "clinic-hub", "clinic-hub-fhir-key-0001")
        assert _webhook("clinic-hub-fhir-key-0001", fixture_text("weight"))[0] == 202
        process(store)
        assert sum(own_fhir.seen.values()) == 0  # the hub's tenant: the hub's FHIR service
        assert _webhook(key, fixture_text("weight"))[0] == 202
        process(store)
        assert own_fhir.seen["pass"] >= 1  # the batch went to the tenant's own service
    assert _tenants_written(clean_fhir) == {"clinic-hub", "clinic-own"}


def test_a_tenants_own_attribution_look_back_decides_when_its_parked_readings_go_stale(clean_cosmos):
    from shared import conversion
    from tests.helpers.clinic import fixture_text

    administration = clean_cosmos.tenant_administration
    administration.create("clinic-zero", "Zero", lookback_days=0)  # nothing waits for an assignment
    administration.create("clinic-week", "Week")  # the deployment's look-back (7 days)
    readings = conversion.parse("medisante", "medisante-json", fixture_text("weight")).readings
    for tenant in ("clinic-zero", "clinic-week"):
        clean_cosmos.parked.park(f"receipt-{tenant}", "medisante", readings, tenant)
    stale = {record.tenant_id: record.stale for record in clean_cosmos.parked.all()}
    assert stale == {"clinic-zero": True, "clinic-week": False}


def test_replay_and_parked_take_a_tenant_and_show_nothing_of_another(clean_cosmos, store, capsys):
    from shared import conversion
    from shared.pipeline.envelope import TENANT_ATTRIBUTE
    from tests.helpers.clinic import fixture_text

    readings = conversion.parse("medisante", "medisante-json", fixture_text("weight")).readings
    receipts = {}
    for tenant in ("clinic-a", "clinic-b"):
        envelope = store.accept(
            source="medisante", format="medisante-json", body=fixture_text("weight"),
            content_type="application/json", attributes={TENANT_ATTRIBUTE: tenant},
        )  # fmt: skip
        store.archive_body(envelope)  # as the worker does before anything else
        receipts[tenant] = envelope.receipt_id
        clean_cosmos.parked.park(receipts[tenant], "medisante", readings, tenant)
    store.queue.clear_messages()
    code, listed, _ = run_cli(capsys, "parked", "--tenant", "clinic-a")
    assert (code, [item["receiptId"] for item in listed]) == (0, [receipts["clinic-a"]])
    in_a = ("replay", "--from", "archive", "--tenant", "clinic-a", "--receipt")
    code, printed, err = run_cli(capsys, *in_a, receipts["clinic-b"])
    assert (code, printed) == (2, [])
    assert "in tenant clinic-a" in err
    assert store.queue.get_queue_properties().approximate_message_count == 0  # nothing of B re-driven
    code, [done], _ = run_cli(capsys, *in_a, receipts["clinic-a"])
    assert done == {"replayed": [receipts["clinic-a"]]}


def test_a_tenants_raw_records_live_under_its_prefix_and_replay_from_there(clean_cosmos, store):
    from shared.pipeline import replay
    from shared.pipeline.envelope import TENANT_ATTRIBUTE, RawEnvelope
    from tests.helpers.clinic import fixture_text

    envelope = store.accept(
        source="medisante", format="medisante-json", body=fixture_text("weight"),
        content_type="application/json", attributes={TENANT_ATTRIBUTE: "clinic-a"},
    )  # fmt: skip
    assert envelope.receipt_id.startswith("clinic-a.")
    store.archive_body(envelope)
    store.reject(envelope, "1 readings not written", [{"sourceId": "x", "reason": "test"}])
    archived = {b.name for b in store.archive.list_blobs(name_starts_with="clinic-a/")}
    assert f"clinic-a/{envelope.receipt_id}" in archived
    assert not store.archive.get_blob_client(envelope.receipt_id).exists()  # not at the top, with the default's
    assert [b.name for b in store.rejected.list_blobs()] == [f"clinic-a/{envelope.receipt_id}.json"]
    store.queue.clear_messages()
    assert replay.replay_rejected(store, tenant="clinic-a") == [envelope.receipt_id]
    [message] = store.queue.peek_messages()
    queued = RawEnvelope.from_json(message.content)
    assert (queued.tenant, store.load_body(queued)) == ("clinic-a", fixture_text("weight"))
    assert list(store.rejected.list_blobs()) == []


def test_the_deployments_own_keys_need_no_registry_and_a_lost_registry_is_a_503(clean_cosmos):
    import hashlib

    from shared.errors import DependencyError
    from shared.tenants.directory import TenantDirectory
    from shared.tenants.registry import TenantRegistry

    unreachable = TenantRegistry(clean_cosmos.cosmos.get_container_client("no-such-container-for-this-test"))
    key = "the-deployments-own-key-01"
    directory = TenantDirectory(unreachable, (hashlib.sha256(key.encode()).hexdigest(),), ttl_s=30)
    assert directory.tenant_of_key(key) == DEFAULT_TENANT  # the webhook's answer path reads no registry
    with pytest.raises(DependencyError):
        directory.tenant_of_key("a-key-that-may-be-a-tenants")


def test_a_bff_hosted_elsewhere_sends_healthkit_into_its_own_tenant_only(clean_cosmos, clean_fhir, store):
    from shared.localstack import LOCAL_INGEST_CLIENT
    from tests.helpers.app import UPLOAD
    from tests.helpers.clinic import process
    from tests.helpers.common import answer, registered
    from tests.helpers.stack import client_token, put_patient, send

    for tenant in ("clinic-a", "clinic-b"):
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
    put_patient(clean_fhir, "anna", tenant="clinic-a")
    put_patient(clean_fhir, "bert", tenant="clinic-b")
    token = client_token(LOCAL_INGEST_CLIENT)

    def upload(patient: str, tenant: str | None = None) -> tuple[int, dict]:
        handler = registered("tenant_healthkit_ingest" if tenant else "healthkit_ingest")
        route = {"format": "healthkit-json", **({"tenantId": tenant} if tenant else {})}
        headers = {"x-patient-id": patient}
        return answer(send(handler, "POST", "x", token=token, body=UPLOAD, route_params=route, headers=headers))

    status, body = upload("anna")
    assert (status, body["error"]["code"]) == (403, "forbidden")  # a service with no membership
    assert cli.main(["tenant", "add-member", "--id", "clinic-a", "--member", f"oid:{LOCAL_INGEST_CLIENT[0]}"]) == 0
    assert upload("bert")[0] == 422  # clinic-b's patient is not one of clinic-a's
    assert upload("anna", "clinic-b")[0] == 403  # nor may it name another tenant
    status, body = upload("anna")
    assert status == 202, body
    assert body["receiptId"].startswith("clinic-a.")
    process(store)
    assert _tenants_written(clean_fhir) == {"clinic-a"}
    assert upload("anna", "clinic-a")[0] == 202  # the same, naming its tenant


def test_platform_operators_manage_tenants_and_their_members_over_http(clean_cosmos):
    from shared.localstack import LOCAL_ADMIN_CLIENT, LOCAL_PLATFORM_CLIENT
    from tests.helpers.common import answer, registered
    from tests.helpers.stack import client_token, send

    operator, admin_token = client_token(LOCAL_PLATFORM_CLIENT), client_token(LOCAL_ADMIN_CLIENT)

    def call(name: str, method: str, token: str = operator, body: dict | None = None, **route: str):
        return answer(send(registered(name), method, "x", token=token, body=body, route_params=route))

    new = {"id": "clinic-x", "name": "Clinic X", "attributionLookbackDays": 3}
    assert call("create_tenant", "POST", admin_token, new)[0] == 403  # an admin is not a platform operator
    status, tenant = call("create_tenant", "POST", body=new)
    assert (status, tenant["id"], tenant["status"], tenant["settings"]["attributionLookbackDays"]) == (
        201, "clinic-x", "active", 3
    )  # fmt: skip
    assert call("create_tenant", "POST", body=new)[0] == 409
    status, refused = call("create_tenant", "POST", body={"id": "Clinic X!", "name": "x"})
    assert (status, refused["error"]["code"]) == (400, "bad_request")
    assert "tenant id" in refused["error"]["message"]
    bad_url = {"id": "clinic-y", "name": "Y", "fhirUrl": "file:///etc/passwd"}
    assert call("create_tenant", "POST", body=bad_url)[0] == 400
    status, listed = call("list_tenants", "GET")
    assert (status, [t["id"] for t in listed["items"]]) == (200, ["clinic-x"])
    assert call("get_tenant", "GET", id="clinic-nowhere")[0] == 404

    # A member administers the tenant; suspended, it is refused; removed, it is no member.
    member = {"member": f"oid:{LOCAL_ADMIN_CLIENT[0]}"}
    assert call("add_member", "POST", body=member, id="clinic-nowhere")[0] == 404
    assert call("add_member", "POST", body={"member": "someone"}, id="clinic-x")[0] == 400
    status, membership = call("add_member", "POST", body=member, id="clinic-x")
    assert (status, membership["tenantId"], membership["principal"]) == (201, "clinic-x", member["member"])
    assert [m["principal"] for m in call("list_members", "GET", id="clinic-x")[1]["items"]] == [member["member"]]
    assert call("list_devices", "GET", admin_token)[0] == 200  # its only tenant: clinic-x
    status, suspended = call("suspend_tenant", "POST", id="clinic-x")
    assert (status, suspended["status"]) == (200, "suspended")
    assert call("list_devices", "GET", admin_token)[1]["error"]["code"] == "tenant_suspended"
    status, active = call("activate_tenant", "POST", id="clinic-x")
    assert (status, active["status"], active["reDriven"]) == (200, "active", 0)
    assert call("list_devices", "GET", admin_token)[0] == 200
    removed = send(registered("remove_member"), "DELETE", "x", token=operator,
                   route_params={"id": "clinic-x", "member": member["member"]})  # fmt: skip
    assert removed.status_code == 204
    assert call("list_members", "GET", id="clinic-x")[1]["items"] == []
    assert call("list_devices", "GET", admin_token)[0] == 403  # no membership any more


def test_isolation_every_endpoint_with_one_tenants_credential_on_anothers_objects(clean_cosmos, clean_fhir, store):
    """The isolation suite over the whole contract: a member of clinic-a (an admin, a service, a
    session) tries every operation on clinic-b's objects, by path and by id; nothing of clinic-b
    is read, listed, changed or written."""
    import hashlib

    from shared.api.contract import operations
    from shared.consent.models import ConsentGrant
    from shared.localstack import LOCAL_ADMIN_CLIENT, LOCAL_INGEST_CLIENT
    from tests.helpers.app import UPLOAD
    from tests.helpers.clinic import process
    from tests.helpers.common import answer, registered
    from tests.helpers.stack import client_token, put_patient, send

    for tenant in ("clinic-a", "clinic-b"):
        key = hashlib.sha256(f"{tenant}-key-000001".encode()).hexdigest()
        clean_cosmos.tenant_administration.create(tenant, tenant.title(), medisante_key_hashes=[key])
    for member in (LOCAL_ADMIN_CLIENT, LOCAL_INGEST_CLIENT):
        clean_cosmos.tenant_administration.add_member("clinic-a", f"oid:{member[0]}")
    put_patient(clean_fhir, "anna-a", tenant="clinic-a")
    put_patient(clean_fhir, "anna-b", tenant="clinic-b")
    devices_b = clean_cosmos.devices.for_tenant("clinic-b")
    device_b, _ = devices_b.register(_registration("866000000000123"))
    devices_b.assign(device_b.id, "anna-b")
    grant = ConsentGrant(patient_id="anna-b", source="medisante", scopes=["body-weight"], attestation="clinic")
    consent_b, _ = clean_cosmos.consents.for_tenant("clinic-b").grant(grant, "clinic-b-admin")
    admin_token, ingest_token = client_token(LOCAL_ADMIN_CLIENT), client_token(LOCAL_INGEST_CLIENT)

    # By path: every /api/tenants/{tenantId}/... operation, naming clinic-b.
    objects = {"id": device_b.id, "format": "healthkit-json", "secret": "0" * 64}
    tried: dict[str, int] = {}
    for operation in operations():
        if not operation.function.startswith("tenant_"):
            continue
        path_params = [param.name for param in operation.params if param.where == "path"]
        route = {**{name: objects.get(name, "x") for name in path_params}, "tenantId": "clinic-b"}
        if "consent" in operation.function:
            route["id"] = consent_b.id
        token = ingest_token if "healthkit" in operation.function else admin_token
        headers = {"x-patient-id": "anna-b"}
        response = send(registered(operation.function), operation.method.upper(), "x", token=token,
                        body={}, route_params=route, headers=headers)  # fmt: skip
        tried[f"{operation.method} {operation.path}"] = response.status_code
    assert len(tried) >= 14
    refused = {path: status for path, status in tried.items() if "/withings/notify/" not in path}
    assert set(refused.values()) == {403}, tried  # not a member of clinic-b
    notify = "/api/tenants/{tenantId}/withings/notify/{secret}"
    assert {tried[f"head {notify}"], tried[f"post {notify}"]} == {404}  # not clinic-b's secret

    # By id on the unprefixed routes (clinic-a's own tenant): clinic-b's objects do not exist.
    def call(name: str, method: str, token: str = admin_token, **kwargs):
        return answer(send(registered(name), method, "x", token=token, **kwargs))[0]

    correction = {"patientId": "anna-a", "from": "2026-01-01T00:00:00Z"}
    assignment = {"deviceId": "866000000000999", "deviceProvider": "medisante", "deviceType": "scale"}
    assignment["assignedPatientId"] = "anna-b"
    upload = {"route_params": {"format": "healthkit-json"}, "headers": {"x-patient-id": "anna-b"}, "body": UPLOAD}
    by_id = {
        "get device": call("get_device", "GET", route_params={"id": device_b.id}),
        "unassign": call("unassign_device", "POST", route_params={"id": device_b.id}),
        "correct": call("correct_attribution", "POST", route_params={"id": device_b.id}, body=correction),
        "get consent": call("get_consent", "GET", route_params={"id": consent_b.id}),
        "revoke consent": call("revoke_consent", "POST", route_params={"id": consent_b.id}),
        "grant for b's patient": call("grant_consent", "POST", body=grant.model_dump(by_alias=True)),
        "assign to b's patient": call("assign_device", "POST", body=assignment),
        "withings for b's patient": call("withings_connect", "GET", params={"patient": "anna-b"}),
        "healthkit for b's patient": call("healthkit_ingest", "POST", ingest_token, **upload),
    }
    assert {name: status for name, status in by_id.items() if status not in (404, 422)} == {}
    status, listed = answer(send(registered("list_devices"), "GET", "x", token=admin_token))
    assert (status, listed["items"]) == (200, [])  # clinic-a lists nothing of clinic-b's
    status, listed = answer(send(registered("list_consents"), "GET", "x", token=admin_token))
    assert (status, listed["items"]) == (200, [])

    # clinic-b's objects are as they were, and nothing was written for it.
    assert devices_b.get(device_b.id).patient_id == "anna-b"
    assert clean_cosmos.consents.for_tenant("clinic-b").get(consent_b.id).active
    process(store)
    assert _tenants_written(clean_fhir) <= {"clinic-a"}


def test_the_same_healthkit_uuids_in_two_tenants_are_unrelated_readings(clean_cosmos, clean_fhir, store):
    from shared.fhir.mapping import tenant_of
    from shared.localstack import LOCAL_INGEST_CLIENT
    from tests.helpers.app import UPLOAD
    from tests.helpers.clinic import process
    from tests.helpers.common import answer, registered
    from tests.helpers.stack import client_token, put_patient, search, send

    patients = {"clinic-a": "anna-a", "clinic-b": "anna-b"}
    for tenant, patient in patients.items():
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
        clean_cosmos.tenant_administration.add_member(tenant, f"oid:{LOCAL_INGEST_CLIENT[0]}")
        put_patient(clean_fhir, patient, tenant=tenant)
    token = client_token(LOCAL_INGEST_CLIENT)

    def upload(tenant: str, document: dict) -> int:
        route = {"tenantId": tenant, "format": "healthkit-json"}
        headers = {"x-patient-id": patients[tenant]}
        handler = registered("tenant_healthkit_ingest")
        return answer(send(handler, "POST", "x", token=token, body=document, route_params=route, headers=headers))[0]

    assert answer(send(registered("healthkit_ingest"), "POST", "x", token=token, body=UPLOAD,
                       route_params={"format": "healthkit-json"}, headers={"x-patient-id": "anna-a"}))[0] == 400
    for tenant in patients:  # a member of two tenants names one; the same samples, UUIDs and all
        assert upload(tenant, UPLOAD) == 202
    process(store)
    written = {
        tenant: search(clean_fhir, "Observation", subject=f"Patient/{patient}", _count="200")
        for tenant, patient in patients.items()
    }
    assert len(written["clinic-a"]) == len(written["clinic-b"]) > 0
    assert not {o["id"] for o in written["clinic-a"]} & {o["id"] for o in written["clinic-b"]}
    for tenant, observations in written.items():
        assert {tenant_of(o) for o in observations} == {tenant}

    # A deletion by UUID in clinic-a deletes clinic-a's reading only.
    heart_rate_uuid = UPLOAD["samples"][0]["uuid"]
    assert upload("clinic-a", {"deleted": [{"uuid": heart_rate_uuid}]}) == 202
    process(store)
    statuses = {}
    for tenant, patient in patients.items():
        [heart_rate] = search(clean_fhir, "Observation", subject=f"Patient/{patient}", code="8867-4")
        statuses[tenant] = heart_rate["status"]
    assert statuses == {"clinic-a": "entered-in-error", "clinic-b": "final"}
