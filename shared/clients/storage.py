"""Azure Storage queues and blobs (Azurite locally). Keyless in Azure: the identity-based
``AzureWebJobsStorage__accountName`` setting is used with the app's managed identity."""

from __future__ import annotations

from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.blob import LinearRetry as BlobLinearRetry
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    QueueClient,
)
from azure.storage.queue import LinearRetry as QueueLinearRetry

from shared.clients.identity import credential_for
from shared.clients.transport import sdk_options
from shared.settings import Settings

# The Functions host reads queue messages as base64 (host.json messageEncoding default).
_ENCODE = BinaryBase64EncodePolicy()
_DECODE = BinaryBase64DecodePolicy()


def _budget(settings: Settings, fast: bool, retry: type[BlobLinearRetry | QueueLinearRetry]) -> dict[str, Any]:
    """Ingress (``fast``) answers a sender that will re-deliver: one quick retry within
    ``INGRESS_STORAGE_TIMEOUT_S``, then 503. Workers keep the SDK's long retry budget."""
    if not fast:
        return sdk_options()
    timeout = settings.ingress_storage_timeout_s
    return {
        **sdk_options(connection_timeout=timeout / 2, read_timeout=timeout / 2),
        "retry_policy": retry(backoff=0, random_jitter_range=0, retry_total=1),
    }


def blob_service(settings: Settings, *, fast: bool = False) -> BlobServiceClient:
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), **_budget(settings, fast, BlobLinearRetry)
        )
    url = f"https://{settings.storage_account_name}.blob.core.windows.net"
    return BlobServiceClient(url, credential=credential_for(settings), **_budget(settings, fast, BlobLinearRetry))


def queue_client(settings: Settings, name: str, *, fast: bool = False) -> QueueClient:
    codec = {
        "message_encode_policy": _ENCODE,
        "message_decode_policy": _DECODE,
        **_budget(settings, fast, QueueLinearRetry),
    }
    if settings.storage_connection_string is not None:
        return QueueClient.from_connection_string(settings.storage_connection_string.get_secret_value(), name, **codec)
    url = f"https://{settings.storage_account_name}.queue.core.windows.net"
    return QueueClient(url, name, credential=credential_for(settings), **codec)


def container_client(settings: Settings, name: str, *, fast: bool = False) -> ContainerClient:
    return blob_service(settings, fast=fast).get_container_client(name)
