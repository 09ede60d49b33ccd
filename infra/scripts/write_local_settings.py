"""azd ``postprovision`` hook: writes ``local.settings.json`` for running the function app on
this machine against the resources just provisioned (your own Azure login is the identity:
``azd`` granted it the same data roles when ``AZURE_PRINCIPAL_ID`` was set).

azd passes the environment's values (the Bicep outputs among them) as environment variables.
The checked-in ``local.settings.json.example`` stays the local-stack version. Standard library
only: it runs before any virtual environment exists.

    python infra/scripts/write_local_settings.py [--output local.settings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Bicep output (environment variable) → app setting.
FROM_OUTPUTS = {
    "STORAGE_ACCOUNT_NAME": "AzureWebJobsStorage__accountName",
    "COSMOS_ENDPOINT": "COSMOS_ENDPOINT",
    "COSMOS_DATABASE": "COSMOS_DATABASE",
    "FHIR_URL": "FHIR_URL",
    "KEYVAULT_URL": "KEYVAULT_URL",
    "ADMIN_TOKEN_ISSUER": "ADMIN_TOKEN_ISSUER",
    "ADMIN_TOKEN_AUDIENCE": "ADMIN_TOKEN_AUDIENCE",
    "ADMIN_ROLE": "ADMIN_ROLE",
}
# azd environment values the user set (`azd env set ...`), passed through when present.
FROM_ENVIRONMENT = ("MEDISANTE_API_KEY_HASHES", "ADMIN_TOKEN_CLIENT_ID")


def local_settings(environ: dict[str, str]) -> dict[str, object]:
    missing = [name for name in FROM_OUTPUTS if not environ.get(name)]
    if missing:
        raise SystemExit(f"missing azd outputs: {', '.join(missing)} (run this as the azd postprovision hook)")
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
        "HUB_ENV": "azure",
        "AZURE_CLIENT_ID": "",  # your own login (az login / azd auth login), not the app's identity
        "FHIR_AUDIENCE": environ["FHIR_URL"],
    }
    values.update({setting: environ[output] for output, setting in FROM_OUTPUTS.items()})
    values.update({name: environ[name] for name in FROM_ENVIRONMENT if environ.get(name)})
    return {"IsEncrypted": False, "Values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[2] / "local.settings.json")
    args = parser.parse_args()
    settings = local_settings(dict(os.environ))
    args.output.write_text(json.dumps(settings, indent=2) + "\n")
    print(f"wrote {args.output} for resource group {os.environ.get('AZURE_RESOURCE_GROUP', '?')}", file=sys.stderr)


if __name__ == "__main__":
    main()
