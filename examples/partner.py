"""An example partner of the hub: an app that gets a patient's consent through the hub's OAuth 2.0
authorization server, with Authlib's OAuth client, sends readings to the partner metrics API and
reads back what became of each one.

    # a native app: the patient signs in in their browser, the app catches the redirect on loopback
    python examples/partner.py --hub http://127.0.0.1:7071 code --client-id app-... [--client-secret ...]
    # a gateway without a browser: it shows a code, the patient types it on the hub's page
    python examples/partner.py --hub http://127.0.0.1:7071 device --client-id app-...

The app must be registered (POST /api/partner/apps), approved by a platform operator and enabled
by the patient's medical centre; the README's "Partner apps" section says how."""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPES = "metrics.blood-pressure.write metrics.body-weight.write metrics.steps.write offline_access profile"


def metadata(hub: str) -> dict[str, Any]:
    import requests

    answer = requests.get(f"{hub}/.well-known/oauth-authorization-server", timeout=10)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def code_flow(
    hub: str, client_id: str, client_secret: str | None, redirect_uri: str, user_agent: Callable[[str], str]
) -> dict[str, Any]:
    """The authorization code grant with PKCE (S256). ``user_agent`` takes the authorization URL
    to the user and returns the URL the hub redirected back to."""
    endpoints = metadata(hub)
    session = OAuth2Session(
        client_id, client_secret, scope=SCOPES, redirect_uri=redirect_uri, code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
    )  # fmt: skip
    verifier = generate_token(48)
    url, state = session.create_authorization_url(endpoints["authorization_endpoint"], code_verifier=verifier)
    back = user_agent(url)
    token: dict[str, Any] = session.fetch_token(
        endpoints["token_endpoint"], authorization_response=back, state=state, code_verifier=verifier
    )
    return token


def device_flow(
    hub: str, client_id: str, show: Callable[[dict[str, Any]], None], sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """The device authorization grant: the code shown to the user, then polling at the interval."""
    import requests

    endpoints = metadata(hub)
    started = requests.post(
        endpoints["device_authorization_endpoint"], data={"client_id": client_id, "scope": SCOPES}, timeout=10
    ).json()
    show(started)
    session = OAuth2Session(client_id, token_endpoint_auth_method="none")  # noqa: S106 - a method's name
    interval = int(started["interval"])
    deadline = time.monotonic() + int(started["expires_in"])
    while time.monotonic() < deadline:
        sleep(interval)  # the interval is the device's to keep (RFC 8628 3.5)
        try:
            token: dict[str, Any] = session.fetch_token(
                endpoints["token_endpoint"], grant_type=DEVICE_GRANT, device_code=started["device_code"]
            )
            return token
        except OAuthError as exc:
            if exc.error == "slow_down":
                interval += 5
            elif exc.error != "authorization_pending":
                raise
    raise TimeoutError("the user did not answer in time")


def sample_readings(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.timezone(dt.timedelta(hours=1))).replace(microsecond=0)
    stamp = moment.isoformat()
    day = moment.replace(hour=0, minute=0, second=0)
    return [
        {"id": f"bp-{stamp}", "kind": "blood-pressure", "unit": "mm[Hg]", "effectiveDateTime": stamp,
         "components": {"systolic": 127, "diastolic": 81}, "device": {"id": "cuff-0042", "model": "BP One"}},
        {"id": f"w-{stamp}", "kind": "body-weight", "value": 154.3, "unit": "[lb_av]", "effectiveDateTime": stamp},
        {"id": f"st-{day.date()}", "kind": "steps", "value": 8412, "unit": "{steps}",
         "effectivePeriod": {"start": day.isoformat(), "end": (day + dt.timedelta(days=1)).isoformat()}},
    ]  # fmt: skip


def granted_only(readings: list[dict[str, Any]], scope: str) -> list[dict[str, Any]]:
    """A good partner sends only the kinds the patient allowed (others would make the call 403)."""
    granted = set(scope.split())
    return [reading for reading in readings if f"metrics.{reading['kind']}.write" in granted]


def send(hub: str, access_token: str, readings: list[dict[str, Any]]) -> str:
    """Sends a batch; its receipt id."""
    import requests

    headers = {"authorization": f"Bearer {access_token}"}
    sent = requests.post(f"{hub}/api/partner/v1/readings", json={"readings": readings}, headers=headers, timeout=30)
    sent.raise_for_status()
    return str(sent.json()["receiptId"])


def follow(hub: str, access_token: str, receipt_id: str, wait_s: float = 60) -> dict[str, Any]:
    """Reads the receipt until no reading is queued any more (or ``wait_s`` has passed)."""
    import requests

    headers = {"authorization": f"Bearer {access_token}"}
    deadline = time.monotonic() + wait_s
    while True:
        answer = requests.get(f"{hub}/api/partner/v1/receipts/{receipt_id}", headers=headers, timeout=10)
        answer.raise_for_status()
        receipt: dict[str, Any] = answer.json()
        if all(r["status"] != "queued" for r in receipt["readings"]) or time.monotonic() > deadline:
            return receipt
        time.sleep(1)


def _loopback_user_agent(port: int) -> Callable[[str], str]:
    """The user's own browser; the redirect is caught on the loopback interface (RFC 8252)."""

    def run(url: str) -> str:
        caught: list[str] = []

        class Catch(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                caught.append(f"http://127.0.0.1:{port}{self.path}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"You can close this window and go back to the app.")

            def log_message(self, *_: Any) -> None:
                return

        server = http.server.HTTPServer(("127.0.0.1", port), Catch)
        threading.Thread(target=server.handle_request, daemon=True).start()
        print(f"Open this page to allow the app (opening your browser):\n  {url}")
        webbrowser.open(url)
        while not caught:
            time.sleep(0.2)
        server.server_close()
        return caught[0]

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", default="http://127.0.0.1:7071")
    flows = parser.add_subparsers(dest="flow", required=True)
    code = flows.add_parser("code", help="authorization code with PKCE (the patient's browser)")
    code.add_argument("--client-id", required=True)
    code.add_argument("--client-secret")
    code.add_argument("--redirect-port", type=int, default=8765)
    device = flows.add_parser("device", help="device authorization (a gateway without a browser)")
    device.add_argument("--client-id", required=True)
    args = parser.parse_args(argv)
    if args.flow == "code":
        redirect = f"http://127.0.0.1:{args.redirect_port}/callback"
        user_agent = _loopback_user_agent(args.redirect_port)
        token = code_flow(args.hub, args.client_id, args.client_secret, redirect, user_agent)
    else:
        token = device_flow(args.hub, args.client_id, lambda started: print(
            f"On your phone or computer, open {started['verification_uri']} and type {started['user_code']}"
        ))  # fmt: skip
    print(f"granted: {token['scope']}")
    readings = granted_only(sample_readings(), token["scope"])
    receipt = follow(args.hub, token["access_token"], send(args.hub, token["access_token"], readings))
    for reading in receipt["readings"]:
        print(f"  {reading['id']}: {reading['status']} {reading.get('fhirId') or reading.get('reason') or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
