"""The OpenAPI document tells the truth: every route the app registers is described with its
methods and auth, request schemas are the handlers' own, and real answers validate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from shared.api import bff as bff_api
from shared.api import devices as devices_api
from shared.api import healthkit as hk_api
from shared.api import medisante as medisante_api
from shared.api import openapi as openapi_api
from shared.composition import AppContext
from tests.helpers.app import UPLOAD, create_user, request
from tests.helpers.clinic import FIXTURE_DEVICES, assign, call
from tests.helpers.common import FIXTURES, MEDISANTE_KEY, answer, http_request
from tests.helpers.stack import put_patient

DOCUMENT = openapi_api.document()


def validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": DOCUMENT["components"]})


def response_schema(path: str, method: str, status: int) -> str:
    answer = DOCUMENT["paths"][path][method]["responses"][str(status)]
    ref: str = answer["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def test_document_is_served_as_json():
    response = openapi_api.openapi(http_request("GET", "http://localhost/api/openapi.json"))
    assert response.status_code == 200
    assert json.loads(response.get_body())["openapi"] == "3.1.0"






def test_request_schemas_accept_the_contract_and_refuse_bad_bodies():
    assign_schema = validator("AssignRequest")
    good = {
        "deviceId": "358000000000047",
        "deviceProvider": "medisante",
        "deviceType": "blood-pressure-monitor",
        "name": "BP800",
        "assignedPatientId": "anna",
    }
    assert list(assign_schema.iter_errors(good)) == []
    assert list(assign_schema.iter_errors({k: v for k, v in good.items() if k != "assignedPatientId"}))
    assert list(validator("ConsentGrant").iter_errors({"patientId": "p", "source": "withings", "scopes": []}))


@pytest.fixture
def live(clean_cosmos: AppContext, clean_fhir: str, store: Any) -> AppContext:
    return clean_cosmos


def test_real_answers_validate_against_the_response_schemas(live: AppContext, fhir_url: str, admin_token: str):
    put_patient(fhir_url, "anna")
    imei, device_type = FIXTURE_DEVICES["blood-pressure"]
    status, device = assign(admin_token, imei, device_type, "anna")
    assert status == 200
    assert list(validator(response_schema("/api/devices/assign", "post", 200)).iter_errors(device)) == []
    status, page = call(devices_api.list_devices, "GET", "devices", admin_token)
    assert list(validator(response_schema("/api/devices", "get", 200)).iter_errors(page)) == []
    status, error = assign(admin_token, imei, device_type, "nobody")
    assert status == 422
    assert list(validator(response_schema("/api/devices/assign", "post", 422)).iter_errors(error)) == []
    consent = live.consents.find("anna", "medisante")
    assert consent is not None
    public = consent.public()
    assert list(validator("ConsentRecord").iter_errors(public)) == []
    response = medisante_api.medisante_webhook(
        http_request(
            "POST",
            "http://localhost/api/health-data/medisante/medisante-json",
            body=(FIXTURES / "medisante" / "glucose.json").read_bytes(),
            headers={"x-api-key": MEDISANTE_KEY, "content-type": "application/json"},
            route_params={"format": "medisante-json"},
        )
    )
    accepted = json.loads(response.get_body())
    schema = validator(response_schema("/api/health-data/medisante/{format}", "post", 202))
    assert (response.status_code, list(schema.iter_errors(accepted))) == (202, [])


def test_bff_answers_validate_against_the_response_schemas(
    live: AppContext, fhir_url: str, monkeypatch: pytest.MonkeyPatch
):
    put_patient(fhir_url, "anna")
    create_user(monkeypatch, "anna@example.org", "anna")
    response = request(
        bff_api.login, "POST", "x", body={"username": "anna@example.org", "password": "correct horse battery"}
    )
    status, body = answer(response)
    assert status == 200
    assert list(validator(response_schema("/api/oauth/token", "post", 200)).iter_errors(body)) == []
    sid = response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    status, body = answer(request(bff_api.profile, "GET", "x", sid=sid))
    assert list(validator(response_schema("/api/profile", "get", 200)).iter_errors(body)) == []
    assert list(validator("HealthKitUpload").iter_errors(UPLOAD)) == []
    status, body = answer(
        request(
            hk_api.upload_health_data, "POST", "x", sid=sid, body=UPLOAD, route_params={"format": "healthkit-json"}
        )
    )
    assert status == 202
    assert list(validator(response_schema("/api/health-data/{format}", "post", 202)).iter_errors(body)) == []
    status, body = answer(request(bff_api.profile, "GET", "x", sid="forged"))
    assert status == 401
    assert list(validator(response_schema("/api/profile", "get", 401)).iter_errors(body)) == []
