"""Bad settings give one clear error at first use, naming the setting, never its value."""

from __future__ import annotations

import json

import pytest

from shared.api import health
from shared.composition import reset_context
from shared.errors import ConfigurationError
from shared.settings import get_settings
from tests.helpers.common import http_request


@pytest.fixture
def broken_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FHIR_URL", "ftp-not-a-url-secretish")
    monkeypatch.setenv("MAX_DEQUEUE_COUNT", "lots")
    monkeypatch.delenv("COSMOS_ENDPOINT", raising=False)
    reset_context()
    yield
    monkeypatch.undo()
    reset_context()


@pytest.mark.usefixtures("broken_settings")
def test_bad_settings_raise_one_error_naming_each_setting_without_its_value():
    with pytest.raises(ConfigurationError) as caught:
        get_settings()
    message = caught.value.message
    assert "FHIR_URL" in message
    assert "MAX_DEQUEUE_COUNT" in message
    assert "COSMOS_ENDPOINT" in message
    assert "secretish" not in message
    assert "lots" not in message


@pytest.mark.usefixtures("broken_settings")
def test_an_endpoint_answers_a_json_configuration_error_not_a_crash():
    response = health.health(http_request("GET", "http://localhost/api/health"))
    assert response.status_code == 500
    body = json.loads(response.get_body())
    assert body["error"]["code"] == "configuration_error"
    assert "FHIR_URL" in body["error"]["message"]


def test_valid_local_settings_load(monkeypatch: pytest.MonkeyPatch):
    from shared.localstack import local_settings
    from shared.settings import reset_settings_cache

    for name, value in local_settings().items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    settings = get_settings()
    assert settings.is_local
    assert settings.fhir_scope.endswith("/.default")


def test_the_example_local_settings_list_every_setting_and_load():
    import json

    from shared.settings import Settings
    from tests.helpers.common import REPO

    values = json.loads((REPO / "local.settings.json.example").read_text())["Values"]
    listed = {key.lower() for key in values}
    for name, field in Settings.model_fields.items():
        if name == "storage_account_name":  # Azure only: locally the connection string is used
            continue
        assert (field.alias or name).lower() in listed, name
