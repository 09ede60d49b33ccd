"""Structural checks of the deployment (the Bicep compiler cannot be installed here, so the
templates are parsed as text): settings, names, roles and secrets agree with the code."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shared.errors import ConfigurationError
from shared.names import BLOB_CONTAINERS, COSMOS_CONTAINERS, QUEUES
from shared.settings import Settings, get_settings, reset_settings_cache
from tests.helpers.common import REPO

INFRA = REPO / "infra"
MAIN = (INFRA / "main.bicep").read_text()
FUNCTION = (INFRA / "app" / "function.bicep").read_text()
RBAC = (INFRA / "app" / "rbac.bicep").read_text()
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Settings of the Functions host and runtime: set by the Bicep, read by the platform, not the app.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Built-in role definition ids (Azure documentation, "Azure built-in roles").
BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "5a1fc7df-4bf1-4951-a576-89034ee01acd": "FHIR Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"


def block(text: str, opening: str) -> str:
    """The text between the brace (or bracket) that ends ``opening`` and its match."""
    start = text.index(opening) + len(opening) - 1
    closing = {"{": "}", "[": "]", "(": ")"}[text[start]]
    depth = 0
    for index in range(start, len(text)):
        if text[index] == text[start]:
            depth += 1
        elif text[index] == closing:
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    raise AssertionError(f"unbalanced {opening!r}")


def top_level_keys(body: str) -> dict[str, str]:
    """``key: value`` lines at the first nesting level of a Bicep object body."""
    keys, depth = {}, 0
    for line in body.splitlines():
        stripped = line.split("//", 1)[0].strip() if "'" not in line.split("//", 1)[0] else line.strip()
        if depth == 0 and (match := re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)$", stripped)):
            keys[match.group(1)] = match.group(2)
        depth += stripped.count("{") + stripped.count("[") - stripped.count("}") - stripped.count("]")
    return keys


def app_settings() -> dict[str, str]:
    """Every ``KEY: value`` of the app settings (objects merged with ``union(...)``)."""
    body = block(MAIN, "appSettings: union(")
    return dict(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$", body, flags=re.M))


def host_settings() -> dict[str, str]:
    return top_level_keys(block(FUNCTION, "var hostSettings = {"))


def env_name(name: str) -> str:
    field = Settings.model_fields[name]
    return field.alias or name.upper()


def test_every_required_setting_is_set_by_the_bicep_and_optional_ones_are_documented():
    set_by_bicep = {key.lower() for key in app_settings()}
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        setting = env_name(name)
        if setting.lower() in set_by_bicep:
            continue
        assert not field.is_required(), f"{setting} is required but the Bicep does not set it"
        assert f"`{setting}`" in readme, f"{setting} is optional but not documented in the README"
    # Identity-based storage: the app needs the account name (no connection string in Azure).
    assert "AzureWebJobsStorage__accountName" in app_settings()
    assert "AzureWebJobsStorage" not in app_settings()


def test_nothing_the_bicep_sets_is_unknown_to_the_app_or_the_platform():
    known = {env_name(name).lower() for name in Settings.model_fields}
    for key in app_settings():
        assert key.lower() in known, f"the Bicep sets {key}, which the app does not read"
    for key in host_settings():
        assert key in PLATFORM_SETTINGS, f"{key} is neither an app setting nor a known platform setting"


def test_secrets_are_key_vault_references_not_values():
    settings = app_settings()
    assert settings["MEDISANTE_API_KEY_HASHES"].startswith("'@Microsoft.KeyVault(VaultName=")
    assert settings["WITHINGS_CLIENT_SECRET"].startswith("'@Microsoft.KeyVault(VaultName=")
    assert settings["HUB_ENV"] == "'azure'"
    assert "keyVaultAccessIdentityResourceId: identityId" in FUNCTION  # references resolve as the app


def test_cosmos_containers_queues_and_blob_containers_match_the_code():
    declared = dict(re.findall(r"\{\s*name:\s*'([^']+)',\s*partitionKey:\s*'([^']+)'\s*\}", MAIN))
    assert declared == COSMOS_CONTAINERS
    cosmos = (INFRA / "app" / "cosmos.bicep").read_text()
    assert "paths: [container.partitionKey]" in cosmos
    assert re.findall(r"'([^']+)'", block(MAIN, "var queueNames = [")) == list(QUEUES)
    assert re.findall(r"'([^']+)'", block(MAIN, "var blobContainerNames = [")) == list(BLOB_CONTAINERS)
    assert "for name in queueNames" in MAIN
    assert "concat([deploymentContainerName], blobContainerNames)" in MAIN
    assert "cosmosDatabaseName = 'iomt-hub'" in MAIN
    assert Settings.model_fields["cosmos_database"].default == "iomt-hub"


def test_the_identity_holds_each_data_role_and_nothing_wider():
    declared = dict(re.findall(r"'([0-9a-f-]{36})' // ([^(\n]+)", RBAC))
    for role_id, name in BUILT_IN_ROLES.items():
        assert declared.get(role_id, "").strip() == name, f"missing or misnamed role {name}"
    assert COSMOS_DATA_CONTRIBUTOR in RBAC
    assert "sqlRoleAssignments" in RBAC
    required = ("storageBlobDataOwner", "storageQueueDataContributor", "keyVaultSecretsOfficer", "fhirDataContributor")
    for role in required:
        assert f"roles.{role})" in RBAC, f"{role} is declared but not assigned"
    infra_text = "\n".join(path.read_text() for path in BICEP_FILES)
    assert OWNER not in infra_text
    assert CONTRIBUTOR not in infra_text
    # Each assignment is scoped to one resource, never to the resource group or subscription.
    assignments = re.findall(r"roleAssignments@[^=]+=[^{]*\{(.*?)\n\}", RBAC, flags=re.S)
    assert len(assignments) == 5
    for body in assignments:
        scope = re.search(r"^\s*scope: (\w+)\s*$", body, flags=re.M)
        assert scope is not None
        assert scope.group(1) in {"storage", "keyVault", "fhirService", "applicationInsights"}
    for path in BICEP_FILES:
        if path.name != "rbac.bicep":
            assert "roleAssignments" not in path.read_text(), f"{path.name}: role assignments belong in rbac.bicep"


@pytest.mark.parametrize("path", [*BICEP_FILES, INFRA / "main.parameters.json"], ids=lambda p: p.name)
def test_no_key_connection_string_or_secret_literal_in_infra(path: Path):
    text = path.read_text()
    forbidden = [
        r"AccountKey=",
        r"SharedAccessKey",
        r"SharedAccessSignature",
        r"DefaultEndpointsProtocol",
        r"listKeys\(",
        r"listConnectionStrings\(",
        r"primaryMasterKey",
        r"\.keys\(",
        r"(?i)password\s*:\s*'",
        r"(?i)secret\s*:\s*'(?!@Microsoft\.KeyVault\()[^']+'",  # a secret's value only as a Key Vault reference
    ]
    for pattern in forbidden:
        assert not re.search(pattern, text), f"{path.name}: {pattern}"
    # A @secure() parameter has no default value but the empty string.
    for match in re.finditer(r"@secure\(\)\s*(?:@description\('[^']*'\)\s*)?param (\w+) (\w+)(.*)", text):
        default = match.group(3).strip()
        assert default in ("", "= ''"), f"{path.name}: secure parameter {match.group(1)} has a default"


def test_hardening_flags_are_set():
    assert "allowSharedKeyAccess: false" in MAIN
    assert "allowBlobPublicAccess: false" in MAIN
    keyvault = (INFRA / "app" / "keyvault.bicep").read_text()
    for flag in ("enableRbacAuthorization: true", "enableSoftDelete: true", "enablePurgeProtection: true"):
        assert flag in keyvault
    cosmos = (INFRA / "app" / "cosmos.bicep").read_text()
    assert "disableLocalAuthentication: true" in cosmos
    assert "EnableServerless" in cosmos
    fhir = (INFRA / "app" / "fhir.bicep").read_text()
    assert "kind: 'fhir-R4'" in fhir
    assert "skuName: 'FC1'" in FUNCTION
    assert "name: 'python'" in FUNCTION
    assert "version: '3.11'" in FUNCTION
    assert "userAssignedResourceIds: [identityId]" in FUNCTION
    assert "systemAssigned: false" in FUNCTION
    assert "alwaysReady:" in FUNCTION
    assert "param vnetEnabled bool = false" in MAIN
    assert "module network 'app/network.bicep' = if (vnetEnabled)" in MAIN


def test_every_parameter_without_a_default_is_supplied_by_the_parameters_file():
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = re.findall(r"^param (\w+) \w+( =)?", MAIN, flags=re.M)
    for name, has_default in declared:
        if not has_default:
            assert name in parameters, f"{name} has no default and is not in main.parameters.json"
    assert set(parameters) <= {name for name, _ in declared}


def test_azure_yaml_deploys_the_function_app_and_runs_the_settings_hook():
    project = yaml.safe_load((REPO / "azure.yaml").read_text())
    service = project["services"]["api"]
    assert (service["host"], service["language"], service["project"]) == ("function", "python", ".")
    hook = project["hooks"]["postprovision"]["posix"]["run"]
    assert "infra/scripts/write_local_settings.py" in hook
    assert "'azd-service-name': 'api'" in FUNCTION
    funcignore = (REPO / ".funcignore").read_text().split()
    assert {"tests", "local", ".venv", "infra"} <= set(funcignore)


def test_local_settings_hook_writes_settings_the_app_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    outputs = set(re.findall(r"^output (\w+) ", MAIN, flags=re.M))
    spec = importlib.util.spec_from_file_location("write_local_settings", INFRA / "scripts" / "write_local_settings.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    assert set(hook.FROM_OUTPUTS) <= outputs, "the hook reads a value main.bicep does not output"
    environ = {
        "STORAGE_ACCOUNT_NAME": "stiomtabc",
        "COSMOS_ENDPOINT": "https://cosmos-iomt-abc.documents.azure.com:443/",
        "COSMOS_DATABASE": "iomt-hub",
        "FHIR_URL": "https://hdsiomtabc-fhir.fhir.azurehealthcareapis.com",
        "KEYVAULT_URL": "https://kv-iomt-abc.vault.azure.net/",
        "ADMIN_TOKEN_ISSUER": "https://login.microsoftonline.com/tenant/v2.0",
        "ADMIN_TOKEN_AUDIENCE": "api://iomt-hub",
        "ADMIN_ROLE": "IoMT.Admin",
        "AZURE_RESOURCE_GROUP": "rg-test",
        "MEDISANTE_API_KEY_HASHES": "a" * 64,
    }
    output = tmp_path / "local.settings.json"
    result = subprocess.run(
        [sys.executable, str(INFRA / "scripts" / "write_local_settings.py"), "--output", str(output)],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(output.read_text())["Values"]
    assert values["HUB_ENV"] == "azure"
    assert "AzureWebJobsStorage" not in values  # keyless
    for key in list(Settings.model_fields):
        monkeypatch.delenv(env_name(key), raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    try:
        settings = get_settings()
    except ConfigurationError as exc:  # pragma: no cover - the assertion below explains
        pytest.fail(f"the hook's settings are refused: {exc.message}")
    finally:
        reset_settings_cache()
    assert settings.storage_account_name == "stiomtabc"
    assert settings.fhir_url == environ["FHIR_URL"]
    incomplete = {k: v for k, v in environ.items() if k != "FHIR_URL"}
    result = subprocess.run(
        [sys.executable, str(INFRA / "scripts" / "write_local_settings.py"), "--output", str(tmp_path / "x.json")],
        env={"PATH": "/usr/bin:/bin", **incomplete},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "FHIR_URL" in result.stderr


def test_workflow_tests_then_deploys_with_federated_credentials_only():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci-cd.yml").read_text())
    test_steps = workflow["jobs"]["test"]["steps"]
    assert any("bash .ci/run" in step.get("run", "") for step in test_steps)
    deploy = workflow["jobs"]["deploy"]
    assert sorted(deploy["needs"]) == ["bicep", "test"]
    assert deploy["permissions"]["id-token"] == "write"
    runs = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "--federated-credential-provider" in runs
    assert "azd provision --no-prompt" in runs
    assert "azd deploy --no-prompt" in runs
    text = (REPO / ".github" / "workflows" / "ci-cd.yml").read_text()
    assert "secrets." not in text  # nothing stored: OIDC federation and plain variables
    assert "client-secret" not in text


def test_workflow_compiles_and_lints_every_bicep_template_before_deploying():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci-cd.yml").read_text())
    runs = "\n".join(step.get("run", "") for step in workflow["jobs"]["bicep"]["steps"])
    assert "az bicep install" in runs
    assert "az bicep build --file" in runs
    assert "az bicep lint --file" in runs
    assert "infra/main.bicep infra/app/*.bicep" in runs  # every template the deployment uses
    templates = {path.name for path in (REPO / "infra" / "app").glob("*.bicep")}
    modules = set(re.findall(r"'app/([\w-]+\.bicep)'", (REPO / "infra" / "main.bicep").read_text()))
    assert modules <= templates  # the glob covers every module main.bicep uses
    assert "bicep" in workflow["jobs"]["deploy"]["needs"]
