"""Azure Storage queues and blobs (Azurite locally). Keyless in Azure: the identity-based
``AzureWebJobsStorage__accountName`` setting is used with the app's managed identity."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    QueueClient,
    QueueServiceClient,
)

from shared.clients.identity import credential_for
from shared.settings import Settings

# The Functions host reads queue messages as base64 (host.json messageEncoding default).
_QUEUE_CODEC = {"message_encode_policy": BinaryBase64EncodePolicy(), "message_decode_policy": BinaryBase64DecodePolicy()}


def queue_service(settings: Settings) -> QueueServiceClient:
    if settings.storage_connection_string is not None:
        return QueueServiceClient.from_connection_string(settings.storage_connection_string.get_secret_value())
    url = f"https://{settings.storage_account_name}.queue.core.windows.net"
    return QueueServiceClient(url, credential=credential_for(settings))


def blob_service(settings: Settings) -> BlobServiceClient:
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(settings.storage_connection_string.get_secret_value())
    url = f"https://{settings.storage_account_name}.blob.core.windows.net"
    return BlobServiceClient(url, credential=credential_for(settings))


def queue_client(settings: Settings, name: str) -> QueueClient:
    if settings.storage_connection_string is not None:
        return QueueClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), name, **_QUEUE_CODEC
        )
    url = f"https://{settings.storage_account_name}.queue.core.windows.net"
    return QueueClient(url, name, credential=credential_for(settings), **_QUEUE_CODEC)


def container_client(settings: Settings, name: str) -> ContainerClient:
    return blob_service(settings).get_container_client(name)
