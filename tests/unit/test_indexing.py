"""Every function indexes with the expected trigger, and its parameters match its bindings."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

from shared.names import RAW_QUEUE, WITHINGS_SYNC_QUEUE
from shared.settings import Settings
from tests.helpers.common import REPO, registered_functions

EXPECTED_HTTP = {
    "health": ("health", ["GET"], "FUNCTION"),
    "medisante_webhook": ("health-data/medisante/{format}", ["POST"], "ANONYMOUS"),
    "register_device": ("devices", ["POST"], "ANONYMOUS"),
    "list_devices": ("devices", ["GET"], "ANONYMOUS"),
    "get_device": ("devices/{id}", ["GET"], "ANONYMOUS"),
    "assign_device": ("devices/assign", ["POST"], "ANONYMOUS"),
    "unassign_device": ("devices/{id}/unassign", ["POST"], "ANONYMOUS"),
    "correct_attribution": ("devices/{id}/correct-attribution", ["POST"], "ANONYMOUS"),
    "grant_consent": ("consents", ["POST"], "ANONYMOUS"),
    "list_consents": ("consents", ["GET"], "ANONYMOUS"),
    "get_consent": ("consents/{id}", ["GET"], "ANONYMOUS"),
    "revoke_consent": ("consents/{id}/revoke", ["POST"], "ANONYMOUS"),
    "openapi": ("openapi.json", ["GET"], "FUNCTION"),
    "login": ("oauth/token", ["POST"], "ANONYMOUS"),
    "profile": ("profile", ["GET"], "ANONYMOUS"),
    "reset_password": ("reset-password", ["POST"], "ANONYMOUS"),
    "confirm_password_reset": ("reset-password/confirm", ["POST"], "ANONYMOUS"),
    "logout": ("logout", ["POST"], "ANONYMOUS"),
    "upload_health_data": ("health-data/{format}", ["POST"], "ANONYMOUS"),
    "healthkit_ingest": ("health-data/healthkit/{format}", ["POST"], "ANONYMOUS"),
    "withings_connect": ("withings/connect", ["GET"], "ANONYMOUS"),
    "withings_callback": ("withings/callback", ["GET"], "ANONYMOUS"),
    "withings_disconnect": ("withings/disconnect", ["POST"], "ANONYMOUS"),
    "withings_notify": ("withings/notify/{secret}", ["HEAD", "POST"], "ANONYMOUS"),
    "list_tenants": ("platform/tenants", ["GET"], "ANONYMOUS"),
    "create_tenant": ("platform/tenants", ["POST"], "ANONYMOUS"),
    "get_tenant": ("platform/tenants/{id}", ["GET"], "ANONYMOUS"),
    "suspend_tenant": ("platform/tenants/{id}/suspend", ["POST"], "ANONYMOUS"),
    "activate_tenant": ("platform/tenants/{id}/activate", ["POST"], "ANONYMOUS"),
    "list_members": ("platform/tenants/{id}/members", ["GET"], "ANONYMOUS"),
    "add_member": ("platform/tenants/{id}/members", ["POST"], "ANONYMOUS"),
    "remove_member": ("platform/tenants/{id}/members/{member}", ["DELETE"], "ANONYMOUS"),
    "register_app": ("partner/apps", ["POST"], "ANONYMOUS"),
    "list_apps": ("platform/apps", ["GET"], "ANONYMOUS"),
    "approve_app": ("platform/apps/{clientId}/approve", ["POST"], "ANONYMOUS"),
    "suspend_app": ("platform/apps/{clientId}/suspend", ["POST"], "ANONYMOUS"),
    "list_tenant_apps": ("apps", ["GET"], "ANONYMOUS"),
    "enable_app": ("apps/{clientId}/enable", ["POST"], "ANONYMOUS"),
    "disable_app": ("apps/{clientId}/disable", ["POST"], "ANONYMOUS"),
    "partner_token": ("oauth2/token", ["POST"], "ANONYMOUS"),
    "partner_revoke": ("oauth2/revoke", ["POST"], "ANONYMOUS"),
    "partner_authorize": ("oauth2/authorize", ["GET", "POST"], "ANONYMOUS"),
    "partner_device": ("oauth2/device", ["GET", "POST"], "ANONYMOUS"),
    "partner_userinfo": ("oauth2/userinfo", ["GET"], "ANONYMOUS"),
    "partner_device_authorization": ("oauth2/device_authorization", ["POST"], "ANONYMOUS"),
    "partner_readings": ("partner/v1/readings", ["POST"], "ANONYMOUS"),
    "partner_receipt": ("partner/v1/receipts/{id}", ["GET"], "ANONYMOUS"),
}
TENANT_SCOPED = (
    "register_device", "list_devices", "get_device", "assign_device", "unassign_device", "correct_attribution",
    "grant_consent", "list_consents", "get_consent", "revoke_consent",
    "withings_connect", "withings_disconnect", "withings_notify", "healthkit_ingest",
    "list_tenant_apps", "enable_app", "disable_app",
)  # fmt: skip
EXPECTED_HTTP |= {  # the same admin operations in the tenant the path names
    f"tenant_{name}": (f"tenants/{{tenantId}}/{EXPECTED_HTTP[name][0]}", *EXPECTED_HTTP[name][1:])
    for name in TENANT_SCOPED
}
# host.json's routePrefix is empty (the metadata is at /.well-known/...): every other route is api/...
EXPECTED_HTTP = {name: (f"api/{route}", methods, level) for name, (route, methods, level) in EXPECTED_HTTP.items()}
EXPECTED_HTTP["partner_metadata"] = (".well-known/oauth-authorization-server", ["GET"], "ANONYMOUS")
EXPECTED_QUEUE = {"process_raw_record": RAW_QUEUE, "withings_sync": WITHINGS_SYNC_QUEUE}
EXPECTED_TIMER = {"withings_poller": "0 */5 * * * *"}


def test_http_functions_have_expected_routes_methods_and_auth():
    functions = registered_functions()
    for name, (route, methods, auth) in EXPECTED_HTTP.items():
        trigger = functions[name].get_trigger()
        assert trigger.type == "httpTrigger"
        assert trigger.route == route
        assert [str(m.value if hasattr(m, "value") else m) for m in trigger.methods] == methods
        assert trigger.auth_level.name == auth


def test_queue_functions_listen_on_the_expected_queues():
    functions = registered_functions()
    for name, queue in EXPECTED_QUEUE.items():
        trigger = functions[name].get_trigger()
        assert trigger.type == "queueTrigger"
        assert trigger.queue_name == queue
        assert trigger.connection == "AzureWebJobsStorage"


def test_timer_functions_have_expected_schedules():
    functions = registered_functions()
    for name, schedule in EXPECTED_TIMER.items():
        trigger = functions[name].get_trigger()
        assert trigger.type == "timerTrigger"
        assert trigger.schedule == schedule


def test_every_function_is_expected_and_parameters_match_binding_names():
    functions = registered_functions()
    assert set(functions) == set(EXPECTED_HTTP) | set(EXPECTED_QUEUE) | set(EXPECTED_TIMER)
    for function in functions.values():
        handler = function.get_user_function()
        parameters = set(inspect.signature(handler).parameters)
        bound = {b.name for b in function.get_bindings() if b.name != "$return"}
        assert parameters == bound, function.get_function_name()


def test_host_retries_as_often_as_the_worker_expects():
    host = json.loads((REPO / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == Settings.model_fields["max_dequeue_count"].default


def test_indexing_needs_no_settings_at_all():
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    script = "import function_app; print(len(function_app.app.get_functions()))"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(EXPECTED_HTTP) + len(EXPECTED_QUEUE) + len(EXPECTED_TIMER)
