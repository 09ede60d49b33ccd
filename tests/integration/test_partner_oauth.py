"""The partner authorization server's grants and their attacks, against the local Cosmos DB
server: the consent decision (what the consent page will call) through the domain, the token
and revocation endpoints through their registered HTTP handlers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError

from shared.composition import AppContext
from shared.partners.authorization import OAuthCall, PartnerUser
from tests.helpers.common import registered
from tests.helpers.stack import send

REDIRECT = "https://app.example.com/oauth/callback"
ASKED = "metrics.blood-pressure.write metrics.heart-rate.write offline_access"
ANNA = PartnerUser(sub="user-anna", tenant="clinic-a", patient_id="anna")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@pytest.fixture
def server(clean_cosmos: AppContext):
    for tenant in ("clinic-a", "clinic-b"):
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
    return clean_cosmos.authorization_server


def _app(context: AppContext, app_type: str = "web", enable_in: str | None = "clinic-a") -> tuple[str, str | None]:
    from shared.partners.records import AppRegistration

    registration = AppRegistration.model_validate({
        "name": "Vitals Diary", "owner": "Example Health", "type": app_type,
        "grantTypes": ["authorization_code", "refresh_token"], "redirectUris": [REDIRECT],
        "scopes": ASKED.split(),
    })  # fmt: skip
    app, secret = context.partner_apps.register(registration)
    context.partner_apps.set_status(app.id, "approved")
    if enable_in:
        context.partner_apps.enable(app.id, enable_in)
    return app.id, secret


def _authorize(client_id: str, challenge: str | None, **changes: str) -> OAuthCall:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": ASKED,
              "state": "s-123", "code_challenge_method": "S256", **changes}  # fmt: skip
    if challenge is not None:
        params["code_challenge"] = challenge
    return OAuthCall("GET", f"https://hub.example/api/oauth2/authorize?{urlencode(params)}")


def _code(server, client_id: str, challenge: str, user: PartnerUser = ANNA, scopes: list[str] | None = None) -> str:
    answer = server.approve(_authorize(client_id, challenge), user, scopes)
    assert answer.status == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    return query["code"][0]


def _token(form: dict[str, str], client_id: str | None = None, secret: str | None = None) -> tuple[int, dict]:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if secret is not None:
        headers["authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    elif client_id is not None:
        form = {**form, "client_id": client_id}
    response = send(registered("partner_token"), "POST", "x", body=urlencode(form).encode(), headers=headers)
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.get_body())


def _exchange(client_id: str, secret: str | None, code: str, verifier: str | None) -> tuple[int, dict]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    return _token(form, client_id, secret)


def test_the_code_flow_issues_exactly_the_scopes_the_patient_left_ticked(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    ticked = ["metrics.blood-pressure.write", "offline_access"]  # heart rate unticked
    code = _code(server, client_id, challenge, scopes=ticked)
    status, token = _exchange(client_id, secret, code, verifier)
    assert status == 200, token
    assert (token["token_type"], token["expires_in"], set(token["scope"].split())) == ("Bearer", 900, set(ticked))
    assert token["refresh_token"]
    user, app_id, scopes = server.bearer(token["access_token"])
    assert (user, app_id, scopes) == (ANNA, client_id, set(ticked))
    stored = json.dumps(list(server.store.container.query_items("SELECT * FROM c", enable_cross_partition_query=True)))
    for value in (token["access_token"], token["refresh_token"], code):
        assert value not in stored  # digests only

    # The code is single use: a replay is refused.
    assert _exchange(client_id, secret, code, verifier)[1]["error"] == "invalid_grant"


def test_pkce_is_required_with_s256_and_checked(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    with pytest.raises(InvalidRequestError, match="PKCE is required"):
        server.approve(_authorize(client_id, None), ANNA)
    with pytest.raises(InvalidRequestError, match="must be S256"):
        server.approve(_authorize(client_id, verifier, code_challenge_method="plain"), ANNA)  # a downgrade
    code = _code(server, client_id, challenge)
    assert _exchange(client_id, secret, code, pkce()[0])[1]["error"] == "invalid_grant"  # another verifier
    code = _code(server, client_id, challenge)
    assert _exchange(client_id, secret, code, None)[1]["error"] == "invalid_request"  # none at all


def test_redirect_uris_match_exactly_and_codes_belong_to_their_app(server, clean_cosmos):
    client_id, _ = _app(clean_cosmos)
    other_id, other_secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    for wrong in (REDIRECT + "/", REDIRECT + "?x=1", "https://app.example.com/oauth/callbacks", "https://evil.example/cb"):
        with pytest.raises(InvalidRequestError):
            server.approve(_authorize(client_id, challenge, redirect_uri=wrong), ANNA)
    code = _code(server, client_id, challenge)
    assert _exchange(other_id, other_secret, code, verifier)[1]["error"] == "invalid_grant"  # not its code
    status, body = _exchange(client_id, "not-the-secret", _code(server, client_id, challenge), verifier)
    assert (status, body["error"]) == (401, "invalid_client")


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    first = _exchange(client_id, secret, _code(server, client_id, challenge), verifier)[1]
    status, second = _token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, client_id, secret)
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert server.bearer(second["access_token"]) is not None
    # A wider scope at refresh is refused.
    wider = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"], "scope": ASKED + " profile"}
    assert _token(wider, client_id, secret)[1]["error"] == "invalid_scope"
    # The rotated token used again: refused, and every token of the family ends with it.
    replay = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert _token(replay, client_id, secret)[1]["error"] == "invalid_grant"
    current = {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    assert _token(current, client_id, secret)[1]["error"] == "invalid_grant"
    assert server.bearer(second["access_token"]) is None
    assert server.bearer(first["access_token"]) is None


def test_a_public_native_app_needs_no_secret_but_its_verifier(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos, "native")
    assert secret is None
    verifier, challenge = pkce()
    status, token = _exchange(client_id, None, _code(server, client_id, challenge), verifier)
    assert status == 200, token
    assert _exchange(client_id, None, _code(server, client_id, challenge), None)[1]["error"] == "invalid_request"


def test_an_app_acts_only_while_approved_and_only_where_enabled(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    bert = PartnerUser(sub="user-bert", tenant="clinic-b", patient_id="bert")
    with pytest.raises(AccessDeniedError, match="not enabled for your medical centre"):
        server.approve(_authorize(client_id, challenge), bert)
    denied = server.approve(_authorize(client_id, challenge), None)  # the user said no
    assert parse_qs(urlsplit(denied.headers["Location"]).query)["error"] == ["access_denied"]
    code = _code(server, client_id, challenge)
    token = _exchange(client_id, secret, code, verifier)[1]
    clean_cosmos.partner_apps.set_status(client_id, "suspended")
    assert server.bearer(token["access_token"]) is None  # at once
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    assert _token(refresh, client_id, secret)[1]["error"] == "invalid_client"


def test_revoking_a_token_ends_the_apps_grant(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    token = _exchange(client_id, secret, _code(server, client_id, challenge), verifier)[1]
    headers = {"content-type": "application/x-www-form-urlencoded",
               "authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}  # fmt: skip
    body = urlencode({"token": token["refresh_token"], "token_type_hint": "refresh_token"}).encode()
    assert send(registered("partner_revoke"), "POST", "x", body=body, headers=headers).status_code == 200
    assert server.bearer(token["access_token"]) is None
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    assert _token(refresh, client_id, secret)[1]["error"] == "invalid_grant"


def test_bad_token_requests_are_4xx(server, clean_cosmos):
    status, body = _token({"grant_type": "client_credentials"}, "app-x", "y")
    assert status in (400, 401)
    assert "error" in body
    bad = send(registered("partner_token"), "POST", "x", body=b'{"grant_type": "x"}',
               headers={"content-type": "application/json"})  # fmt: skip
    assert bad.status_code == 415
    twice = send(registered("partner_token"), "POST", "x", body=b"grant_type=a&grant_type=b",
                 headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert twice.status_code == 400


def test_of_concurrent_exchanges_of_one_code_exactly_one_gets_tokens(server, clean_cosmos):
    import functools

    from tests.helpers.common import run_together

    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    code = _code(server, client_id, challenge)
    results = run_together([functools.partial(_exchange, client_id, secret, code, verifier) for _ in range(6)])
    assert sorted(status for status, _ in results) == [200, 400, 400, 400, 400, 400]


def test_the_grant_is_a_consent_record_and_revoking_either_ends_the_other(server, clean_cosmos):
    client_id, secret = _app(clean_cosmos)
    verifier, challenge = pkce()
    ticked = ["metrics.blood-pressure.write", "offline_access"]
    token = _exchange(client_id, secret, _code(server, client_id, challenge, scopes=ticked), verifier)[1]
    consents = clean_cosmos.consents.for_tenant("clinic-a")
    record = consents.find("anna", client_id)
    assert record is not None
    assert (record.status, record.scopes, record.attestation) == ("active", ["blood-pressure"], "patient")
    assert clean_cosmos.consents.for_tenant("clinic-b").find("anna", client_id) is None

    # The clinic (or the patient) revokes the consent: the app's tokens end at once.
    consents.revoke(record.id, "clinic-a-admin")
    assert server.bearer(token["access_token"]) is None
    refresh = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    assert _token(refresh, client_id, secret)[1]["error"] == "invalid_grant"

    # Consenting again, then the app revoking its token: the consent ends too.
    token = _exchange(client_id, secret, _code(server, client_id, challenge), verifier)[1]
    assert consents.find("anna", client_id).active
    headers = {"content-type": "application/x-www-form-urlencoded",
               "authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}  # fmt: skip
    body = urlencode({"token": token["access_token"], "token_type_hint": "access_token"}).encode()
    assert send(registered("partner_revoke"), "POST", "x", body=body, headers=headers).status_code == 200
    assert consents.find("anna", client_id).status == "revoked"


def test_an_app_not_yet_approved_cannot_be_authorized_nor_get_tokens(server, clean_cosmos):
    from authlib.oauth2.rfc6749.errors import InvalidClientError

    from shared.partners.records import AppRegistration

    registration = AppRegistration.model_validate({
        "name": "Pending", "owner": "Example", "type": "web", "grantTypes": ["authorization_code"],
        "redirectUris": [REDIRECT], "scopes": ASKED.split(),
    })  # fmt: skip
    app, secret = clean_cosmos.partner_apps.register(registration)
    with pytest.raises(InvalidClientError):
        server.approve(_authorize(app.id, pkce()[1]), ANNA)
    status, body = _exchange(app.id, secret, "any-code", pkce()[0])
    assert (status, body["error"]) == (401, "invalid_client")
