"""A patient going through the hub's partner authorization pages without a browser, for the demo
and the example partner's test: it reads each page's form (its hidden fields), signs in, leaves
ticked what it allows and answers Allow. The pages themselves are tested in a real browser."""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.scopes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "input" and values.get("type") == "checkbox" and values.get("name") == "scope":
            self.scopes.append(values.get("value", ""))


def _form(page: requests.Response) -> _Form:
    form = _Form()
    form.feed(page.text)
    if not form.action:
        raise RuntimeError(f"no form on the page ({page.status_code}): {page.text[:200]}")
    return form


class ScriptedUser:
    def __init__(self, username: str, password: str, untick: Iterable[str] = ()) -> None:
        self.username = username
        self.password = password
        self.untick = set(untick)
        self.http = requests.Session()

    def _post(self, page_url: str, form: _Form, cookie: str, **fields: str | list[str]) -> requests.Response:
        data: dict[str, str | list[str]] = {**form.fields, **fields}
        # The CSRF cookie is Secure: a browser sends it to a loopback address, requests does not.
        return self.http.post(urljoin(page_url, form.action), data=data, headers={"cookie": cookie},
                              allow_redirects=False, timeout=30)  # fmt: skip

    def _sign_in_and_allow(self, page: requests.Response, url: str, **first: str) -> requests.Response:
        cookie = page.headers["Set-Cookie"].split(";", 1)[0]
        signed_in = self._post(url, _form(page), cookie, username=self.username, password=self.password, **first)
        consent = _form(signed_in)
        allowed = [scope for scope in consent.scopes if scope not in self.untick]
        return self._post(url, consent, cookie, scope=allowed, decision="allow")

    def authorize(self, url: str) -> str:
        """Allows the app on the authorization page; the URL the hub sends the browser back to."""
        answer = self._sign_in_and_allow(self.http.get(url, timeout=30), url)
        if answer.status_code != 302:
            raise RuntimeError(f"the authorization was not given: {answer.status_code} {answer.text[:200]}")
        return answer.headers["Location"]

    def connect_device(self, verification_uri: str, user_code: str) -> None:
        """Types the device's code on the verification page, signs in and allows."""
        answer = self._sign_in_and_allow(self.http.get(verification_uri, timeout=30), verification_uri,
                                         user_code=user_code)  # fmt: skip
        if "The device is connected" not in answer.text:
            raise RuntimeError(f"the device was not connected: {answer.status_code} {answer.text[:200]}")
