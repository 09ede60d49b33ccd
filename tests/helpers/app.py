"""The mobile app as tests play it: users, login, HealthKit uploads."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from shared import cli
from shared.api import bff as bff_api
from shared.api import healthkit as hk_api
from tests.helpers.common import FIXTURES, answer
from tests.helpers.stack import send

UPLOAD = json.loads((FIXTURES / "healthkit" / "upload.json").read_text())


PASSWORD = "correct horse battery"


def create_user(monkeypatch: pytest.MonkeyPatch, username: str, patient: str, password: str = PASSWORD) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert (
        cli.main(["create-user", "--username", username, "--email", username, "--name", "A", "--patient", patient]) == 0
    )


request = send  # the app's calls: session cookie (sid=...) and JSON bodies


def login(username: str, password: str = PASSWORD, address: str = "203.0.113.7") -> str:
    response = request(
        bff_api.login,
        "POST",
        "oauth/token",
        body={"username": username, "password": password},
        headers={"x-forwarded-for": address},
    )
    assert response.status_code == 200, response.get_body()
    cookie = response.headers["Set-Cookie"]
    return cookie.split(";", 1)[0].split("=", 1)[1]


def upload(sid: str, document: dict[str, Any], format_name: str = "healthkit-json"):
    return answer(
        request(hk_api.upload_health_data, "POST", "x", sid=sid, body=document, route_params={"format": format_name})
    )
