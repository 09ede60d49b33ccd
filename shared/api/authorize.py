"""The authorization endpoint's pages (``/api/oauth2/authorize``): sign in through the hub's
identity adapter, then a consent page listing each metric scope the app asks for, each one
untickable, and Allow or Deny. Answers are HTML pages (never a stack trace) or the redirect back
to the app. A form is only accepted with the CSRF token of the cookie this page set."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from shared.api.callers import ANONYMOUS, client_address
from shared.api.context import get_context
from shared.api.http import observed
from shared.diagnostics import where
from shared.errors import HubError, TooManyRequests, Unauthorized

if TYPE_CHECKING:
    from shared.composition import AppContext
    from shared.partners.authorization import OAuthCall
    from shared.partners.pages import Page

bp = func.Blueprint()  # type: ignore[no-untyped-call]

CSRF_COOKIE = "oauth_csrf"
TICKET_LIFETIME_S = 600
FORM_MAX_BYTES = 16384


def _html(page: Page, cookie: str | None = None) -> func.HttpResponse:
    headers = {
        "Content-Security-Policy": page.content_security_policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    if cookie is not None:
        headers["Set-Cookie"] = f"{CSRF_COOKIE}={cookie}; HttpOnly; Secure; SameSite=Strict; Path=/api/oauth2"
    return func.HttpResponse(page.html, status_code=page.status, headers=headers, mimetype="text/html", charset="utf-8")


def _cookie(req: func.HttpRequest) -> str:
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(req.headers.get("cookie") or "")
    except CookieError:
        return ""
    morsel = jar.get(CSRF_COOKIE)
    return morsel.value if morsel is not None else ""


def _invalid_request(message: str) -> Page:
    from shared.partners.pages import error_page

    return error_page(400, "This app's request is not valid", message)


def _oauth_call(req: func.HttpRequest, query: str) -> OAuthCall:
    from shared.partners.authorization import OAuthCall

    base = req.url.split("?", 1)[0]
    return OAuthCall("GET", f"{base}?{query}")


PageHandler = Callable[["AppContext", func.HttpRequest], func.HttpResponse]


def _as_page(handle: PageHandler, req: func.HttpRequest) -> func.HttpResponse:
    """A page whatever happens: a dependency down is a page, and so is our own failure."""
    from shared.partners.pages import error_page

    try:
        return handle(get_context(), req)
    except HubError as exc:
        return _html(error_page(exc.status if exc.status < 500 else 503, "Something is unavailable", exc.message))
    except Exception as exc:  # noqa: BLE001 - the user sees a page, never a trace
        logging.getLogger(__name__).error("partner page failed: %s", where(exc))
        return _html(error_page(500, "Something went wrong", "Something went wrong on our side. Try again later."))


@bp.route(route="api/oauth2/authorize", methods=["GET", "POST"], auth_level=ANONYMOUS)
@observed
def partner_authorize(req: func.HttpRequest) -> func.HttpResponse:
    return _as_page(_authorize, req)


def _authorize(context: AppContext, req: func.HttpRequest) -> func.HttpResponse:
    from authlib.oauth2 import OAuth2Error

    from shared.partners.pages import error_page, login_page

    server = context.authorization_server
    if req.method == "GET":
        query = urlsplit(req.url).query
        try:
            app, _, _ = server.describe(_oauth_call(req, query))
        except OAuth2Error as exc:
            return _html(_invalid_request(exc.description or exc.error))
        csrf = secrets.token_urlsafe(24)
        return _html(login_page(app.name, {"request": query, "csrf": csrf}), cookie=csrf)

    form, ticked, refusal = _form(req)
    if refusal is not None:
        return refusal
    cookie = form["csrf"]
    query = form.get("request", "")
    call = _oauth_call(req, query)
    try:
        app, redirect_uri, asked = server.describe(call)
    except OAuth2Error as exc:
        return _html(_invalid_request(exc.description or exc.error))
    hidden = {"request": query, "csrf": cookie}
    if form.get("step") == "login":
        address = client_address(req, context.settings.client_address_trusted_hops)
        try:
            profile = context.login.authenticate(form.get("username", ""), form.get("password", ""), address)
        except Unauthorized:
            return _html(login_page(app.name, hidden, error="The user name or password is wrong.", status=401))
        except TooManyRequests as exc:
            return _html(error_page(429, "Too many attempts", f"{exc.message}."))
        from shared.partners.authorization import PartnerUser, digest
        from shared.partners.pages import consent_page

        user = PartnerUser(profile.sub, profile.tenant, None if profile.clinician else profile.patient_id, profile.name)
        ticket = secrets.token_urlsafe(32)
        server.store.put("ticket", ticket, TICKET_LIFETIME_S, user=user.item(), request=digest(query))
        return _html(consent_page(app.name, app.owner, asked, {**hidden, "ticket": ticket}, redirect_uri))
    if form.get("step") == "consent":
        return _consent(context, call, query, form, ticked)
    return _html(error_page(400, "The form is not valid", "Start again from the app."))


def _consent(
    context: AppContext, call: OAuthCall, query: str, form: dict[str, str], ticked: list[str]
) -> func.HttpResponse:
    from authlib.oauth2 import OAuth2Error

    from shared.partners.authorization import PartnerUser, digest
    from shared.partners.pages import error_page

    server = context.authorization_server
    item = server.store.take("ticket", form.get("ticket", ""))
    if item is None or item.get("request") != digest(query):
        return _html(error_page(400, "This page has expired", "Sign in again from the app."))
    user = PartnerUser.from_item(item["user"]) if form.get("decision") == "allow" else None
    try:
        answer = server.approve(call, user, ticked)
    except OAuth2Error as exc:
        return _html(error_page(403, "The app cannot be allowed", exc.description or exc.error))
    return func.HttpResponse(status_code=answer.status, headers={**answer.headers, "Cache-Control": "no-store"})


@bp.route(route="api/oauth2/device", methods=["GET", "POST"], auth_level=ANONYMOUS)
@observed
def partner_device(req: func.HttpRequest) -> func.HttpResponse:
    """The verification page of the device authorization grant: the user types the code the
    device shows, signs in, and allows (each scope untickable) or denies."""
    return _as_page(_device, req)


def _device(context: AppContext, req: func.HttpRequest) -> func.HttpResponse:
    from shared.partners.authorization import PartnerUser, user_code_key
    from shared.partners.pages import device_consent_page, device_login_page, done_page, error_page

    server = context.authorization_server
    if req.method == "GET":
        csrf = secrets.token_urlsafe(24)
        prefill = (req.params.get("user_code") or "")[:20]
        return _html(device_login_page(prefill, {"csrf": csrf}), cookie=csrf)
    form, ticked, refusal = _form(req)
    if refusal is not None:
        return refusal
    cookie = form["csrf"]
    user_code = form.get("user_code", "")[:20]
    pending = server.pending_device(user_code) if user_code else None
    if form.get("step") == "login":
        if pending is None:
            message = "This code is not known or has expired: check your device."
            return _html(device_login_page(user_code, {"csrf": cookie}, error=message, status=400))
        app, asked = pending
        address = client_address(req, context.settings.client_address_trusted_hops)
        try:
            profile = context.login.authenticate(form.get("username", ""), form.get("password", ""), address)
        except Unauthorized:
            error = "The user name or password is wrong."
            return _html(device_login_page(user_code, {"csrf": cookie}, error=error, status=401))
        except TooManyRequests as exc:
            return _html(error_page(429, "Too many attempts", f"{exc.message}."))
        from shared.partners.authorization import digest

        user = PartnerUser(profile.sub, profile.tenant, None if profile.clinician else profile.patient_id, profile.name)
        ticket = secrets.token_urlsafe(32)
        bound_to = digest(user_code_key(user_code))
        server.store.put("ticket", ticket, TICKET_LIFETIME_S, user=user.item(), request=bound_to)
        hidden = {"csrf": cookie, "ticket": ticket, "user_code": user_code}
        return _html(device_consent_page(app.name, app.owner, asked, hidden))
    if form.get("step") == "consent":
        from shared.partners.authorization import digest

        item = server.store.take("ticket", form.get("ticket", ""))
        if item is None or item.get("request") != digest(user_code_key(user_code)):
            return _html(error_page(400, "This page has expired", "Start again with the code on your device."))
        user = PartnerUser.from_item(item["user"])
        allowed = form.get("decision") == "allow"
        if not server.decide_device(user_code, user, ticked if allowed else None):
            return _html(error_page(403, "The device cannot be connected", "The code has expired, was already "
                                    "used, or the app is not enabled for your medical centre."))  # fmt: skip
        if allowed:
            return _html(done_page("The device is connected", "It will send the readings you allowed."))
        return _html(done_page("The device was not connected", "It will not send anything."))
    return _html(error_page(400, "The form is not valid", "Start again with the code on your device."))


def _form(req: func.HttpRequest) -> tuple[dict[str, str], list[str], func.HttpResponse | None]:
    """(fields, ticked scopes, a refusal page): a form of ours, with the CSRF token of its cookie."""
    from shared.partners.pages import error_page

    body = req.get_body()
    if len(body) > FORM_MAX_BYTES:
        return {}, [], _html(error_page(413, "The form is too large", "Start again."))
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return {}, [], _html(error_page(400, "The form is not valid", "Start again."))
    form = {name: value for name, value in pairs if name != "scope"}
    ticked = [value for name, value in pairs if name == "scope"]
    cookie = _cookie(req)
    if not cookie or not hmac.compare_digest(cookie.encode(), form.get("csrf", "").encode()):
        expired = error_page(403, "This form has expired", "It was not sent from this page. Start again.")
        return form, ticked, _html(expired)
    return form, ticked, None
