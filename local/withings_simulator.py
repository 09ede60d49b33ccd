"""A local simulator of the Withings public API, following its documentation: HTTP 200 answers
with a ``status`` in the body (0 OK, 401 auth, 293 bad parameters / callback probe failed, 601
too many requests, 503 invalid token), OAuth 2.0 authorize + ``requesttoken`` (codes valid
30 s, single use; refresh tokens rotate on every refresh and the old one dies once the new
access token is used), Notify (subscribe sends a HEAD probe to the callback URL; list; revoke),
Measure ``getmeas`` with ``lastupdate``/``offset``/``more``, Measure v2 ``getactivity`` and
Heart v2 ``list``/``get``.

Groups deleted since ``lastupdate`` come back with an empty ``measures`` array (the hub's
documented reading of "changed or deleted since"). Test control lives under ``/_sim/`` (set a
user's data, edit or delete a group, inject statuses, read call counts): never part of the
real API.

Usage: python withings_simulator.py --port 8096
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "local-withings-client"
CLIENT_SECRET = "local-withings-secret"
CODE_LIFETIME_S = 30
ACCESS_LIFETIME_S = 10800
PAGE_SIZE = 2  # small, so that paging (more/offset) is exercised


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}
        self.faults: list[dict[str, Any]] = []
        self.stats: dict[str, int] = {}
        self.deny_next_consent = False
        self.consenting_user = "12345"

    def user(self, userid: str) -> dict[str, Any]:
        return self.users.setdefault(
            userid, {"measuregrps": [], "series": [], "activities": [], "timezone": "Europe/Paris"}
        )

    def count(self, name: str) -> None:
        self.stats[name] = self.stats.get(name, 0) + 1

    def fault_for(self, path: str) -> int | None:
        for fault in self.faults:
            if fault["count"] > 0 and (not fault.get("paths") or path in fault["paths"]):
                fault["count"] -= 1
                return int(fault["status"])
        return None

    def issue_tokens(self, userid: str, scope: str) -> dict[str, Any]:
        access, refresh = secrets.token_hex(20), secrets.token_hex(20)
        self.access[access] = {"userid": userid, "expires": time.time() + ACCESS_LIFETIME_S, "refresh": refresh}
        self.refresh[refresh] = {"userid": userid, "valid": True, "scope": scope, "predecessor": None}
        return {
            "userid": int(userid),
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ACCESS_LIFETIME_S,
            "scope": scope,
            "token_type": "Bearer",
        }


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    # -- plumbing -------------------------------------------------------------------------------
    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, status: int, error: str = "") -> None:
        self._json({"status": status, "error": error})

    def _ok(self, body: dict[str, Any]) -> None:
        self._json({"status": 0, "body": body})

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

    def _authorized(self) -> str | None:
        """The token's user, or None after answering status 401."""
        userid = self._bearer_user()
        if userid is None:
            self._status(401, "invalid token")
        return userid

    def _bearer_user(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with STATE.lock:
            entry = STATE.access.get(token)
            if entry is None or entry["expires"] < time.time():
                return None
            refresh = STATE.refresh.get(entry["refresh"])
            if refresh and refresh.get("predecessor"):  # first use of a new token kills the old refresh
                old = STATE.refresh.get(refresh["predecessor"])
                if old:
                    old["valid"] = False
            return str(entry["userid"])

    # -- routes -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._json({"ok": True})
        elif url.path == "/oauth2_user/authorize2":
            self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
        elif url.path == "/_sim/stats":
            with STATE.lock:
                self._json({"stats": STATE.stats, "subscriptions": STATE.subscriptions})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/_sim/"):
            self._control(path, json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}"))
            return
        form = self._form()
        with STATE.lock:
            STATE.count(f"{path}:{form.get('action', '')}")
            fault = STATE.fault_for(path)
        if fault is not None:
            self._status(fault, "simulated")
            return
        if path == "/v2/oauth2":
            self._token(form)
        elif path == "/notify":
            self._notify(form)
        elif path == "/measure" and form.get("action") == "getmeas":
            self._getmeas(form)
        elif path == "/v2/measure" and form.get("action") == "getactivity":
            self._getactivity(form)
        elif path == "/v2/heart":
            self._heart(form)
        else:
            self._status(2555, "unknown action")

    def _authorize(self, query: dict[str, str]) -> None:
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code" or not redirect:
            self._json({"error": "invalid_request"}, 400)
            return
        with STATE.lock:
            if STATE.deny_next_consent:
                STATE.deny_next_consent = False
                params = {"error": "access_denied", "state": query.get("state", "")}
            else:
                code = secrets.token_hex(16)
                STATE.codes[code] = {
                    "userid": STATE.consenting_user,
                    "redirect_uri": redirect,
                    "expires": time.time() + CODE_LIFETIME_S,
                    "scope": query.get("scope", ""),
                }
                params = {"code": code, "state": query.get("state", "")}
        self.send_response(302)
        self.send_header("Location", f"{redirect}?{urlencode(params)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self, form: dict[str, str]) -> None:
        if form.get("action") != "requesttoken":
            self._status(293, "action must be requesttoken")
            return
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            self._status(401, "invalid client")
            return
        with STATE.lock:
            if form.get("grant_type") == "authorization_code":
                STATE.count("token:authorization_code")
                entry = STATE.codes.pop(form.get("code", ""), None)
                if entry is None or entry["expires"] < time.time():
                    self._status(503, "invalid code")
                    return
                if entry["redirect_uri"] != form.get("redirect_uri"):
                    self._status(293, "redirect_uri mismatch")
                    return
                self._ok(STATE.issue_tokens(entry["userid"], entry["scope"]))
            elif form.get("grant_type") == "refresh_token":
                STATE.count("token:refresh_token")
                old = STATE.refresh.get(form.get("refresh_token", ""))
                if old is None or not old["valid"]:
                    self._status(503, "invalid refresh_token")
                    return
                answer = STATE.issue_tokens(old["userid"], old["scope"])
                STATE.refresh[answer["refresh_token"]]["predecessor"] = form.get("refresh_token")
                self._ok(answer)
            else:
                self._status(293, "unsupported grant_type")

    def _notify(self, form: dict[str, str]) -> None:
        userid = self._authorized()
        if userid is None:
            return
        action = form.get("action")
        if action == "subscribe":
            url, appli = form.get("callbackurl", ""), int(form.get("appli", "0"))
            try:  # the documented probe: a HEAD request that must answer 2xx
                request = urllib.request.Request(url, method="HEAD")
                with urllib.request.urlopen(request, timeout=2) as probe:
                    ok = 200 <= probe.status < 300
            except (urllib.error.URLError, ValueError, OSError):
                ok = False
            if not ok:
                self._status(293, "callback url probe failed")
                return
            with STATE.lock:
                subscriptions = STATE.subscriptions.setdefault(userid, [])
                if not any(s["callbackurl"] == url and s["appli"] == appli for s in subscriptions):
                    subscriptions.append({"callbackurl": url, "appli": appli, "comment": form.get("comment", "")})
            self._ok({})
        elif action == "list":
            with STATE.lock:
                self._ok({"profiles": list(STATE.subscriptions.get(userid, []))})
        elif action == "revoke":
            url, appli = form.get("callbackurl", ""), int(form.get("appli", "0"))
            with STATE.lock:
                before = STATE.subscriptions.get(userid, [])
                after = [s for s in before if not (s["callbackurl"] == url and s["appli"] == appli)]
                STATE.subscriptions[userid] = after
            if len(after) == len(before):
                self._status(294, "no such subscription")
            else:
                self._ok({})
        else:
            self._status(2555, "unknown notify action")

    def _page(self, items: list[dict[str, Any]], form: dict[str, str]) -> tuple[list[dict[str, Any]], int, int]:
        offset = int(form.get("offset") or 0)
        page = items[offset : offset + PAGE_SIZE]
        more = int(offset + PAGE_SIZE < len(items))
        return page, more, offset + len(page)

    def _getmeas(self, form: dict[str, str]) -> None:
        userid = self._authorized()
        if userid is None:
            return
        with STATE.lock:
            user = STATE.user(userid)
            since = int(form.get("lastupdate") or 0)
            groups = [g for g in user["measuregrps"] if g["modified"] > since]
            groups.sort(key=lambda g: g["grpid"])
            page, more, offset = self._page(groups, form)
            shown = [
                {k: v for k, v in g.items() if k != "deleted"} | ({"measures": []} if g.get("deleted") else {})
                for g in page
            ]
            self._ok(
                {
                    "updatetime": int(time.time()),
                    "timezone": user["timezone"],
                    "measuregrps": shown,
                    "more": more,
                    "offset": offset,
                }
            )

    def _getactivity(self, form: dict[str, str]) -> None:
        userid = self._authorized()
        if userid is None:
            return
        with STATE.lock:
            user = STATE.user(userid)
            since = int(form.get("lastupdate") or 0)
            items = [a for a in user["activities"] if a.get("modified", 0) > since]
            page, more, offset = self._page(items, form)
            shown = [{k: v for k, v in a.items() if k != "modified"} for a in page]
            self._ok({"activities": shown, "more": bool(more), "offset": offset})

    def _heart(self, form: dict[str, str]) -> None:
        userid = self._authorized()
        if userid is None:
            return
        with STATE.lock:
            user = STATE.user(userid)
            if form.get("action") == "list":
                since = int(form.get("lastupdate") or form.get("startdate") or 0)
                items = [s for s in user["series"] if s["modified"] > since]
                page, more, offset = self._page(items, form)
                shown = [{k: v for k, v in s.items() if k not in ("signal", "modified")} for s in page]
                self._ok({"series": shown, "more": bool(more), "offset": offset})
            elif form.get("action") == "get":
                signalid = int(form.get("signalid") or 0)
                match = next((s for s in user["series"] if s["ecg"]["signalid"] == signalid), None)
                if match is None:
                    self._status(293, "unknown signalid")
                    return
                self._ok(
                    {"signal": match["signal"], "sampling_frequency": match["sampling_frequency"], "wearposition": 0}
                )
            else:
                self._status(2555, "unknown heart action")

    def _control(self, path: str, body: dict[str, Any]) -> None:
        with STATE.lock:
            if path == "/_sim/reset":
                STATE.reset()
            elif path == "/_sim/user":
                user = STATE.user(str(body["userid"]))
                user.update({k: v for k, v in body.items() if k != "userid"})
                STATE.consenting_user = str(body["userid"])
            elif path == "/_sim/edit-group":
                user = STATE.user(str(body["userid"]))
                for group in user["measuregrps"]:
                    if group["grpid"] == body["grpid"]:
                        group.update(body["changes"])
                        group["modified"] = int(time.time())
            elif path == "/_sim/delete-group":
                user = STATE.user(str(body["userid"]))
                for group in user["measuregrps"]:
                    if group["grpid"] == body["grpid"]:
                        group["deleted"] = True
                        group["modified"] = int(time.time())
            elif path == "/_sim/faults":
                STATE.faults.append(
                    {"status": body["status"], "count": body.get("count", 1), "paths": body.get("paths")}
                )
            elif path == "/_sim/subscribe":  # a subscription made earlier (no probe now)
                entry = {"callbackurl": body["callbackurl"], "appli": body["appli"], "comment": ""}
                STATE.subscriptions.setdefault(str(body["userid"]), []).append(entry)
            elif path == "/_sim/notify":  # what Withings does after a change: POST to every subscribed URL
                userid, appli = str(body["userid"]), int(body["appli"])
                now = int(time.time())
                form = urlencode({"userid": userid, "appli": appli, "startdate": now - 86400, "enddate": now}).encode()
                targets = [s["callbackurl"] for s in STATE.subscriptions.get(userid, []) if s["appli"] == appli]
                delivered = []
                for url in targets:
                    request = urllib.request.Request(
                        url, data=form, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
                    )
                    try:
                        with urllib.request.urlopen(request, timeout=2) as answer:  # Withings waits 2 s
                            delivered.append(answer.status)
                    except (urllib.error.URLError, OSError):
                        delivered.append(0)
                self._json({"ok": True, "delivered": delivered})
                return
            elif path == "/_sim/deny-next-consent":
                STATE.deny_next_consent = True
            elif path == "/_sim/invalidate-refresh":
                for entry in STATE.refresh.values():
                    if entry["userid"] == str(body["userid"]):
                        entry["valid"] = False
            elif path == "/_sim/expire-access":
                for entry in STATE.access.values():
                    if entry["userid"] == str(body["userid"]):
                        entry["expires"] = 0
            else:
                self._json({"error": "unknown control"}, 404)
                return
        self._json({"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8096)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
