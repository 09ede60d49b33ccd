"""Logging of the whole app, set in one place: no line at INFO or above may carry a secret, a
health value or a person's identifier.

The Azure SDKs' HTTP logging policy writes every request's URL at INFO, and those URLs name
Cosmos DB items (patient ids, user names), Key Vault secrets (``withings-<userid>``) and blob
names: the SDK loggers are held at WARNING, where they report failures without URLs. urllib3
(used by requests) is held there too."""

from __future__ import annotations

import logging

QUIET_LOGGERS = (
    "azure",  # azure.core.pipeline.policies.http_logging_policy, azure.cosmos, azure.identity, ...
    "urllib3",
    "authlib",
)


def configure_logging() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
