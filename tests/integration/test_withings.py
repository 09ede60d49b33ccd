"""The Withings connector end to end: the local Withings simulator (OAuth, Notify with its HEAD
probe, getmeas/heart/activity with lastupdate and paging, status envelopes) plus the local
stack. Withings reaches the app's notification URL through a small HTTP front."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.functions.timer import TimerRequest  # the host's concrete class

from local.functions_host import serving
from shared import cli
from shared.api import pipeline as pipeline_api
from shared.api import withings as withings_api
from shared.clients.storage import queue_client
from shared.composition import AppContext, reset_context
from shared.counters import FixedWindowCounter
from shared.names import WITHINGS_SYNC_QUEUE
from shared.sources.withings.budget import CallBudget
from shared.sources.withings.client import Tokens, WithingsClient
from shared.sources.withings.jobs import SyncJob
from shared.sources.withings.sync import SyncJobRunner
from shared.sources.withings.tokens import NeedsReconsent, secret_name
from tests.helpers.common import FIXTURES, answer
from tests.helpers.stack import drive, put_patient, search, send

USERID = "12345"
SIM = "http://127.0.0.1:8096"
NOW = int(time.time())


def sim(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if body is None:
        response = requests.get(f"{SIM}{path}", timeout=10)
    else:
        response = requests.post(f"{SIM}{path}", json=body, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def sim_calls(prefix: str) -> int:
    return sum(count for name, count in sim("/_sim/stats")["stats"].items() if name.startswith(prefix))


def user_data() -> dict[str, Any]:
    now = int(time.time())  # not the module's import time: the cursor overlap is 5 minutes
    groups = json.loads((FIXTURES / "withings" / "getmeas.json").read_text())["body"]["measuregrps"]
    for group in groups:
        group["modified"] = now - 120
    groups.append(
        {
            "grpid": 2726399000,
            "attrib": 0,
            "date": now - 3600,
            "created": now - 3500,
            "modified": now - 120,
            "category": 1,
            "deviceid": "0f0e0d0c0b0a",
            "model": "ScanWatch",
            "measures": [{"value": 97, "type": 54, "unit": 0}],
        }
    )
    series = {
        "deviceid": "0f0e0d0c0b0a",
        "model": "ScanWatch",
        "ecg": {"signalid": 777, "afib": 0},
        "heart_rate": 72,
        "timestamp": now - 7200,
        "timezone": "Europe/Paris",
        "modified": now - 100,
        "signal": [(i * 37) % 400 - 200 for i in range(300 * 30)],
        "sampling_frequency": 300,
    }
    activities = [
        {"date": "2026-11-20", "steps": 8412, "timezone": "Europe/Paris", "deviceid": None, "modified": now - 50}
    ]
    return {"userid": USERID, "measuregrps": groups, "series": [series], "activities": activities}


@pytest.fixture
def host(context: AppContext) -> Iterator[str]:
    """The app served by the project's own Functions host where Withings calls it."""
    port = int(urlsplit(context.settings.withings_public_base_url or "").port or 7071)
    with serving(port) as url:
        yield url


@pytest.fixture
def withings(clean_cosmos: AppContext, clean_fhir: str, store: Any, host: str) -> AppContext:
    sim("/_sim/reset", {})
    sim("/_sim/user", user_data())
    queue_client(clean_cosmos.settings, WITHINGS_SYNC_QUEUE).clear_messages()
    clean_cosmos.withings_tokens.delete(USERID)
    put_patient(clean_fhir, "anna")
    return clean_cosmos


def sync_queue(context: AppContext):
    return queue_client(context.settings, WITHINGS_SYNC_QUEUE)


def run_sync(context: AppContext) -> int:
    return drive(sync_queue(context), withings_api.withings_sync)


def run_pipeline(store: Any) -> int:
    return drive(store.queue, pipeline_api.process_raw_record, max_deliveries=200)


def connect(admin_token: str) -> requests.Response:
    status, body = answer(
        send(withings_api.withings_connect, "GET", "x", token=admin_token, params={"patient": "anna"})
    )
    assert status == 302
    consent_page = requests.get(body["authorizeUrl"], allow_redirects=False, timeout=10)
    assert consent_page.status_code == 302
    return requests.get(consent_page.headers["Location"], allow_redirects=False, timeout=10)


def by_code(fhir_url: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for observation in search(fhir_url, "Observation", subject="Patient/anna", _count="200"):
        found.setdefault(observation["code"]["coding"][0]["code"], []).append(observation)
    return found


def notify(host: str, context: AppContext, form: str, secret: str | None = None) -> requests.Response:
    url = f"{host}/api/withings/notify/{secret or context.withings_notify_secret}"
    return requests.post(url, data=form, headers={"content-type": "application/x-www-form-urlencoded"}, timeout=10)


def test_connect_notify_and_sync_into_fhir_without_duplicates(
    withings: AppContext, store: Any, fhir_url: str, admin_token: str, host: str
):
    callback = connect(admin_token)
    assert callback.status_code == 200, callback.text
    assert "connected" in callback.text
    tokens = withings.withings_tokens.load(USERID)
    assert tokens.refresh_token
    secret = withings.secrets.get_secret(secret_name(USERID))
    assert (secret.properties.tags or {}).get("source") == "withings"
    consent = withings.consents.find("anna", "withings")
    assert consent is not None
    assert (consent.status, consent.account_id) == ("active", USERID)
    assert {"blood-pressure", "body-weight", "steps", "ecg"} <= set(consent.scopes)
    subscriptions = sim("/_sim/stats")["subscriptions"][USERID]
    assert {s["appli"] for s in subscriptions} == {1, 2, 4, 16, 54, 58, 46}
    assert all(s["callbackurl"].startswith(f"{host}/api/withings/notify/") for s in subscriptions)

    assert sync_queue(withings).get_queue_properties().approximate_message_count == 1  # the backfill
    sync_queue(withings).clear_messages()  # here the data must come through notifications
    for appli in (4, 16, 54):
        response = notify(host, withings, f"userid={USERID}&appli={appli}&startdate={NOW - 4000}&enddate={NOW}")
        assert response.status_code == 200
    assert run_sync(withings) == 3
    run_pipeline(store)
    codes = by_code(fhir_url)
    [bp] = codes["85354-9"]
    assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in bp["component"]} == {
        "8480-6": 143,
        "8462-4": 106,
    }
    assert sorted(o["valueQuantity"]["value"] for o in codes["29463-7"]) == pytest.approx([56.3, 72.35])
    [spo2] = codes["2708-6"]
    assert spo2["valueQuantity"]["value"] == 97
    [ecg] = codes["131328"]
    assert any("valueSampledData" in c for c in ecg["component"])
    [steps] = codes["55423-8"]
    assert steps["valueQuantity"]["value"] == 8412
    written = sum(len(v) for v in codes.values())

    calls_before = sim_calls("/measure")
    for _ in range(10):  # Withings delivers at least once: the same notification ten times
        response = notify(host, withings, f"userid={USERID}&appli=4&startdate={NOW - 4000}&enddate={NOW}")
        assert response.status_code == 200
    withings.withings_jobs.enqueue(SyncJob(userid=USERID))  # and an overlapping poller run
    assert run_sync(withings) == 11
    pages_per_run = -(-len(user_data()["measuregrps"]) // 2)  # the simulator pages by 2
    assert sim_calls("/measure") - calls_before == pages_per_run  # the repeats ran once before: only the poller reads
    run_pipeline(store)
    assert sum(len(v) for v in by_code(fhir_url).values()) == written  # nothing new, no duplicate


def test_edits_and_deletions_upstream_become_amended_and_entered_in_error(
    withings: AppContext, store: Any, fhir_url: str, admin_token: str, host: str
):
    assert connect(admin_token).status_code == 200
    run_sync(withings)
    run_pipeline(store)
    sim(
        "/_sim/edit-group",
        {"userid": USERID, "grpid": 2726375351, "changes": {"measures": [{"value": 56900, "type": 1, "unit": -3}]}},
    )
    sim("/_sim/delete-group", {"userid": USERID, "grpid": 2726388728})  # the blood pressure
    assert notify(host, withings, f"userid={USERID}&appli=1&startdate={NOW}&enddate={NOW + 60}").status_code == 200
    run_sync(withings)
    run_pipeline(store)
    codes = by_code(fhir_url)
    edited = next(o for o in codes["29463-7"] if o["identifier"][0]["value"].startswith("2726375351/"))
    assert (edited["status"], edited["valueQuantity"]["value"]) == ("amended", 56.9)
    [bp] = codes["85354-9"]
    [heart_rate] = codes["8867-4"]
    assert (bp["status"], heart_rate["status"]) == ("entered-in-error", "entered-in-error")


def test_refresh_is_single_flight_and_a_dead_refresh_token_needs_reconsent(withings: AppContext, admin_token: str):
    assert connect(admin_token).status_code == 200
    store = withings.withings_tokens
    current = store.load(USERID)
    store.save(Tokens(**{**current.__dict__, "expires_at": 0}))  # the access token has expired
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store.access_token(USERID))) for _ in range(2)]
    before = sim_calls("token:refresh_token")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sim_calls("token:refresh_token") - before == 1  # one exchange for both
    assert len(set(results)) == 1
    assert store.load(USERID).refresh_token != current.refresh_token  # the rotated token is kept

    sim("/_sim/invalidate-refresh", {"userid": USERID})
    store.save(Tokens(**{**store.load(USERID).__dict__, "expires_at": 0}))
    with pytest.raises(NeedsReconsent):
        store.access_token(USERID)
    consent = withings.consents.find("anna", "withings")
    assert consent is not None
    assert consent.status == "needs-reconsent"
    outcome = withings.withings_jobs.handle(SyncJob(userid=USERID).model_dump_json())
    assert outcome["outcome"] == "consent-needs-reconsent"  # reported, not retried


def test_601_storms_defer_jobs_within_the_budget_and_lose_nothing(
    withings: AppContext, store: Any, fhir_url: str, admin_token: str
):
    assert connect(admin_token).status_code == 200
    sync_queue(withings).clear_messages()
    clock = [1_000_000.0]
    per_minute = 6  # a full sync of this user takes 5 calls
    counter = FixedWindowCounter(withings.cosmos.get_container_client("withings"), 60, clock=lambda: clock[0])
    budget = CallBudget(counter, per_minute, 60)
    context_sync = withings.withings_jobs.sync
    client = WithingsClient(
        withings.settings.withings_api_url,
        context_sync.client.client_id,
        context_sync.client.client_secret,
        budget=budget.acquire,
    )
    sync = dataclasses.replace(context_sync, client=client)
    runner = SyncJobRunner(sync, budget, sync_queue(withings), withings.cosmos.get_container_client("withings"))
    sim("/_sim/faults", {"status": 601, "count": 2, "paths": ["/measure"]})
    job = SyncJob(userid=USERID).model_dump_json()
    calls_per_window: dict[int, int] = {}

    def handle() -> str:
        before = sim_calls("/")
        outcome = runner.handle(job)["outcome"]
        window = int(clock[0] // 60)
        calls_per_window[window] = calls_per_window.get(window, 0) + sim_calls("/") - before
        return str(outcome)

    assert handle() == "deferred"  # 601: everybody pauses
    calls = sim_calls("/")
    assert handle() == "deferred"  # still paused: not a single call
    assert sim_calls("/") == calls
    assert sync_queue(withings).get_queue_properties().approximate_message_count == 2  # kept, not lost
    clock[0] += 61
    assert handle() == "deferred"  # the second 601
    outcomes = []
    for _ in range(5):
        clock[0] += 61
        outcomes.append(handle())
        for _ in range(3):  # other jobs in the same minute find the budget spent
            outcomes.append(handle())
        if outcomes[-4] == "synced":
            break
    assert "synced" in outcomes
    assert max(calls_per_window.values()) <= per_minute  # the budget held in every minute
    assert per_minute in calls_per_window.values()  # and was spent in one: the others waited
    run_pipeline(store)
    codes = by_code(fhir_url)
    assert {"85354-9", "29463-7", "2708-6", "131328", "55423-8"} <= set(codes)  # nothing lost


def test_unlink_and_disconnect_remove_tokens_revoke_consent_and_unsubscribe(
    withings: AppContext, admin_token: str, host: str
):
    assert connect(admin_token).status_code == 200
    assert notify(host, withings, f"userid={USERID}&appli=46&action=unlink").status_code == 200
    sync_queue(withings).clear_messages()
    assert (
        withings.withings_jobs.handle(SyncJob(userid=USERID, appli=46, action="unlink").model_dump_json())["outcome"]
        == "unlinked"
    )
    with pytest.raises(NeedsReconsent):
        withings.withings_tokens.load(USERID)
    consent = withings.consents.find("anna", "withings")
    assert consent is not None
    assert consent.status == "revoked"
    assert sim("/_sim/stats")["subscriptions"][USERID] == []

    assert connect(admin_token).status_code == 200  # reconnect: the soft-deleted secret is recovered
    assert withings.consents.find("anna", "withings").status == "active"
    status = send(withings_api.withings_disconnect, "POST", "x", token=admin_token, params={"patient": "anna"})
    assert status.status_code == 204
    assert withings.consents.find("anna", "withings").status == "revoked"
    assert sim("/_sim/stats")["subscriptions"][USERID] == []


def test_bad_notifications_states_and_consents_are_4xx_and_do_no_work(
    withings: AppContext, admin_token: str, host: str, monkeypatch: pytest.MonkeyPatch
):
    queue = sync_queue(withings)
    bad_forms = [
        "userid=abc&appli=4&startdate=1&enddate=2",
        "appli=4&startdate=1&enddate=2",
        "userid=1&appli=999&startdate=1&enddate=2",
        "userid=1&appli=4",
        "userid=1&appli=4&startdate=-5&enddate=2",
        "%%%",
    ]
    for form in bad_forms:
        assert notify(host, withings, form).status_code == 400, form
    assert notify(host, withings, "userid=1&appli=4&startdate=1&enddate=2", secret="wrong").status_code == 404
    assert requests.head(f"{host}/api/withings/notify/wrong", timeout=10).status_code == 404
    assert requests.head(f"{host}/api/withings/notify/{withings.withings_notify_secret}", timeout=10).status_code == 200
    assert queue.get_queue_properties().approximate_message_count == 0

    monkeypatch.setenv("WITHINGS_NOTIFY_ALLOWED_NETWORKS", "198.51.100.0/24")
    reset_context()
    try:
        from shared.composition import get_context

        secret = get_context().withings_notify_secret
        refused = requests.post(
            f"{host}/api/withings/notify/{secret}",
            data="userid=1&appli=4&startdate=1&enddate=2",
            headers={"content-type": "application/x-www-form-urlencoded", "x-forwarded-for": "203.0.113.9"},
            timeout=10,
        )
        assert refused.status_code == 403
    finally:
        monkeypatch.undo()
        reset_context()

    # Unknown users: 200 for Withings, recorded by the worker.
    assert notify(host, withings, "userid=999&appli=1&startdate=1&enddate=2").status_code == 200
    run_sync(withings)
    unknown = withings.cosmos.get_container_client("withings").read_item("unknown-999", partition_key="unknown-999")
    assert unknown["userid"] == "999"

    # A denied consent, a forged state, a replayed state: a clear page, nothing stored.
    sim("/_sim/deny-next-consent", {})
    denied = connect(admin_token)
    assert denied.status_code == 400
    assert "not granted" in denied.text
    forged = requests.get(f"{host}/api/withings/callback?code=abc&state=eyJ4Ijp9.forged", timeout=10)
    assert forged.status_code == 400
    assert withings.consents.find("anna", "withings") is None
    callback = connect(admin_token)
    assert callback.status_code == 200
    replay = requests.get(callback.url, timeout=10)
    assert replay.status_code == 400
    assert "already used" in replay.text
    query = parse_qs(urlsplit(callback.url).query)
    assert "code" in query


def test_poller_queues_only_users_not_synced_for_a_while(withings: AppContext, admin_token: str):
    assert connect(admin_token).status_code == 200
    run_sync(withings)  # the backfill sets every cursor
    queue = sync_queue(withings)
    withings_api.withings_poller(TimerRequest(past_due=False))
    assert queue.get_queue_properties().approximate_message_count == 0  # synced just now
    cursors = withings.cosmos.get_container_client("sync-cursors")
    for cursor in list(cursors.query_items("SELECT * FROM c", enable_cross_partition_query=True)):
        cursor["syncedAt"] = time.time() - 2 * 3600  # two hours ago: older than the hour allowed
        cursors.upsert_item({k: v for k, v in cursor.items() if not k.startswith("_")})
    withings_api.withings_poller(TimerRequest(past_due=False))
    assert queue.get_queue_properties().approximate_message_count == 1
    [message] = queue.peek_messages()
    job = SyncJob.model_validate_json(message.content)
    assert (job.userid, job.appli) == (USERID, None)


def test_resubscribe_moves_notifications_to_the_current_url(
    withings: AppContext, admin_token: str, host: str, capsys: pytest.CaptureFixture[str]
):
    assert connect(admin_token).status_code == 200
    stale = f"{host}/api/withings/notify/{'0' * 64}"  # the URL before a client secret rotation
    sim("/_sim/subscribe", {"userid": USERID, "callbackurl": stale, "appli": 1})
    current_url = withings.withings_connector.notify_url
    withings.withings_client.revoke(withings.withings_tokens.access_token(USERID), current_url, 4)  # one lost
    assert cli.main(["withings-resubscribe"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"withingsUser": USERID, "tenant": "default", "revoked": 1, "subscribed": 1}
    subscriptions = sim("/_sim/stats")["subscriptions"][USERID]
    assert {s["callbackurl"] for s in subscriptions} == {current_url}
    assert sorted(s["appli"] for s in subscriptions) == [1, 2, 4, 16, 46, 54, 58]


def test_a_backfill_reads_the_token_once_per_run_and_takes_the_budget_in_blocks(
    withings: AppContext, store: Any, admin_token: str, monkeypatch: pytest.MonkeyPatch
):
    assert connect(admin_token).status_code == 200
    loads: list[str] = []
    original = type(withings.withings_tokens).load

    def counted(self, userid, tenant="default"):
        loads.append(userid)
        return original(self, userid, tenant)

    monkeypatch.setattr(type(withings.withings_tokens), "load", counted)
    budget = withings.withings_budget
    trips_before = budget.round_trips
    calls_before = sum(sim("/_sim/stats")["stats"].values())
    assert run_sync(withings) == 1  # the backfill job: every domain, every page
    withings_calls = sum(sim("/_sim/stats")["stats"].values()) - calls_before
    assert withings_calls >= 5  # several pages and domains
    assert loads == [USERID]  # one Key Vault read for the whole run
    assert budget.round_trips - trips_before <= -(-withings_calls // budget.block)


# -- Tenants: one Withings application, a link per tenant -------------------------------------------


def _connect_in(token: str, tenant: str, patient: str) -> requests.Response:
    from tests.helpers.common import registered

    route = {"tenantId": tenant}
    connecting = send(registered("tenant_withings_connect"), "GET", "x", token=token, params={"patient": patient},
                      route_params=route)  # fmt: skip
    status, body = answer(connecting)
    assert status == 302, body
    consent_page = requests.get(body["authorizeUrl"], allow_redirects=False, timeout=10)
    return requests.get(consent_page.headers["Location"], allow_redirects=False, timeout=10)


def _queued_tenants(context: AppContext) -> list[str]:
    return sorted(SyncJob.model_validate_json(m.content).tenant for m in sync_queue(context).peek_messages(32))


def test_a_withings_user_linked_in_two_tenants_is_two_independent_links(
    withings: AppContext, store: Any, fhir_url: str, host: str, monkeypatch: pytest.MonkeyPatch
):
    from shared.fhir.mapping import tenant_of
    from shared.localstack import LOCAL_PLATFORM_CLIENT
    from tests.helpers.common import registered
    from tests.helpers.stack import client_token

    platform = client_token(LOCAL_PLATFORM_CLIENT)
    patients = {"clinic-a": "anna-a", "clinic-b": "anna-b"}
    for tenant, patient in patients.items():
        withings.tenant_administration.create(tenant, tenant.title())
        withings.withings_tokens.delete(USERID, tenant)
        put_patient(fhir_url, patient, tenant=tenant)
    # A patient of clinic-a cannot be linked from clinic-b.
    refused = send(registered("tenant_withings_connect"), "GET", "x", token=platform,
                   params={"patient": "anna-a"}, route_params={"tenantId": "clinic-b"})  # fmt: skip
    assert answer(refused)[0] == 422
    for tenant, patient in patients.items():  # the same Withings user consents in both centres
        assert _connect_in(platform, tenant, patient).status_code == 200

    # Two token pairs, each under its tenant's secret name; none in the default tenant.
    pairs = {tenant: withings.withings_tokens.load(USERID, tenant) for tenant in patients}
    assert pairs["clinic-a"].refresh_token != pairs["clinic-b"].refresh_token
    assert withings.secrets.get_secret(secret_name(USERID, "clinic-b")).name == f"withings-clinic-b-{USERID}"
    with pytest.raises(NeedsReconsent):
        withings.withings_tokens.load(USERID)
    # Each link subscribed with its tenant's own URL and secret.
    urls = {s["callbackurl"] for s in sim("/_sim/stats")["subscriptions"][USERID]}
    assert urls == {withings.withings_notify_url_of(tenant) for tenant in patients}
    for tenant in patients:
        assert f"/api/tenants/{tenant}/withings/notify/" in withings.withings_notify_url_of(tenant)
    secret_a = withings.withings_notify_secret_of("clinic-a")
    assert secret_a not in withings.withings_notify_url_of("clinic-b")
    crossed = requests.post(f"{host}/api/tenants/clinic-b/withings/notify/{secret_a}", data={"userid": USERID,
                            "appli": 4, "startdate": NOW - 10, "enddate": NOW}, timeout=10)  # fmt: skip
    assert crossed.status_code == 404  # one tenant's URL does not notify into another

    # The backfills: each link's readings land with its tenant's tag and its patient, only.
    assert _queued_tenants(withings) == ["clinic-a", "clinic-b"]
    assert run_sync(withings) == 2
    run_pipeline(store)
    written: dict[str, list[str]] = {}
    for tenant, patient in patients.items():
        observations = search(fhir_url, "Observation", subject=f"Patient/{patient}", _count="200")
        assert observations
        assert {tenant_of(o) for o in observations} == {tenant}
        written[tenant] = sorted(o["code"]["coding"][0]["code"] for o in observations)
    assert written["clinic-a"] == written["clinic-b"]  # the same account's data, twice, apart
    assert not search(fhir_url, "Observation", subject="Patient/anna", _count="10")

    # One change at Withings: one notification per link, one job per link.
    delivered = sim("/_sim/notify", {"userid": USERID, "appli": 4})["delivered"]
    assert delivered == [200, 200]
    assert _queued_tenants(withings) == ["clinic-a", "clinic-b"]
    sync_queue(withings).clear_messages()

    # A suspended tenant's link waits, its cursor untouched; the other goes on.
    cursors = withings.withings_jobs.sync.cursors
    before = {tenant: cursors.get(USERID, "measure", tenant) for tenant in patients}
    withings.tenant_administration.suspend("clinic-b")
    assert sim("/_sim/notify", {"userid": USERID, "appli": 4})["delivered"] == [200, 200]
    # Cursors keep whole seconds: this run starts in a later second than the backfill's.
    monkeypatch.setattr(withings.withings_jobs.sync, "clock", lambda: time.time() + 2)
    assert run_sync(withings) == 2
    after = {tenant: cursors.get(USERID, "measure", tenant) for tenant in patients}
    assert after["clinic-b"] == before["clinic-b"]
    assert after["clinic-a"].synced_at > before["clinic-a"].synced_at
    # The poller plans the active tenants' links only.
    for tenant in patients:
        for domain in ("measure", "activity", "ecg"):
            cursors.advance(USERID, domain, 1, 0.0, tenant)  # cursors never go back: only synced_at is old
    stale = cursors.container
    for item in list(stale.query_items("SELECT * FROM c", enable_cross_partition_query=True)):
        stale.upsert_item({**{k: v for k, v in item.items() if not k.startswith("_")}, "syncedAt": 0.0})
    withings_api.withings_poller(TimerRequest(past_due=False))
    assert _queued_tenants(withings) == ["clinic-a"]
    sync_queue(withings).clear_messages()
    withings.tenant_administration.activate("clinic-b")

    # Disconnecting in clinic-a ends that link only.
    gone = send(registered("tenant_withings_disconnect"), "POST", "x", token=platform,
                params={"patient": "anna-a"}, route_params={"tenantId": "clinic-a"})  # fmt: skip
    assert gone.status_code == 204
    assert withings.consents.for_tenant("clinic-a").find("anna-a", "withings").status == "revoked"
    assert withings.consents.for_tenant("clinic-b").find("anna-b", "withings").status == "active"
    with pytest.raises(NeedsReconsent):
        withings.withings_tokens.load(USERID, "clinic-a")
    assert withings.withings_tokens.load(USERID, "clinic-b").refresh_token
    urls = {s["callbackurl"] for s in sim("/_sim/stats")["subscriptions"][USERID]}
    assert urls == {withings.withings_notify_url_of("clinic-b")}


def test_one_tenants_backfill_cannot_starve_another_tenants_notifications(clean_cosmos: AppContext):
    from shared.sources.withings.budget import BudgetExhausted

    for tenant in ("clinic-a", "clinic-b"):
        clean_cosmos.tenant_administration.create(tenant, tenant.title())
    directory = clean_cosmos.tenant_directory
    clock = 1_000_020.0  # inside one minute, whatever the machine's speed
    per_minute = 12  # a quarter (3) is kept for notifications

    def budget() -> CallBudget:  # one per process: they share only the Cosmos item
        counter = FixedWindowCounter(clean_cosmos.cosmos.get_container_client("withings"), 60, clock=lambda: clock)
        return CallBudget(counter, per_minute, 60, block=1, serves_tenants=directory.serves_tenants)

    granted: dict[str, int] = {"clinic-a backfill": 0, "clinic-b notifications": 0}
    lock = threading.Lock()

    def spend(instance: CallBudget, tenant: str, backfill: bool, label: str, at_most: int) -> None:
        with instance.spending_for(tenant, backfill=backfill):
            for _ in range(at_most):
                try:
                    instance.acquire()
                except BudgetExhausted:
                    return
                with lock:
                    granted[label] += 1

    workers = [threading.Thread(target=spend, args=(budget(), "clinic-a", True, "clinic-a backfill", 100))
               for _ in range(4)]  # fmt: skip
    workers += [threading.Thread(target=spend, args=(budget(), "clinic-b", False, "clinic-b notifications", wanted))
                for wanted in (2, 1)]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert granted["clinic-b notifications"] == 3  # every call clinic-b's notifications asked for
    assert granted["clinic-a backfill"] <= per_minute - 3  # the backfill never took the notifications' part
    assert sum(granted.values()) <= per_minute  # and the application's budget held
    another = budget()
    with another.spending_for("clinic-a", backfill=False), pytest.raises(BudgetExhausted):
        another.acquire()  # clinic-a is over its share of the minute, notifications included
