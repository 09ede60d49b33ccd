"""The fuzz suite: cases generated from the app's own OpenAPI document (schemathesis) sent
through the project's Functions host, with and without valid credentials. Any 5xx, any answer
that does not match the documented schema or status, any body with a stack trace or an
exception's name, fails. ``make test`` runs a bounded number of cases per operation;
``make fuzz`` many more (FUZZ_EXAMPLES)."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.functions_host import HttpHost
from shared.composition import get_context
from shared.errors import Conflict
from shared.localstack import LOCAL_ADMIN_CLIENT
from tests.helpers.common import MEDISANTE_KEY
from tests.helpers.stack import client_token, put_patient

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
HOST = HttpHost()
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", HOST)
# What a body must never carry: a Python traceback or a library's exception class name.
LEAK = re.compile(r"Traceback \(most recent call last\)|\b[A-Z][A-Za-z]+(?:Error|Exception)\b|File \"[^\"]+\", line")


def check_no_leak(ctx: Any, response: Any, case: Any) -> bool:
    text = response.text if isinstance(response.text, str) else ""
    found = LEAK.search(text)
    if found:
        raise AssertionError(f"the body names {found.group(0)!r}")
    return True


@pytest.fixture(scope="module")
def credentials() -> dict[str, dict[str, str]]:
    """No credentials, and every valid one at once: the admin bearer token, the webhook key and
    an app session (endpoints read the credential that fits them)."""
    context = get_context()
    put_patient(context.settings.fhir_url, "fuzz-patient")
    with contextlib.suppress(Conflict):
        context.directory.create_user(
            "fuzz@example.org", "fuzz password 1", email="fuzz@example.org", name="Fuzz", patient_id="fuzz-patient"
        )
    profile = context.identity.authenticate("fuzz@example.org", "fuzz password 1")
    sid, _ = context.sessions.create(profile)
    return {
        "none": {},
        "valid": {
            "authorization": f"Bearer {client_token(LOCAL_ADMIN_CLIENT)}",
            "x-api-key": MEDISANTE_KEY,
            "cookie": f"sid={sid}",
        },
    }


@pytest.mark.parametrize("who", ["none", "valid"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_api_answers_as_documented(case, who: str, credentials):
    get_context()  # the stack's settings are in place (conftest)
    headers = credentials[who]
    response = case.call(headers=headers)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            check_no_leak,
        ],
        headers=headers,
    )
