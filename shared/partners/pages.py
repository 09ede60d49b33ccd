"""The authorization server's web pages, rendered on the server: no script, no third-party asset,
one small stylesheet allowed by its hash in a strict Content-Security-Policy, every control
labelled and reachable with the keyboard. Every value shown is escaped."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from shared.partners.scopes import SCOPE_TEXTS

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.4rem}label{display:block;margin:.6rem 0 .2rem}"
    "input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    "fieldset{border:1px solid #999;padding:.5rem 1rem}.scope label{display:inline;margin-left:.4rem}"
    "button{font-size:1rem;padding:.5rem 1.2rem;margin:1rem .5rem 0 0}"
    ".error{color:#a00000;font-weight:600}:focus{outline:3px solid #1a5fb4;outline-offset:2px}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


@dataclass(frozen=True)
class Page:
    status: int
    html: str
    form_targets: tuple[str, ...] = ()  # where a form of the page may end up (after a redirect)

    @property
    def content_security_policy(self) -> str:
        targets = " ".join(("'self'", *self.form_targets))
        return (
            f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; form-action {targets}; "
            "frame-ancestors 'none'; base-uri 'none'"
        )


def redirect_origin(uri: str) -> str:
    """What a CSP form-action must allow for the app's redirect URI."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def _hidden(fields: dict[str, str]) -> str:
    return "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in fields.items())


def _error(message: str | None) -> str:
    return f"<p class='error' role='alert'>{escape(message)}</p>" if message else ""


def login_page(app_name: str, hidden: dict[str, str], *, error: str | None = None, status: int = 200) -> Page:
    body = (
        f"<p><strong>{escape(app_name)}</strong> asks to send readings to your medical centre. "
        "Sign in to choose what it may send.</p>"
        f"{_error(error)}"
        "<form method='post' action='authorize'>"
        f"{_hidden({**hidden, 'step': 'login'})}"
        "<label for='username'>User name</label>"
        "<input type='text' id='username' name='username' autocomplete='username' required autofocus>"
        "<label for='password'>Password</label>"
        "<input type='password' id='password' name='password' autocomplete='current-password' required>"
        "<button type='submit'>Sign in</button></form>"
    )
    return Page(status, _page("Sign in", body))


def consent_page(app_name: str, owner: str, scopes: list[str], hidden: dict[str, str], redirect_uri: str) -> Page:
    items = "".join(
        f"<div class='scope'><input type='checkbox' id='scope-{n}' name='scope' value='{escape(scope)}' checked>"
        f"<label for='scope-{n}'>{escape(SCOPE_TEXTS.get(scope, scope))}</label></div>"
        for n, scope in enumerate(scopes)
    )
    body = (
        f"<p><strong>{escape(app_name)}</strong> ({escape(owner)}) asks to:</p>"
        "<form method='post' action='authorize'>"
        f"{_hidden({**hidden, 'step': 'consent'})}"
        f"<fieldset><legend>Untick what you do not allow</legend>{items}</fieldset>"
        "<button type='submit' name='decision' value='allow'>Allow</button>"
        "<button type='submit' name='decision' value='deny'>Deny</button></form>"
        "<p>You can withdraw this consent at any time; the app then stops at once.</p>"
    )
    return Page(200, _page("Allow this app?", body), (redirect_origin(redirect_uri),))


def error_page(status: int, title: str, message: str) -> Page:
    return Page(status, _page(title, f"<p>{escape(message)}</p><p>You can close this page.</p>"))


def device_login_page(user_code: str, hidden: dict[str, str], *, error: str | None = None, status: int = 200) -> Page:
    """The verification page of a device without a browser: the code it shows, and sign-in."""
    body = (
        "<p>Type the code your device shows, then sign in to choose what it may send.</p>"
        f"{_error(error)}"
        "<form method='post' action='device'>"
        f"{_hidden({**hidden, 'step': 'login'})}"
        "<label for='user_code'>Code shown on the device</label>"
        f"<input type='text' id='user_code' name='user_code' value='{escape(user_code)}' autocomplete='off' "
        "autocapitalize='characters' required autofocus>"
        "<label for='username'>User name</label>"
        "<input type='text' id='username' name='username' autocomplete='username' required>"
        "<label for='password'>Password</label>"
        "<input type='password' id='password' name='password' autocomplete='current-password' required>"
        "<button type='submit'>Continue</button></form>"
    )
    return Page(status, _page("Connect a device", body))


def device_consent_page(app_name: str, owner: str, scopes: list[str], hidden: dict[str, str]) -> Page:
    page = consent_page(app_name, owner, scopes, hidden, "")
    html = page.html.replace("action='authorize'", "action='device'")
    return Page(200, html)


def done_page(title: str, message: str) -> Page:
    return Page(200, _page(title, f"<p>{escape(message)}</p><p>You can close this page.</p>"))
