"""A scripted tour of the running hub (``make demo``, with ``make run`` going in another terminal;
if nothing answers on the hub's port it starts the project's own host for the tour).

It creates a Patient, assigns the Medisanté monitors of the fixtures and posts each fixture to
the webhook, logs in through the BFF and uploads the HealthKit sample set, connects a Withings
test user through the simulator's consent step and lets the simulator send a notification,
registers a partner app (approved by the platform operator, enabled by the clinic) that gets the
patient's consent through the hub's authorization pages (the example partner, with the patient
unticking steps) and sends readings through the partner metrics API, waits for the workers,
and prints what landed in FHIR per source and kind, and what was parked, refused by consent or
rejected, with the reason. Exits 1 if anything expected did not
land. Every call goes over HTTP to the hub, as a client's would; the local stack's settings
(``local.settings.json``) say where everything is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PATIENT = "demo-anna"
USERNAME = "demo-anna@example.org"
PASSWORD = "demo password 2026"  # local demo credentials, printed by the README
WITHINGS_USER = "31415926"
DEVICE_TYPES = {"BloodPressure": "blood-pressure-monitor", "Glucose": "glucometer", "BodyWeightComposition": "scale"}
# (source, kind) → what must land for the tour to count as working.
EXPECTED = {
    ("medisante", "Blood pressure"),
    ("medisante", "Heart rate"),
    ("medisante", "Glucose"),
    ("medisante", "Body weight"),
    ("healthkit", "Heart rate"),
    ("healthkit", "Blood pressure"),
    ("withings", "Blood pressure"),
    ("withings", "Body weight"),
    ("withings", "Steps"),
}
WAIT_S = 120.0


def say(text: str) -> None:
    print(text, flush=True)


class Tour:
    def __init__(self, hub: str, settings: dict[str, str]) -> None:
        self.hub = hub.rstrip("/")
        self.settings = settings
        self.fhir = settings["FHIR_URL"].rstrip("/")
        self.withings_api = settings["WITHINGS_API_URL"].rstrip("/")
        self.http = requests.Session()
        self.receipts: list[str] = []
        self.partner_receipt: tuple[str, str] | None = None  # (access token, receipt id)
        self.refused_at_ingress: list[tuple[str, str, str]] = []  # (source, id, reason)

    def admin_token(self) -> str:
        """The clinic's back office. A platform operator's token: it works in the default tenant
        whatever tenants the local stack holds (the tests leave some)."""
        from shared.localstack import LOCAL_PLATFORM_CLIENT, local_client_token

        return local_client_token(LOCAL_PLATFORM_CLIENT)

    def patient(self) -> None:
        patient = {"resourceType": "Patient", "id": PATIENT, "name": [{"given": ["Anna"], "family": "Demo"}]}
        answer = self.http.put(
            f"{self.fhir}/Patient/{PATIENT}",
            json=patient,
            headers={"content-type": "application/fhir+json"},
            timeout=10,
        )
        answer.raise_for_status()
        say(f"1. Patient/{PATIENT} is in the FHIR server")

    def medisante(self, token: str) -> None:
        from shared.localstack import LOCAL_MEDISANTE_API_KEY

        for path in sorted((FIXTURES / "medisante").glob("*.json")):
            document = json.loads(path.read_text())
            body = {
                "deviceId": document["device"]["IMEI"],
                "deviceProvider": "medisante",
                "deviceType": DEVICE_TYPES[document["metadata"]["measurementType"]],
                "name": f"demo {path.stem} monitor",
                "assignedPatientId": PATIENT,
                "from": "2026-01-01T00:00:00Z",
            }
            assigned = self.http.post(
                f"{self.hub}/api/devices/assign", json=body, headers={"authorization": f"Bearer {token}"}, timeout=30
            )
            if assigned.status_code not in (200, 409):
                raise SystemExit(f"assigning the {path.stem} monitor failed: {assigned.status_code} {assigned.text}")
            delivered = self.http.post(
                f"{self.hub}/api/health-data/medisante/medisante-json",
                data=path.read_bytes(),
                headers={"x-api-key": LOCAL_MEDISANTE_API_KEY, "content-type": "application/json"},
                timeout=30,
            )
            if delivered.status_code != 202:
                raise SystemExit(f"the webhook refused {path.name}: {delivered.status_code} {delivered.text}")
            self.receipts.append(delivered.json()["receiptId"])
            say(f"2. Medisanté {path.stem}: monitor assigned, webhook answered 202 (receipt {self.receipts[-1]})")
        stranger = json.loads((FIXTURES / "medisante" / "glucose.json").read_text())
        stranger["device"]["IMEI"], stranger["metadata"]["correlationId"] = "990000000000999", "demo-unassigned-1"
        delivered = self.http.post(
            f"{self.hub}/api/health-data/medisante/medisante-json",
            json=stranger,
            headers={"x-api-key": LOCAL_MEDISANTE_API_KEY},
            timeout=30,
        )
        self.receipts.append(delivered.json()["receiptId"])
        say("2. Medisanté: a reading from a monitor no clinic has assigned yet (it will be parked)")

    def healthkit(self) -> None:
        from shared.composition import get_context
        from shared.errors import Conflict

        with contextlib.suppress(Conflict):  # the demo user exists after a first tour
            get_context().directory.create_user(
                USERNAME, PASSWORD, email=USERNAME, name="Anna Demo", patient_id=PATIENT
            )
        login = self.http.post(
            f"{self.hub}/api/oauth/token", json={"username": USERNAME, "password": PASSWORD}, timeout=30
        )
        if login.status_code != 200:
            raise SystemExit(f"BFF login failed: {login.status_code} {login.text}")
        sid = login.headers["Set-Cookie"].split(";", 1)[0]  # Secure cookie: sent by hand over local http
        document = json.loads((FIXTURES / "healthkit" / "upload.json").read_text())
        ungranted = {  # a type the user did not grant: refused, with the reason
            "uuid": "0D3C7F52-1B7A-4C55-9A2E-6E0B7C1D2E3F",
            "type": "HKQuantityTypeIdentifierRespiratoryRate",
            "value": 14,
            "unit": "count/min",
            "startDate": "2026-11-20T07:40:00+01:00",
            "endDate": "2026-11-20T07:40:00+01:00",
        }
        document["samples"].append(ungranted)
        upload = self.http.post(
            f"{self.hub}/api/health-data/healthkit-json",
            data=json.dumps(document),
            headers={"cookie": sid, "content-type": "application/json"},
            timeout=30,
        )
        if upload.status_code != 202:
            raise SystemExit(f"the HealthKit upload was refused: {upload.status_code} {upload.text}")
        answer = upload.json()
        self.receipts.append(answer["receiptId"])
        self.refused_at_ingress += [("healthkit", r["uuid"], r["reason"]) for r in answer["rejected"]]
        say(f"3. HealthKit: logged in as {USERNAME}, upload answered 202 ({answer['accepted']} accepted)")

    def withings(self, token: str) -> None:
        getmeas = json.loads((FIXTURES / "withings" / "getmeas.json").read_text())["body"]
        now = int(time.time())
        groups = [{**group, "modified": now - 60} for group in getmeas["measuregrps"]]
        activities = [{"date": "2026-11-20", "steps": 8412, "timezone": "Europe/Paris", "modified": now - 60}]
        user = {"userid": WITHINGS_USER, "measuregrps": groups, "activities": activities, "series": []}
        self.http.post(f"{self.withings_api}/_sim/user", json=user, timeout=10).raise_for_status()
        connect = self.http.get(
            f"{self.hub}/api/withings/connect",
            params={"patient": PATIENT},
            headers={"authorization": f"Bearer {token}"},
            allow_redirects=False,
            timeout=30,
        )
        if connect.status_code != 302:
            raise SystemExit(f"Withings connect failed: {connect.status_code} {connect.text}")
        consent = self.http.get(connect.headers["Location"], allow_redirects=False, timeout=10)  # the user accepts
        callback = self.http.get(consent.headers["Location"], allow_redirects=False, timeout=60)
        if callback.status_code != 200:
            raise SystemExit(f"the Withings callback failed: {callback.status_code} {callback.text}")
        sent = self.http.post(
            f"{self.withings_api}/_sim/notify", json={"userid": WITHINGS_USER, "appli": 4}, timeout=10
        ).json()
        say(f"4. Withings: user {WITHINGS_USER} connected, notification delivered (hub answered {sent['delivered']})")

    def partner(self, admin: str) -> None:
        from examples import partner  # the example partner: Authlib's OAuth client
        from local.scripted_user import ScriptedUser
        from shared.localstack import LOCAL_PLATFORM_CLIENT, local_client_token

        redirect = "http://127.0.0.1:8765/callback"
        registration = {"name": "Vitals Diary (demo)", "owner": "Example Health", "type": "native",
                        "grantTypes": ["authorization_code", "refresh_token"], "redirectUris": [redirect],
                        "scopes": partner.SCOPES.split()}  # fmt: skip
        registered = self.http.post(f"{self.hub}/api/partner/apps", json=registration, timeout=30)
        if registered.status_code != 201:
            raise SystemExit(f"the partner app was not registered: {registered.status_code} {registered.text}")
        client_id = registered.json()["app"]["id"]
        operator = {"authorization": f"Bearer {local_client_token(LOCAL_PLATFORM_CLIENT)}"}
        self.http.post(f"{self.hub}/api/platform/apps/{client_id}/approve", headers=operator, timeout=30)
        clinic = {"authorization": f"Bearer {admin}"}
        enabled = self.http.post(f"{self.hub}/api/apps/{client_id}/enable", headers=clinic, timeout=30)
        if enabled.status_code != 200:
            raise SystemExit(f"the clinic could not enable the app: {enabled.status_code} {enabled.text}")
        patient = ScriptedUser(USERNAME, PASSWORD, untick={"metrics.steps.write"})
        token = partner.code_flow(self.hub, client_id, None, redirect, patient.authorize)
        readings = partner.granted_only(partner.sample_readings(), token["scope"])
        receipt_id = partner.send(self.hub, token["access_token"], readings)
        self.partner_receipt = (token["access_token"], receipt_id)
        say(f"5. Partner app {client_id}: consent given (steps unticked), {len(readings)} readings sent, "
            f"receipt {receipt_id}")  # fmt: skip

    # -- what landed ----------------------------------------------------------------------------------

    def observations(self) -> list[dict[str, Any]]:
        answer = self.http.get(
            f"{self.fhir}/Observation", params={"subject": f"Patient/{PATIENT}", "_count": "1000"}, timeout=30
        )
        answer.raise_for_status()
        return [entry["resource"] for entry in answer.json().get("entry", [])]

    def landed(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for resource in self.observations():
            if resource.get("status") == "entered-in-error":
                continue
            source = next((t["code"] for t in resource["meta"]["tag"] if t["system"] == "urn:iomt-hub:source"), "?")
            found[(source, resource["code"].get("text") or resource["code"]["coding"][0]["code"])].append(resource)
        return found

    def wait(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        from shared.clients.storage import queue_client
        from shared.composition import get_context
        from shared.names import WITHINGS_SYNC_QUEUE

        context = get_context()
        queues = [context.raw_store.queue, queue_client(context.settings, WITHINGS_SYNC_QUEUE)]
        deadline = time.monotonic() + WAIT_S
        found = self.landed()
        while time.monotonic() < deadline:
            idle = all(q.get_queue_properties().approximate_message_count == 0 for q in queues)
            found = self.landed()
            if idle and set(found) >= EXPECTED:
                break
            time.sleep(1)
        return found

    def report(self, found: dict[tuple[str, str], list[dict[str, Any]]]) -> bool:
        from shared.composition import get_context

        context = get_context()
        say("\nWhat landed in FHIR for Patient/" + PATIENT)
        say(f"  {'source':<10} {'kind':<28} {'count':>5}  example")
        for (source, kind), resources in sorted(found.items()):
            shown = "partner" if source.startswith("app-") else source  # the app's id is in step 5
            say(f"  {shown:<10} {kind:<28} {len(resources):>5}  {example(resources[0])}")
        parked = [item for item in context.parked.all() if item.receipt_id in self.receipts]
        withheld = [context.consent_audit.get(receipt) for receipt in self.receipts]
        rejected = [r for r in context.raw_store.rejected_records() if r["receiptId"] in self.receipts]
        say("\nNot written, with the reason")
        for item in parked:
            say(f"  parked     {item.readings} readings of {item.source}: no device assignment covers them")
        for audit in filter(None, withheld):
            for entry in audit.withheld:
                say(f"  consent    {entry.count} {entry.kind} of {audit.source}: {entry.reason}")
        for source, reading, reason in self.refused_at_ingress:
            say(f"  refused    {source} {reading}: {reason}")
        for record in rejected:
            for detail in record.get("details") or []:
                say(f"  rejected   {record['source']} {detail['sourceId']}: {detail['reason']}")
        if not (parked or any(withheld) or self.refused_at_ingress or rejected):
            say("  nothing")
        partner_ok = True
        if self.partner_receipt is not None:
            from examples import partner

            token, receipt_id = self.partner_receipt
            receipt = partner.follow(self.hub, token, receipt_id, wait_s=30)
            say(f"\nThe partner's receipt {receipt_id}")
            for reading in receipt["readings"]:
                outcome = reading.get("fhirId") or reading.get("reason") or ""
                say(f"  {reading['id']:<36} {reading['status']:<20} {outcome}")
            partner_ok = all(r["status"] == "written" for r in receipt["readings"])
        missing = sorted(EXPECTED - set(found))
        if missing or not partner_ok:
            absent = [f"{source} {kind}" for source, kind in missing] + ([] if partner_ok else ["partner"])
            say("\nMISSING: " + ", ".join(absent))
            return False
        say("\nEvery source landed.")
        return True


def example(resource: dict[str, Any]) -> str:
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        return f"{quantity['value']} {quantity.get('code') or quantity.get('unit', '')}".strip()
    parts = [f"{c['valueQuantity']['value']}" for c in resource.get("component", []) if "valueQuantity" in c]
    return "/".join(parts[:2]) + " mm[Hg]" if parts else resource["code"].get("text", "")


def reachable(hub: str) -> bool:
    try:
        return requests.get(f"{hub}/api/openapi.json", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def hub_running(hub: str) -> Iterator[None]:
    """The hub as ``make run`` left it; or, if nothing answers, the project's host for the tour."""
    if reachable(hub):
        yield
        return
    say(f"nothing answers at {hub}: starting the project's Functions host for the tour")
    host = subprocess.Popen(
        [sys.executable, str(REPO / "local" / "functions_host.py")], cwd=REPO, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not reachable(hub):
            if time.monotonic() > deadline or host.poll() is not None:
                raise SystemExit("the Functions host did not start")
            time.sleep(0.2)
        yield
    finally:
        host.terminate()
        host.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A tour of the running hub: readings in, FHIR resources out")
    parser.add_argument("--hub", default=f"http://127.0.0.1:{os.environ.get('FUNCTIONS_PORT', '7071')}")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from shared.localstack import local_settings

    settings = local_settings()
    for key, value in settings.items():
        os.environ.setdefault(key, value)
    with hub_running(args.hub):
        tour = Tour(args.hub, settings)
        tour.patient()
        token = tour.admin_token()
        tour.medisante(token)
        tour.healthkit()
        tour.withings(token)
        tour.partner(token)
        say("6. waiting for the workers...")
        return 0 if tour.report(tour.wait()) else 1


if __name__ == "__main__":
    sys.exit(main())
