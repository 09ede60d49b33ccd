"""A local stand-in for Azure Key Vault's secrets REST API.

No Key Vault emulator exists on any package registry, so this small HTTPS server speaks the
subset of the secrets API that the real ``azure-keyvault-secrets`` client uses: the 401
challenge with ``WWW-Authenticate``, set, get (latest or by version), update properties, list
secrets and versions, soft delete, get/list/purge/recover deleted secrets. Any bearer token is
accepted: it stands in for the vault's data plane, not for Entra ID.

The certificate is self-signed and generated at start; its PEM is written next to the data so
that the client can trust exactly this certificate. State is kept in one JSON file.

Usage: python keyvault_standin.py --port 8443 --data-dir DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", '
    'resource="https://vault.azure.net"'
)
SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
MAX_BODY_BYTES = 1024 * 1024


def make_certificate(data_dir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = data_dir / "keyvault-cert.pem"
    key_path = data_dir / "keyvault-key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class Vault:
    """Secrets with versions, plus the soft-deleted ones, persisted to one JSON file."""

    def __init__(self, state_file: Path) -> None:
        self._file = state_file
        self._lock = threading.Lock()
        empty: dict[str, Any] = {"secrets": {}, "deleted": {}}
        state = json.loads(state_file.read_text()) if state_file.exists() else empty
        self.secrets: dict[str, list[dict[str, Any]]] = state["secrets"]
        self.deleted: dict[str, dict[str, Any]] = state["deleted"]

    def save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"secrets": self.secrets, "deleted": self.deleted}))
        tmp.replace(self._file)

    @property
    def lock(self) -> threading.Lock:
        return self._lock


def now_epoch() -> int:
    return int(time.time())


class Handler(BaseHTTPRequestHandler):
    server_version = "KeyVaultStandIn/1.0"
    vault: Vault
    base_url: str

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # never log: secret names and values stay out of logs

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"error": {"code": code, "message": message}})

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("request body too large")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and len(auth) > len("Bearer "):
            return True
        # Drain any body so that the connection stays usable for the retried request.
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        self._send(
            401,
            {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
            {"WWW-Authenticate": CHALLENGE},
        )
        return False

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/healthz":
            self._send(200, {"status": "ok"})
            return
        if "api-version" not in parse_qs(parts.query):
            self._error(400, "BadParameter", "The api-version query parameter is missing")
            return
        if not self._authorised():
            return
        segments = [s for s in parts.path.split("/") if s]
        try:
            self._dispatch(method, segments)
        except ValueError as exc:
            self._error(400, "BadParameter", str(exc))

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_POST(self) -> None:
        self._route("POST")

    # -- API ------------------------------------------------------------------------------
    def _secret_id(self, name: str, version: str | None = None) -> str:
        base = f"{self.base_url}/secrets/{name}"
        return f"{base}/{version}" if version else base

    def _bundle(
        self, name: str, version: dict[str, Any], *, with_value: bool, versioned_id: bool = True
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self._secret_id(name, version["version"] if versioned_id else None),
            "attributes": version["attributes"],
        }
        if with_value:
            body["value"] = version["value"]
        for key in ("tags", "contentType"):
            if version.get(key) is not None:
                body[key] = version[key]
        return body

    def _dispatch(self, method: str, seg: list[str]) -> None:
        vault = self.vault
        if seg and seg[0] == "secrets":
            if method == "GET" and len(seg) == 1:
                with vault.lock:
                    items = [
                        self._bundle(n, v[-1], with_value=False, versioned_id=False)
                        for n, v in sorted(vault.secrets.items())
                    ]
                self._send(200, {"value": items, "nextLink": None})
                return
            name = seg[1] if len(seg) > 1 else ""
            if not SECRET_NAME.match(name):
                self._error(400, "BadParameter", "The secret name is invalid")
                return
            rest = seg[2:]
            if method == "PUT" and not rest:
                self._set(name)
                return
            if method == "DELETE" and not rest:
                self._delete(name)
                return
            if method == "GET" and rest == ["versions"]:
                with vault.lock:
                    versions = vault.secrets.get(name, [])
                    items = [self._bundle(name, v, with_value=False) for v in versions]
                self._send(200, {"value": items, "nextLink": None})
                return
            if method in ("GET", "PATCH") and len(rest) <= 1:
                version_id = rest[0] if rest else ""
                with vault.lock:
                    history = vault.secrets.get(name)
                    found = None
                    if history:
                        found = (
                            history[-1]
                            if not version_id
                            else next((v for v in history if v["version"] == version_id), None)
                        )
                    if found is None:
                        suffix = f" with version {version_id}" if version_id else ""
                        self._error(
                            404,
                            "SecretNotFound",
                            f"A secret with (name/id) {name}{suffix} was not found in this key vault.",
                        )
                        return
                    if method == "PATCH":
                        update = self._read_json()
                        if "tags" in update:
                            found["tags"] = update["tags"]
                        if "contentType" in update:
                            found["contentType"] = update["contentType"]
                        found["attributes"].update(update.get("attributes") or {})
                        found["attributes"]["updated"] = now_epoch()
                        vault.save()
                    body = self._bundle(name, found, with_value=method == "GET")
                self._send(200, body)
                return
        if seg and seg[0] == "deletedsecrets":
            if method == "GET" and len(seg) == 1:
                with vault.lock:
                    items = [{k: v for k, v in d.items() if k != "_versions"} for d in vault.deleted.values()]
                self._send(200, {"value": items, "nextLink": None})
                return
            name = seg[1] if len(seg) > 1 else ""
            with vault.lock:
                deleted = vault.deleted.get(name)
                if deleted is None:
                    self._error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
                    return
                if method == "GET" and len(seg) == 2:
                    self._send(200, {k: v for k, v in deleted.items() if k != "_versions"})
                    return
                if method == "DELETE" and len(seg) == 2:
                    del vault.deleted[name]
                    vault.save()
                    self._send(204)
                    return
                if method == "POST" and seg[2:] == ["recover"]:
                    vault.secrets[name] = deleted["_versions"]
                    del vault.deleted[name]
                    vault.save()
                    self._send(200, self._bundle(name, vault.secrets[name][-1], with_value=False))
                    return
        self._error(404, "NotFound", "No such operation")

    def _set(self, name: str) -> None:
        body = self._read_json()
        value = body.get("value")
        if not isinstance(value, str):
            self._error(400, "BadParameter", "Property 'value' is required and must be a string")
            return
        with self.vault.lock:
            if name in self.vault.deleted:
                self._error(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused;"
                    " in this state, the secret can only be recovered or purged.",
                )
                return
            ts = now_epoch()
            attributes = {
                "enabled": True,
                "created": ts,
                "updated": ts,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 7,
            }
            for key in ("exp", "nbf", "enabled"):
                if key in (body.get("attributes") or {}):
                    attributes[key] = body["attributes"][key]
            version = {
                "version": uuid.uuid4().hex,
                "value": value,
                "tags": body.get("tags"),
                "contentType": body.get("contentType"),
                "attributes": attributes,
            }
            self.vault.secrets.setdefault(name, []).append(version)
            self.vault.save()
        self._send(200, self._bundle(name, version, with_value=True))

    def _delete(self, name: str) -> None:
        with self.vault.lock:
            versions = self.vault.secrets.pop(name, None)
            if versions is None:
                self._error(404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault.")
                return
            ts = now_epoch()
            latest = versions[-1]
            deleted = {
                **self._bundle(name, latest, with_value=False, versioned_id=False),
                "recoveryId": f"{self.base_url}/deletedsecrets/{name}",
                "deletedDate": ts,
                "scheduledPurgeDate": ts + 7 * 86400,
                "_versions": versions,
            }
            self.vault.deleted[name] = deleted
            self.vault.save()
        self._send(200, {k: v for k, v in deleted.items() if k != "_versions"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = make_certificate(args.data_dir)

    handler = type(
        "BoundHandler",
        (Handler,),
        {
            "vault": Vault(args.data_dir / "secrets.json"),
            "base_url": f"https://localhost:{args.port}",
        },
    )
    server = ThreadingHTTPServer((args.host, args.port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"Key Vault stand-in listening on https://localhost:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
