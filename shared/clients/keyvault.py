"""Key Vault secrets: the real SDK client, pointed at the local stand-in in local mode."""

from __future__ import annotations

from azure.keyvault.secrets import SecretClient

from shared.clients.identity import credential_for
from shared.clients.transport import sdk_options
from shared.settings import Settings


def secret_client(settings: Settings) -> SecretClient:
    if settings.is_local:
        # The stand-in's certificate is self-signed and its challenge names no real vault.
        return SecretClient(
            settings.keyvault_url,
            credential_for(settings),
            verify_challenge_resource=False,
            **sdk_options(connection_verify=settings.keyvault_ca_bundle or True),
        )
    return SecretClient(settings.keyvault_url, credential_for(settings), **sdk_options())
