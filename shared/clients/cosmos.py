"""Cosmos DB: the key against the local server, the managed identity (Cosmos SQL role) in Azure."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, CosmosClient, DatabaseProxy, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from shared.clients.identity import credential_for
from shared.clients.transport import sdk_options
from shared.errors import BadRequest, Conflict
from shared.names import COSMOS_CONTAINERS
from shared.settings import Settings

Item = dict[str, Any]



def cosmos_client(settings: Settings) -> CosmosClient:
    if settings.cosmos_key is not None:
        return CosmosClient(
            settings.cosmos_endpoint,
            credential=settings.cosmos_key.get_secret_value(),
            enable_endpoint_discovery=not settings.is_local,
            **sdk_options(connection_verify=not settings.is_local),
        )
    return CosmosClient(settings.cosmos_endpoint, credential=credential_for(settings), **sdk_options())


def cosmos_database(settings: Settings) -> DatabaseProxy:
    return cosmos_client(settings).get_database_client(settings.cosmos_database)


def ensure_containers(settings: Settings) -> DatabaseProxy:
    """Creates the database and every container if missing (local stack, first run)."""
    database = cosmos_client(settings).create_database_if_not_exists(settings.cosmos_database)
    for name, partition_key in COSMOS_CONTAINERS.items():
        database.create_container_if_not_exists(name, partition_key=PartitionKey(partition_key))
    return database


# An item of the default tenant may predate tenants and carry no tenantId.
TENANT_CLAUSE = "(c.tenantId = @tenant OR (@tenant = 'default' AND NOT IS_DEFINED(c.tenantId)))"


def filtered_query(filters: dict[str, str | None], tenant: str | None = None) -> tuple[str, list[dict[str, object]]]:
    """``SELECT * ... WHERE c.<field> = @<field> AND ... ORDER BY c.id`` for the filters that
    are set, within ``tenant`` when one is given. Field names come from code, never from a
    caller; values are always parameters."""
    clauses: list[str] = [TENANT_CLAUSE] if tenant is not None else []
    parameters: list[dict[str, object]] = [{"name": "@tenant", "value": tenant}] if tenant is not None else []
    for name, value in filters.items():
        if value is not None:
            clauses.append(f"c.{name} = @{name}")
            parameters.append({"name": f"@{name}", "value": value})
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT * FROM c{where} ORDER BY c.id", parameters  # noqa: S608 - see the docstring


def delete_if_present(container: ContainerProxy, item_id: str, partition_key: str) -> None:
    """Deletes an item; one that is already gone is fine (deletes are retried and repeated)."""
    with contextlib.suppress(cosmos_errors.CosmosResourceNotFoundError):
        container.delete_item(item_id, partition_key=partition_key)


def read_or_none(container: ContainerProxy, item_id: str, partition_key: str) -> Item | None:
    try:
        item: Item = container.read_item(item_id, partition_key=partition_key)
    except cosmos_errors.CosmosResourceNotFoundError:
        return None
    return item


def decode_continuation(token: str) -> str:
    """The API's continuation token is Cosmos DB's, base64url-encoded (URL-safe, opaque)."""
    try:
        decoded = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        json.loads(decoded)
    except (ValueError, UnicodeError):
        raise BadRequest("continuationToken is not valid") from None
    return decoded


def encode_continuation(token: str | None) -> str | None:
    return base64.urlsafe_b64encode(token.encode()).decode() if token else None


class NoChange(Exception):
    """Raised by a ``change`` function of ``update_item`` when there is nothing to write."""


def update_item(
    container: ContainerProxy,
    item_id: str,
    partition_key: str,
    change: Callable[[Item | None], Item],
    *,
    attempts: int = 40,
) -> Item | None:
    """Read-modify-write with optimistic concurrency: ``change`` gets the current item (None if
    there is none) and returns the item to store, or raises ``NoChange``. The write is a create
    (when there was none) or a replace conditional on the etag read; a concurrent writer makes
    it read and apply ``change`` again, so no concurrent change is ever lost. Returns what was
    stored (the current item on ``NoChange``)."""
    for attempt in range(attempts):
        current = read_or_none(container, item_id, partition_key)
        try:
            updated = change(None if current is None else dict(current))
        except NoChange:
            return current
        updated = {key: value for key, value in updated.items() if not key.startswith("_")}
        try:
            if current is None:
                stored: Item = container.create_item(updated)
            else:
                stored = container.replace_item(
                    item_id, updated, etag=current["_etag"], match_condition=MatchConditions.IfNotModified
                )
            return stored
        except (cosmos_errors.CosmosAccessConditionFailedError, cosmos_errors.CosmosResourceExistsError):
            # Lost the race: back off a little (jittered, so the losers do not collide again).
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 25)))  # noqa: S311 - jitter, not a secret
    raise Conflict("the record changed concurrently too many times; try again")
