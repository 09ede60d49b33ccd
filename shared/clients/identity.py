"""Credentials: managed identity in Azure, a fixed token against the local stand-ins."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential

from shared.settings import Settings


class LocalStandInCredential:
    """Satisfies the Key Vault client's challenge flow against the local stand-in, which
    accepts any bearer token. Never used outside HUB_ENV=local."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-stand-in", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo("local-stand-in", int(time.time()) + 3600)


@lru_cache(maxsize=4)
def _azure_credential(client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)


def credential_for(settings: Settings) -> TokenCredential:
    if settings.is_local:
        return LocalStandInCredential()
    return _azure_credential(settings.azure_client_id)
