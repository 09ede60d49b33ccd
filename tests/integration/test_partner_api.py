"""The partner metrics API end to end on the local stack: a patient's consent through the
authorization server, a batch of readings over the registered handlers, the worker writing them
into the tenant's FHIR record, and the receipt telling each reading's fate."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from shared.composition import AppContext
from shared.fhir.mapping import tenant_of
from shared.partners.authorization import OAuthCall, PartnerUser
from shared.partners.records import AppRegistration
from tests.helpers.clinic import process
from tests.helpers.common import answer, registered
from tests.helpers.stack import put_patient, search, send

REDIRECT = "https://app.example.com/cb"
KINDS = (
    "blood-pressure", "heart-rate", "body-weight", "ecg", "steps", "glucose", "oxygen-saturation", "body-temperature"
)  # fmt: skip
ALL = [*(f"metrics.{kind}.write" for kind in KINDS), "offline_access", "profile"]
ANNA = PartnerUser(sub="user-anna", tenant="clinic-a", patient_id="anna")
AT = "2026-12-01T08:00:00+01:00"


def _token(context: AppContext, ticked: list[str], user: PartnerUser = ANNA) -> tuple[str, str]:
    """(client_id, access token) of an app the patient allowed ``ticked`` scopes."""
    app, secret = context.partner_apps.register(AppRegistration.model_validate({
        "name": "Vitals", "owner": "Example", "type": "web", "grantTypes": ["authorization_code", "refresh_token"],
        "redirectUris": [REDIRECT], "scopes": ALL,
    }))  # fmt: skip
    context.partner_apps.set_status(app.id, "approved")
    context.partner_apps.enable(app.id, user.tenant)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = urlencode({"response_type": "code", "client_id": app.id, "redirect_uri": REDIRECT, "scope": " ".join(ALL),
                       "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
    server = context.authorization_server
    approved = server.approve(OAuthCall("GET", f"https://hub.example/api/oauth2/authorize?{query}"), user, ticked)
    code = parse_qs(urlsplit(approved.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
            "client_id": app.id, "client_secret": secret}  # fmt: skip
    response = send(registered("partner_token"), "POST", "x", body=urlencode(form).encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    return app.id, json.loads(response.get_body())["access_token"]


def _send(token: str, readings: list[dict]) -> tuple[int, dict]:
    return answer(send(registered("partner_readings"), "POST", "x", token=token, body={"readings": readings}))


def _receipt(token: str, receipt_id: str) -> tuple[int, dict]:
    return answer(send(registered("partner_receipt"), "GET", "x", token=token, route_params={"id": receipt_id}))


@pytest.fixture
def partner(clean_cosmos: AppContext, clean_fhir: str, store) -> AppContext:
    for tenant in ("clinic-a", "clinic-b"):
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
    put_patient(clean_fhir, "anna", tenant="clinic-a")
    return clean_cosmos


ECG: dict[str, Any] = {
    "samples": [((n * 37) % 400 - 200) / 1000 for n in range(500 * 10)], "samplingFrequency": 500, "unit": "mV"
}  # fmt: skip
BATCH: list[dict[str, Any]] = [
    {"id": "bp-1", "kind": "blood-pressure", "unit": "mm[Hg]", "components": {"systolic": 128, "diastolic": 82},
     "effectiveDateTime": AT, "device": {"id": "cuff-0042", "manufacturer": "Acme", "model": "BP One"}},
    {"id": "hr-1", "kind": "heart-rate", "value": 64, "unit": "bpm", "effectiveDateTime": AT},
    {"id": "w-1", "kind": "body-weight", "value": 154.3, "unit": "[lb_av]", "effectiveDateTime": AT},
    {"id": "st-1", "kind": "steps", "value": 8412, "unit": "{steps}",
     "effectivePeriod": {"start": "2026-12-01T00:00:00+01:00", "end": "2026-12-02T00:00:00+01:00"}},
    {"id": "ecg-1", "kind": "ecg", "effectiveDateTime": AT, "ecg": ECG},
    {"id": "t-1", "kind": "body-temperature", "value": 98.6, "unit": "[degF]", "effectiveDateTime": AT},
    {"id": "o-1", "kind": "oxygen-saturation", "value": 97, "unit": "%", "effectiveDateTime": AT},
]  # fmt: skip


def test_a_batch_lands_in_the_patients_record_and_the_receipt_tells_each_fate(partner, store, clean_fhir):
    granted = [s for s in ALL if s != "metrics.glucose.write"]
    _, token = _token(partner, granted)
    bad = [
        {"id": "w-2", "kind": "body-weight", "value": 70, "unit": "stone", "effectiveDateTime": AT},
        {"id": "w-3", "kind": "body-weight", "value": 70, "unit": "kg", "effectiveDateTime": "2026-12-01T08:00:00"},
        {"id": "hr-2", "kind": "heart-rate", "value": 900, "unit": "/min", "effectiveDateTime": AT},
        {"id": "x-1", "kind": "mood", "value": 3, "unit": "1", "effectiveDateTime": AT},
        {"id": "hr-1", "kind": "heart-rate", "value": 65, "unit": "/min", "effectiveDateTime": AT},
    ]
    status, accepted = _send(token, [*BATCH, *bad])
    assert status == 202, accepted
    assert accepted["accepted"] == len(BATCH)
    reasons = {r["id"]: r["reason"] for r in accepted["refused"]}
    assert "not accepted for body-weight" in reasons["w-2"]
    assert "needs its UTC offset" in reasons["w-3"]
    assert "outside the plausible range" in reasons["hr-2"]
    assert "unknown kind" in reasons["x-1"]
    assert any(r["reason"] == "the same id appears twice in the batch" for r in accepted["refused"])
    receipt_id = accepted["receiptId"]
    assert receipt_id.startswith("clinic-a.")
    status, receipt = _receipt(token, receipt_id)
    assert {r["id"]: r["status"] for r in receipt["readings"]}["bp-1"] == "queued"

    process(store)
    status, receipt = _receipt(token, receipt_id)
    fates = {r["id"]: r for r in receipt["readings"]}
    assert {i: fates[i]["status"] for i in ("bp-1", "hr-1", "w-1", "st-1", "ecg-1", "t-1", "o-1")} == dict.fromkeys(
        ("bp-1", "hr-1", "w-1", "st-1", "ecg-1", "t-1", "o-1"), "written"
    )
    assert fates["w-2"]["status"] == "rejected"
    observations = search(clean_fhir, "Observation", subject="Patient/anna", _count="100")
    by_id = {f"Observation/{o['id']}": o for o in observations}
    assert fates["w-1"]["fhirId"] in by_id
    weight = by_id[fates["w-1"]["fhirId"]]
    assert (round(weight["valueQuantity"]["value"], 2), weight["valueQuantity"]["code"]) == (69.99, "kg")
    temperature = by_id[fates["t-1"]["fhirId"]]
    assert (round(temperature["valueQuantity"]["value"], 1), temperature["valueQuantity"]["code"]) == (37.0, "Cel")
    assert {tenant_of(o) for o in observations} == {"clinic-a"}
    # The same batch again: the same Observations, nothing new.
    assert _send(token, BATCH)[0] == 202
    process(store)
    assert len(search(clean_fhir, "Observation", subject="Patient/anna", _count="100")) == len(observations)


def test_outside_the_scopes_a_call_is_403_and_a_narrowed_consent_refuses_in_the_worker(partner, store):
    client_id, token = _token(partner, ["metrics.heart-rate.write", "metrics.body-weight.write"])
    glucose = {"id": "g-1", "kind": "glucose", "value": 5.4, "unit": "mmol/L", "effectiveDateTime": AT}
    status, body = _send(token, [*BATCH[1:3], glucose])
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")
    assert "glucose" in body["error"]["message"]
    status, accepted = _send(token, BATCH[1:3])
    assert status == 202
    # The clinic narrows the patient's consent to heart rate before the worker runs.
    from shared.consent.models import ConsentGrant

    narrowed = ConsentGrant(patient_id="anna", source=client_id, scopes=["heart-rate"], attestation="clinic")
    partner.consents.for_tenant("clinic-a").grant(narrowed, "clinic-a-admin")
    process(store)
    fates = {r["id"]: r for r in _receipt(token, accepted["receiptId"])[1]["readings"]}
    assert fates["hr-1"]["status"] == "written"
    assert (fates["w-1"]["status"], fates["w-1"]["reason"]) == (
        "refused-by-consent", "body-weight is outside the consented scopes"
    )  # fmt: skip


def test_tokens_of_other_patients_apps_and_revoked_consents_are_refused(partner, store):
    client_id, token = _token(partner, ALL)
    other_id, other_token = _token(partner, ALL, PartnerUser(sub="user-bert", tenant="clinic-b", patient_id="bert"))
    status, accepted = _send(token, BATCH[1:2])
    assert status == 202
    assert _receipt(other_token, accepted["receiptId"])[0] == 404  # another app's, another tenant's receipt
    for_bert = {"patientId": "bert", "readings": BATCH[1:2]}
    # A patient's token sends that patient's readings only.
    assert answer(send(registered("partner_readings"), "POST", "x", token=token, body=for_bert))[0] == 403
    assert answer(send(registered("partner_readings"), "POST", "x", body={"readings": BATCH[1:2]}))[0] == 401
    assert _send("not-a-token", BATCH[1:2])[0] == 401
    record = partner.consents.for_tenant("clinic-a").find("anna", client_id)
    assert record is not None
    partner.consents.for_tenant("clinic-a").revoke(record.id, "anna")
    status, body = _send(token, BATCH[1:2])
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    partner.partner_apps.set_status(other_id, "suspended")
    assert _send(other_token, BATCH[1:2])[0] == 401


def test_each_app_has_its_calls_per_minute(partner, store, monkeypatch):
    _, token = _token(partner, ALL)
    monkeypatch.setattr(partner.settings, "partner_calls_per_minute", 3)
    statuses = [send(registered("partner_readings"), "POST", "x", token=token,
                     body={"readings": BATCH[1:2]}) for _ in range(4)]  # fmt: skip
    assert [r.status_code for r in statuses] == [202, 202, 202, 429]
    assert int(statuses[-1].headers["Retry-After"]) > 0
    assert json.loads(statuses[-1].get_body())["error"]["code"] == "rate_limit_exceeded"


def test_userinfo_names_the_user_their_tenant_and_their_patient_with_the_profile_scope(partner, store):
    _, token = _token(partner, ALL)
    status, info = answer(send(registered("partner_userinfo"), "GET", "x", token=token))
    assert (status, info) == (200, {"sub": "user-anna", "name": None, "patient": "Patient/anna",
                                    "tenants": [{"id": "clinic-a", "name": "Clinic-A"}]})  # fmt: skip
    _, narrow = _token(partner, ["metrics.heart-rate.write"])
    status, body = answer(send(registered("partner_userinfo"), "GET", "x", token=narrow))
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")


def test_a_gateway_a_clinician_authorized_names_a_patient_of_the_tenant_with_a_clinic_consent(
    partner, store, clean_fhir
):
    from shared.localstack import LOCAL_PLATFORM_CLIENT
    from tests.helpers.stack import client_token

    put_patient(clean_fhir, "bert", tenant="clinic-b")
    clinician = PartnerUser(sub="user-dr-b", tenant="clinic-a", patient_id=None, name="Dr B")
    client_id, token = _token(partner, ALL, clinician)
    assert partner.consents.for_tenant("clinic-a").list(source=None) == []  # a clinician consents for nobody
    reading = [BATCH[1]]
    status, body = answer(send(registered("partner_readings"), "POST", "x", token=token, body={"readings": reading}))
    assert (status, body["error"]["message"]) == (
        400, "a gateway authorized by a clinician names the patient (patientId)"
    )  # fmt: skip
    for_bert = {"patientId": "bert", "readings": reading}
    assert answer(send(registered("partner_readings"), "POST", "x", token=token, body=for_bert))[0] == 422
    for_anna = {"patientId": "anna", "readings": reading}
    status, first = answer(send(registered("partner_readings"), "POST", "x", token=token, body=for_anna))
    assert status == 202
    process(store)
    [fate] = _receipt(token, first["receiptId"])[1]["readings"]
    assert (fate["status"], fate["reason"]) == ("refused-by-consent", f"no consent recorded for {client_id}")
    # The clinic records its consent for the gateway and the kind; then the reading is written.
    grant = {"patientId": "anna", "source": client_id, "scopes": ["heart-rate"], "attestation": "clinic"}
    granted = send(registered("tenant_grant_consent"), "POST", "x", token=client_token(LOCAL_PLATFORM_CLIENT),
                   body=grant, route_params={"tenantId": "clinic-a"})  # fmt: skip
    assert granted.status_code == 201
    status, second = answer(send(registered("partner_readings"), "POST", "x", token=token, body=for_anna))
    process(store)
    [fate] = _receipt(token, second["receiptId"])[1]["readings"]
    assert fate["status"] == "written"


def test_a_clinicians_account_signs_in_to_authorize_gateways_not_to_the_patient_app(partner):
    from shared.errors import Forbidden

    partner.directory.create_user(
        "dr.b@example.org", "correct horse battery staple", email="dr.b@example.org", name="Dr B", patient_id=None,
        tenant_id="clinic-a", clinician=True,
    )  # fmt: skip
    profile = partner.login.authenticate("dr.b@example.org", "correct horse battery staple", "203.0.113.9")
    assert (profile.clinician, profile.tenant) == (True, "clinic-a")
    with pytest.raises(Forbidden, match="does not sign in to the patient app"):
        partner.login.login("dr.b@example.org", "correct horse battery staple", "203.0.113.9")
