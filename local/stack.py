"""Start, stop and check the local Azure stack: Azurite, the Cosmos DB server, the FHIR R4
server, the Key Vault stand-in and the OIDC provider and Withings simulators, each on a loopback port.

    python local/stack.py up       # idempotent: starts what is not running, waits until healthy
    python local/stack.py down     # idempotent: stops what this script started
    python local/stack.py status
    python local/stack.py running  # exit status 0 when every part answers

Process ids, logs and data live under local/.data (ignored by git). Only the standard library
is used here; the Python servers it starts (Key Vault, OIDC) need the project's virtual
environment, so run it with the venv's Python (the Makefile does).
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
NODE_MODULES = HERE / "node_modules"
STARTUP_TIMEOUT_S = 60.0


def port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    health_url: str
    insecure_tls: bool = False

    @property
    def pid_file(self) -> Path:
        return DATA / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return DATA / "logs" / f"{self.name}.log"


def services() -> list[Service]:
    blob, queue, table = (
        port("AZURITE_BLOB_PORT", 10000),
        port("AZURITE_QUEUE_PORT", 10001),
        port("AZURITE_TABLE_PORT", 10002),
    )
    cosmos, fhir, keyvault = port("COSMOS_PORT", 8081), port("FHIR_PORT", 8090), port("KEYVAULT_PORT", 8443)
    return [
        # One process per storage service, as Azure runs Blob and Queue apart: in one Azurite
        # process every archive write would queue behind the queue's own calls on one event loop.
        *(
            Service(
                f"azurite-{kind}",
                [
                    "node",
                    str(NODE_MODULES / "azurite" / "dist" / "src" / kind / "main.js"),
                    "--silent",
                    "--skipApiVersionCheck",
                    "--location",
                    str(DATA / "azurite"),
                    f"--{kind}Host",
                    "127.0.0.1",
                    f"--{kind}Port",
                    str(number),
                ],
                f"http://127.0.0.1:{number}/devstoreaccount1?comp=list",
            )
            for kind, number in (("blob", blob), ("queue", queue), ("table", table))
        ),
        Service(
            "cosmos",
            [
                "node",
                str(NODE_MODULES / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"),
                "--host",
                "127.0.0.1",
                "-p",
                str(cosmos),
                "--no-ssl",
            ],
            f"http://127.0.0.1:{cosmos}/",
        ),
        Service(
            "fhir",
            ["node", str(HERE / "fhir-server.mjs")],
            f"http://127.0.0.1:{fhir}/healthz",
        ),
        Service(
            "keyvault",
            [
                sys.executable,
                str(HERE / "keyvault_standin.py"),
                "--port",
                str(keyvault),
                "--data-dir",
                str(DATA / "keyvault"),
            ],
            f"https://127.0.0.1:{keyvault}/healthz",
            insecure_tls=True,
        ),
        Service(
            "oidc",
            [
                sys.executable,
                str(HERE / "oidc_simulator.py"),
                "--port",
                str(port("OIDC_PORT", 8095)),
                "--data-dir",
                str(DATA / "oidc"),
            ],
            f"http://127.0.0.1:{port('OIDC_PORT', 8095)}/healthz",
        ),
        Service(
            "withings",
            [sys.executable, str(HERE / "withings_simulator.py"), "--port", str(port("WITHINGS_PORT", 8096))],
            f"http://127.0.0.1:{port('WITHINGS_PORT', 8096)}/healthz",
        ),
    ]


def answers(service: Service) -> bool:
    """Any HTTP answer (even 401/403) means the server is up and speaking HTTP."""
    context = None
    if service.insecure_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(service.health_url, timeout=2, context=context):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def running_pid(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def start(service: Service) -> None:
    if running_pid(service) and answers(service):
        print(f"{service.name}: already running")
        return
    if answers(service):
        sys.exit(f"{service.name}: something else already answers at {service.health_url}; stop it or set another port")
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FHIR_PORT=str(port("FHIR_PORT", 8090)))
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.command,
            cwd=HERE,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    service.pid_file.write_text(str(process.pid))


def wait_healthy(service: Service) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if answers(service):
            print(f"{service.name}: healthy at {service.health_url}")
            return
        if running_pid(service) is None:
            break
        time.sleep(0.25)
    tail = service.log_file.read_text(errors="replace")[-2000:] if service.log_file.exists() else ""
    sys.exit(f"{service.name}: did not become healthy; log tail:\n{tail}")


def stop(service: Service) -> None:
    pid = running_pid(service)
    if pid is None:
        service.pid_file.unlink(missing_ok=True)
        print(f"{service.name}: not running")
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running_pid(service):
        time.sleep(0.1)
    if running_pid(service):
        os.killpg(pid, signal.SIGKILL)
    service.pid_file.unlink(missing_ok=True)
    print(f"{service.name}: stopped")


# Services an earlier version of this script started under another name (one Azurite process
# for Blob, Queue and Table): stopped by `up` and `down`, so a checkout updated while the stack
# ran does not find its ports taken by a process it no longer knows.
RETIRED_SERVICES = ("azurite",)


def stop_retired() -> None:
    for name in RETIRED_SERVICES:
        retired = Service(name, [], "")
        if running_pid(retired) is not None:
            stop(retired)
        retired.pid_file.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Azure stack")
    parser.add_argument("action", choices=["up", "down", "status", "running"])
    args = parser.parse_args()
    if args.action in ("up",) and not (NODE_MODULES / "azurite").exists():
        sys.exit("local/node_modules is missing: run 'npm ci --prefix local' (make local-up does)")
    all_services = services()
    if args.action in ("up", "down"):
        stop_retired()
    if args.action == "up":
        for service in all_services:
            start(service)
        for service in all_services:
            wait_healthy(service)
    elif args.action == "down":
        for service in all_services:
            stop(service)
    elif args.action == "running":  # exit status only: 0 when every part answers
        sys.exit(0 if all(answers(service) for service in all_services) else 1)
    else:
        for service in all_services:
            state = "healthy" if answers(service) else "down"
            print(f"{service.name}: {state} (pid {running_pid(service)})")


if __name__ == "__main__":
    main()
