"""A small local OpenID Connect provider, standing in for Entra ID (and any OIDC provider).

It follows the specifications the hub relies on: OpenID Connect Discovery 1.0
(``/.well-known/openid-configuration``), a JWK Set (RFC 7517) of RS256 keys, the OAuth 2.0
token endpoint (RFC 6749) with the ``client_credentials`` grant (client authentication by HTTP
Basic or form fields) and the ``password`` grant, RFC 6749 error envelopes
(``{"error": "invalid_client"}`` ...), and a UserInfo endpoint (Bearer, RFC 6750).

Client-credentials tokens for an API are shaped the way Entra ID shapes them, by the API's
``accessTokenAcceptedVersion`` (its app manifest; unset, as for a new app registration, means
1.0): a v1.0 token has ``iss`` ``https://sts.windows.net/<tenant>/`` (here ``<base>/sts/<tenant>/``),
``aud`` the identifier the client asked for (the App ID URI), ``appid`` and ``ver`` "1.0"; a
v2.0 token has ``iss`` ``https://login.microsoftonline.com/<tenant>/v2.0`` (here
``<base>/<tenant>/v2.0``), ``aud`` the API's client id, ``azp`` and ``ver`` "2.0". Both carry
``tid``, ``oid``, ``sub`` and the app ``roles``, and are signed by the same published keys. The
tenant's endpoints live under ``/<tenant>/`` as at Entra; ``POST /_sim/access-token-version``
(``{"version": 1|2}``) changes the manifest setting. Clients, users and APIs are read from
``<data-dir>/directory.json`` (written with the defaults below on first start).

Usage: python oidc_simulator.py --port 8095 --data-dir DIR
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_LIFETIME_S = 3600
MAX_BODY_BYTES = 64 * 1024
DEFAULT_AUDIENCE = "api://iomt-hub"
TENANT_ID = "11111111-2222-4333-8444-555555555555"
# Local, public, development-only credentials.
DEFAULT_DIRECTORY: dict[str, Any] = {
    "apis": {DEFAULT_AUDIENCE: {"appId": "6d1e5d0a-0c4f-4b49-9d1d-6f1f2c0e8a11", "accessTokenAcceptedVersion": None}},
    "clients": {
        "iomt-admin-local": {"secret": "local-admin-secret", "roles": ["IoMT.Admin"]},
        "iomt-no-role-local": {"secret": "local-no-role-secret", "roles": []},
        "iomt-ingest-local": {"secret": "local-ingest-secret", "roles": ["IoMT.Ingest"]},
        # A platform operator, and a back office admitted through an Entra group membership.
        "iomt-platform-local": {"secret": "local-platform-secret", "roles": ["IoMT.Admin", "IoMT.Platform"]},
        "iomt-group-admin-local": {
            "secret": "local-group-admin-secret",
            "roles": ["IoMT.Admin"],
            "groups": ["group-clinic-b-admins"],
        },
    },
    "users": {
        "anna@example.org": {
            "password": "local-patient-password",
            "sub": "oidc-user-anna",
            "name": "Anna Example",
            "email": "anna@example.org",
            "preferred_username": "anna@example.org",
            "patient_id": "anna",
        },
        "nopatient@example.org": {
            "password": "local-patient-password",
            "sub": "oidc-user-nopatient",
            "email": "nopatient@example.org",
        },
        # Users of medical centres, with UserInfo's tenants claim in GipoNext's shape.
        "clinic-a@example.org": {
            "password": "local-patient-password",
            "sub": "oidc-user-clinic-a",
            "email": "clinic-a@example.org",
            "patient_id": "anna",
            "tenants": [{"id": "clinic-a", "name": "Clinic A"}],
        },
        "elsewhere@example.org": {
            "password": "local-patient-password",
            "sub": "oidc-user-elsewhere",
            "email": "elsewhere@example.org",
            "patient_id": "bob",
            "tenants": [{"id": "clinic-elsewhere", "name": "A centre this hub does not serve"}],
        },
    },
}


class Provider:
    def __init__(self, issuer: str, data_dir: Path) -> None:
        self.issuer = issuer
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.key, self.kid = self._signing_key()
        directory_file = data_dir / "directory.json"
        directory = json.loads(directory_file.read_text()) if directory_file.exists() else {}
        for section, defaults in DEFAULT_DIRECTORY.items():  # keep local edits, add what is missing
            directory.setdefault(section, {})
            for name, entry in defaults.items():
                directory[section].setdefault(name, entry)
        directory_file.write_text(json.dumps(directory, indent=2))
        self.directory_file = directory_file
        self.lock = threading.Lock()
        self.reset_requests: list[str] = []  # what a mail sender would have been asked to send
        self.access_token_version: int | None = None  # the API manifest's accessTokenAcceptedVersion

    def _signing_key(self) -> tuple[rsa.RSAPrivateKey, str]:
        key_file = self.data_dir / "signing-key.pem"
        if key_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            key = loaded
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()[:16]).decode().rstrip("=")
        return key, kid

    def directory(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.directory_file.read_text())
        return loaded

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{self.issuer}/oauth2/v2.0/token",
            "userinfo_endpoint": f"{self.issuer}/oidc/userinfo",
            "jwks_uri": f"{self.issuer}/discovery/v2.0/keys",
            "response_types_supported": ["token"],
            "grant_types_supported": ["client_credentials", "password"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def tenant_discovery(self, version: int) -> dict[str, Any]:
        base = f"{self.issuer}/{TENANT_ID}"
        return {
            **self.discovery(),
            "issuer": self.entra_issuer(version),
            "token_endpoint": f"{base}/oauth2/v2.0/token" if version == 2 else f"{base}/oauth2/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys" if version == 2 else f"{self.issuer}/common/discovery/keys",
        }

    def entra_issuer(self, version: int) -> str:
        return f"{self.issuer}/{TENANT_ID}/v2.0" if version == 2 else f"{self.issuer}/sts/{TENANT_ID}/"

    def api_token_claims(
        self, client_id: str, roles: list[str], scope: str | None, groups: list[str] | None = None
    ) -> dict[str, Any]:
        """Claims of a client-credentials token for the API named by ``scope``, v1 or v2 as
        that API's manifest says (Entra's behaviour; the endpoint's version does not matter)."""
        resource = self.audience(scope)
        apis = self.directory().get("apis", {})
        api = apis.get(resource) or next((a for a in apis.values() if a.get("appId") == resource), None)
        version = 2 if self.access_token_version == 2 else 1
        common = {
            "sub": client_id,
            "oid": client_id,
            "tid": TENANT_ID,
            "roles": roles,
            "iss": self.entra_issuer(version),
            **({"groups": groups} if groups else {}),
        }
        if version == 2:
            return {**common, "aud": api["appId"] if api else resource, "azp": client_id, "ver": "2.0"}
        return {**common, "aud": resource, "appid": client_id, "ver": "1.0"}

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def sign(self, claims: dict[str, Any]) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_S, "jti": str(uuid.uuid4())}
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": self.kid})

    def audience(self, scope: str | None) -> str:
        # Entra ID style: "<resource>/.default" asks for a token for that resource.
        if scope:
            first = scope.split()[0]
            return first.removesuffix("/.default")
        return DEFAULT_AUDIENCE


class Handler(BaseHTTPRequestHandler):
    provider: Provider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return  # requests may carry credentials: no access log

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": error, "error_description": description}, headers)

    def do_GET(self) -> None:
        provider = self.provider
        tenant = f"/{TENANT_ID}"
        if self.path in ("/healthz", "/.well-known/openid-configuration"):
            self._send(200, provider.discovery())
        elif self.path == f"{tenant}/v2.0/.well-known/openid-configuration":
            self._send(200, provider.tenant_discovery(2))
        elif self.path == f"{tenant}/.well-known/openid-configuration":
            self._send(200, provider.tenant_discovery(1))
        elif self.path in ("/discovery/v2.0/keys", f"{tenant}/discovery/v2.0/keys", "/common/discovery/keys"):
            self._send(200, provider.jwks())
        elif self.path == "/oidc/userinfo":
            self._userinfo()
        elif self.path == "/password-reset/requests":  # simulator only: what was asked for
            self._send(200, {"emails": provider.reset_requests})
        else:
            self._error(404, "not_found", "no such endpoint")

    def do_POST(self) -> None:
        if self.path == "/password-reset":
            self._password_reset()
            return
        if self.path == "/_sim/access-token-version":
            self._set_version()
            return
        if self.path not in ("/oauth2/v2.0/token", f"/{TENANT_ID}/oauth2/v2.0/token", f"/{TENANT_ID}/oauth2/token"):
            self._error(404, "not_found", "no such endpoint")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, "invalid_request", "request too large")
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            self._error(400, "invalid_request", "the token request must be form-encoded")
            return
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            self._client_credentials(form)
        elif grant == "password":
            self._password(form)
        else:
            self._error(400, "unsupported_grant_type", "grant_type must be client_credentials or password")

    def _client(self, form: dict[str, str]) -> tuple[str, dict[str, Any]] | None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = self.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
        clients = self.provider.directory()["clients"]
        client = clients.get(client_id or "")
        if client is None or not hmac.compare_digest(str(client["secret"]), secret or ""):
            return None
        return str(client_id), client

    def _client_credentials(self, form: dict[str, str]) -> None:
        found = self._client(form)
        if found is None:
            self._error(401, "invalid_client", "client authentication failed", {"WWW-Authenticate": "Basic"})
            return
        client_id, client = found
        token = self.provider.sign(
            self.provider.api_token_claims(
                client_id, list(client.get("roles", [])), form.get("scope"), list(client.get("groups", []))
            )
        )
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S})

    def _password(self, form: dict[str, str]) -> None:
        users = self.provider.directory().get("users", {})
        user = users.get(form.get("username") or "")
        if user is None or not hmac.compare_digest(str(user["password"]), form.get("password") or ""):
            self._error(400, "invalid_grant", "the user name or password is incorrect")
            return
        claims = {"aud": self.provider.audience(form.get("scope")), "sub": user["sub"], "scope": "openid profile"}
        token = self.provider.sign(claims)
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S})

    def _set_version(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            version = json.loads(self.rfile.read(length) or b"{}").get("version")
        except (ValueError, AttributeError):
            version = "bad"
        if version not in (None, 1, 2):
            self._error(400, "invalid_request", "version must be 1, 2 or null")
            return
        self.provider.access_token_version = version
        self._send(200, {"accessTokenAcceptedVersion": version})

    def _password_reset(self) -> None:
        """The provider's self-service reset: always 202, whether or not the email is known."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, "invalid_request", "request too large")
            return
        try:
            email = json.loads(self.rfile.read(length) or b"{}").get("email")
        except (ValueError, AttributeError):
            self._error(400, "invalid_request", "the body must be JSON with an email")
            return
        known = any(u.get("email") == email for u in self.provider.directory().get("users", {}).values())
        if known:
            self.provider.reset_requests.append(str(email))
        self._send(202, {"status": "accepted"})

    def _userinfo(self) -> None:
        header = self.headers.get("Authorization") or ""
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if not header.startswith("Bearer "):
            self._error(401, "invalid_token", "a bearer token is required", {"WWW-Authenticate": "Bearer"})
            return
        try:
            claims = jwt.decode(
                header[7:], self.provider.key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.PyJWTError:
            self._error(401, "invalid_token", "the token is not valid", challenge)
            return
        for user in self.provider.directory().get("users", {}).values():
            if user["sub"] == claims.get("sub"):
                self._send(200, {k: v for k, v in user.items() if k != "password"})
                return
        self._error(401, "invalid_token", "the token's subject is not a user", challenge)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    Handler.provider = Provider(f"http://127.0.0.1:{args.port}", args.data_dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
