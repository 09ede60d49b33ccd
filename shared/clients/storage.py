"""Azure Storage queues and blobs (Azurite locally). Keyless in Azure: the identity-based
``AzureWebJobsStorage__accountName`` setting is used with the app's managed identity."""

from __future__ import annotations

from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    QueueClient,
)

from shared.clients.identity import credential_for
from shared.settings import Settings

# The Functions host reads queue messages as base64 (host.json messageEncoding default).
_ENCODE = BinaryBase64EncodePolicy()
_DECODE = BinaryBase64DecodePolicy()


def blob_service(settings: Settings) -> BlobServiceClient:
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(settings.storage_connection_string.get_secret_value())
    url = f"https://{settings.storage_account_name}.blob.core.windows.net"
    return BlobServiceClient(url, credential=credential_for(settings))


def queue_client(settings: Settings, name: str) -> QueueClient:
    if settings.storage_connection_string is not None:
        return QueueClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(),
            name,
            message_encode_policy=_ENCODE,
            message_decode_policy=_DECODE,
        )
    url = f"https://{settings.storage_account_name}.queue.core.windows.net"
    return QueueClient(
        url, name, credential=credential_for(settings), message_encode_policy=_ENCODE, message_decode_policy=_DECODE
    )


def container_client(settings: Settings, name: str) -> ContainerClient:
    return blob_service(settings).get_container_client(name)
