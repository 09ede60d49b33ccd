"""Cosmos DB: the key against the local server, the managed identity (Cosmos SQL role) in Azure."""

from __future__ import annotations

from azure.cosmos import CosmosClient, DatabaseProxy

from shared.clients.identity import credential_for
from shared.settings import Settings

# Every container the app uses, with its partition key path. infra/ declares the same.
COSMOS_CONTAINERS: dict[str, str] = {}


def cosmos_client(settings: Settings) -> CosmosClient:
    if settings.cosmos_key is not None:
        return CosmosClient(
            settings.cosmos_endpoint,
            credential=settings.cosmos_key.get_secret_value(),
            connection_verify=not settings.is_local,
            enable_endpoint_discovery=not settings.is_local,
        )
    return CosmosClient(settings.cosmos_endpoint, credential=credential_for(settings))


def cosmos_database(settings: Settings) -> DatabaseProxy:
    return cosmos_client(settings).get_database_client(settings.cosmos_database)
