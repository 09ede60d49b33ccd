"""Withings connector functions: connect and callback (OAuth consent), disconnect, the
notification endpoint, the sync queue worker and the timer poller."""

from __future__ import annotations

import hmac
import html
import ipaddress
import logging
import time
from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.callers import ANONYMOUS, client_address, patient_of_caller, tenant_routes
from shared.api.context import get_context
from shared.api.http import endpoint, json_response, observed, read_body
from shared.diagnostics import where
from shared.errors import BadRequest, DependencyError, Forbidden, HubError, NotFound
from shared.names import WITHINGS_SYNC_QUEUE
from shared.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from shared.composition import AppContext

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

NOTIFY_MAX_BYTES = 4096


@tenant_routes(bp, "withings/connect", ["GET"])
@endpoint
def withings_connect(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    patient_id, tenant = patient_of_caller(context, req)
    url = context.withings_connector.authorize_url(patient_id, tenant)
    from shared.api.answers import WithingsConnect

    headers = {"Location": url, "Cache-Control": "no-store"}
    return json_response(WithingsConnect(authorize_url=url), status=302, headers=headers)


def _page(status: int, title: str, text: str) -> func.HttpResponse:
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8")


@bp.route(route="api/withings/callback", methods=["GET"], auth_level=ANONYMOUS)
@observed
def withings_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Where Withings sends the user back. Always a page, never a stack trace."""
    if req.params.get("error"):
        return _page(400, "Withings was not connected", "The access was not granted. You can close this page.")
    code, state = req.params.get("code"), req.params.get("state")
    if not code or not state:
        return _page(400, "Withings was not connected", "The link is incomplete: start again from the app.")
    try:
        context = get_context()
        context.withings_connector.complete(code, state)
    except BadRequest as exc:
        return _page(400, "Withings was not connected", f"{exc.message}. Start again from the app.")
    except HubError as exc:
        log.warning("Withings callback failed: %s", exc.code)
        return _page(502, "Withings was not connected", "Withings could not be reached or refused. Try again later.")
    except Exception as exc:  # noqa: BLE001 - the user sees a page, never a trace
        log.error("Withings callback failed unexpectedly: %s", where(exc))
        return _page(500, "Withings was not connected", "Something went wrong on our side. Try again later.")
    return _page(200, "Withings is connected", "Your measurements will arrive shortly. You can close this page.")


@tenant_routes(bp, "withings/disconnect", ["POST"])
@endpoint
def withings_disconnect(req: func.HttpRequest) -> func.HttpResponse:
    context = get_context()
    patient_id, tenant = patient_of_caller(context, req)
    record = context.consents.for_tenant(tenant).find(patient_id, "withings")
    if record is None or not record.account_id:
        raise NotFound("this patient has no Withings account linked")
    context.withings_connector.unlink(record.account_id, by="disconnect", tenant=tenant)
    return func.HttpResponse(status_code=204)


def _allowed(context: AppContext, req: func.HttpRequest) -> bool:
    networks = context.settings.withings_notify_allowed_networks
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(client_address(req, context.settings.client_address_trusted_hops))
    except ValueError:
        return False
    return any(address in network for network in networks)


@tenant_routes(bp, "withings/notify/{secret}", ["HEAD", "POST"])
@endpoint
def withings_notify(req: func.HttpRequest) -> func.HttpResponse:
    """Withings' callback: HEAD probe at subscription, form POST per change. The answer must
    come within 2 s: the only I/O is one queue message. Each tenant's links subscribe with the
    tenant's own URL and path secret: the URL is the credential, and names the link's tenant."""
    from shared.tenants.records import TENANT_ID

    context = get_context()
    tenant = req.route_params.get("tenantId") or DEFAULT_TENANT
    presented = req.route_params.get("secret", "")
    expected = context.withings_notify_secret_of(tenant) if TENANT_ID.fullmatch(tenant) else ""
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise NotFound("not found")
    if not _allowed(context, req):
        raise Forbidden("the sender is not in the allowed networks")
    if req.method == "HEAD":
        return func.HttpResponse(status_code=200)
    from shared.sources.withings.jobs import enqueue_job
    from shared.sources.withings.notifications import parse_notification

    job = parse_notification(read_body(req, NOTIFY_MAX_BYTES)).model_copy(update={"tenant": tenant})
    try:
        enqueue_job(context.withings_notify_queue, job)  # not withings_jobs: no sync machinery here
    except Exception as exc:
        raise DependencyError("the sync queue is unavailable; retry") from exc
    return func.HttpResponse(status_code=200)


@bp.queue_trigger(arg_name="msg", queue_name=WITHINGS_SYNC_QUEUE, connection="AzureWebJobsStorage")
def withings_sync(msg: func.QueueMessage) -> None:
    outcome = get_context().withings_jobs.handle(msg.get_body().decode("utf-8"))
    log.info("Withings sync job %s: %s", msg.id, outcome.get("outcome"))


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def withings_poller(timer: func.TimerRequest) -> None:
    """Safety net for missed notifications: queues jobs for users not synced for a while,
    spread over the next five minutes and sized to the call budget."""
    context = get_context()
    if not context.settings.withings_configured:
        return
    queued = context.withings_poller.run(time.time())
    log.info("Withings poller: %d users queued", queued)
