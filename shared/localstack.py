"""The app settings that point the hub at the local stack (``local/stack.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from shared.auth import key_digest

REPO = Path(__file__).resolve().parent.parent
# Azurite's and the Cosmos emulator's documented development keys: public, local only.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
COSMOS_EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
LOCAL_MEDISANTE_API_KEY = "local-medisante-key"
# The OIDC simulator's development clients (local/oidc_simulator.py): public, local only.
LOCAL_ADMIN_CLIENT = ("iomt-admin-local", "local-admin-secret")
LOCAL_NO_ROLE_CLIENT = ("iomt-no-role-local", "local-no-role-secret")
LOCAL_INGEST_CLIENT = ("iomt-ingest-local", "local-ingest-secret")
LOCAL_PLATFORM_CLIENT = ("iomt-platform-local", "local-platform-secret")
LOCAL_GROUP_ADMIN_CLIENT = ("iomt-group-admin-local", "local-group-admin-secret")  # group-clinic-b-admins
LOCAL_ADMIN_AUDIENCE = "api://iomt-hub"  # the hub's App ID URI at the OIDC simulator
LOCAL_API_CLIENT_ID = "6d1e5d0a-0c4f-4b49-9d1d-6f1f2c0e8a11"  # the hub's app registration (client id)
LOCAL_TENANT_ID = "11111111-2222-4333-8444-555555555555"
# The Withings simulator's OAuth app (local/withings_simulator.py): public, local only.
LOCAL_WITHINGS_CLIENT = ("local-withings-client", "local-withings-secret")


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def local_settings() -> dict[str, str]:
    blob, queue, table = (
        _port("AZURITE_BLOB_PORT", 10000),
        _port("AZURITE_QUEUE_PORT", 10001),
        _port("AZURITE_TABLE_PORT", 10002),
    )
    storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;"
    )
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
        "AzureWebJobsStorage": storage,
        "HUB_ENV": "local",
        "COSMOS_ENDPOINT": f"http://127.0.0.1:{_port('COSMOS_PORT', 8081)}",
        "COSMOS_KEY": COSMOS_EMULATOR_KEY,
        "COSMOS_DATABASE": "iomt-hub",
        "FHIR_URL": f"http://127.0.0.1:{_port('FHIR_PORT', 8090)}",
        "KEYVAULT_URL": f"https://localhost:{_port('KEYVAULT_PORT', 8443)}",
        "KEYVAULT_CA_BUNDLE": str(REPO / "local" / ".data" / "keyvault" / "keyvault-cert.pem"),
        "MEDISANTE_API_KEY_HASHES": key_digest(LOCAL_MEDISANTE_API_KEY),
        "MAX_DEQUEUE_COUNT": "5",
        "MAX_BODY_BYTES": "1048576",
        "FHIR_AUDIENCE": "",
        "FHIR_BATCH_SIZE": "500",
        "FHIR_MAX_ATTEMPTS": "6",
        "FHIR_TIMEOUT_S": "30",
        "AZURE_CLIENT_ID": "",
        "ADMIN_TOKEN_ISSUER": local_admin_issuer(2),
        "ADMIN_TOKEN_V1_ISSUER": local_admin_issuer(1),
        "ADMIN_TOKEN_AUDIENCE": LOCAL_ADMIN_AUDIENCE,
        "ADMIN_TOKEN_CLIENT_ID": LOCAL_API_CLIENT_ID,
        "ADMIN_ROLE": "IoMT.Admin",
        "ATTRIBUTION_LOOKBACK_DAYS": "7",
        "WITHINGS_CLIENT_ID": LOCAL_WITHINGS_CLIENT[0],
        "WITHINGS_CLIENT_SECRET": LOCAL_WITHINGS_CLIENT[1],
        "WITHINGS_API_URL": f"http://127.0.0.1:{_port('WITHINGS_PORT', 8096)}",
        "WITHINGS_AUTHORIZE_URL": f"http://127.0.0.1:{_port('WITHINGS_PORT', 8096)}/oauth2_user/authorize2",
        "WITHINGS_PUBLIC_BASE_URL": f"http://127.0.0.1:{_port('FUNCTIONS_PORT', 7071)}",
    }


def local_issuer() -> str:
    return f"http://127.0.0.1:{_port('OIDC_PORT', 8095)}"


def local_admin_issuer(version: int) -> str:
    """The simulated Entra tenant's issuer of v2.0 or v1.0 access tokens."""
    base = local_issuer()
    return f"{base}/{LOCAL_TENANT_ID}/v2.0" if version == 2 else f"{base}/sts/{LOCAL_TENANT_ID}/"


def local_token_url() -> str:
    return f"{local_issuer()}/{LOCAL_TENANT_ID}/oauth2/v2.0/token"


def local_client_token(client: tuple[str, str] = LOCAL_ADMIN_CLIENT) -> str:
    """An access token for the hub's API from the OIDC simulator (client credentials grant);
    ``ConfigurationError`` when the simulator refuses."""
    import requests

    from shared.errors import ConfigurationError

    response = requests.post(
        local_token_url(),
        data={"grant_type": "client_credentials", "scope": f"{LOCAL_ADMIN_AUDIENCE}/.default"},
        auth=client,
        timeout=10,
    )
    if response.status_code != 200:
        raise ConfigurationError(f"the local OIDC provider answered HTTP {response.status_code}")
    return str(response.json()["access_token"])
