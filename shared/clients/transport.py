"""The HTTP transport of every SDK client and of our own REST clients.

``requests`` re-reads the proxy settings from the environment on every request (it walks the
whole environment each time: a large share of a worker's CPU per record). The proxies are read
once, when a client is built, and given to it explicitly: a proxy configured through
HTTP(S)_PROXY / NO_PROXY is still used, and the environment is not scanned again per call."""

from __future__ import annotations

import urllib.request
from typing import Any

import requests


def environment_proxies() -> dict[str, str]:
    return {scheme: url for scheme, url in urllib.request.getproxies().items() if scheme in ("http", "https", "no")}


def sdk_options(**connection: Any) -> dict[str, Any]:
    """Keyword arguments for an Azure SDK client: a requests transport that does not consult
    the environment per request (``connection``: its settings, e.g. ``connection_verify``,
    ``connection_timeout``, ``read_timeout``), and the proxies found once."""
    from azure.core.pipeline.transport import RequestsTransport

    options: dict[str, Any] = {"transport": RequestsTransport(use_env_settings=False, **connection)}
    proxies = {k: v for k, v in environment_proxies().items() if k != "no"}
    if proxies:
        options["proxies"] = proxies
    return options


def http_session() -> requests.Session:
    """A requests session for our own REST clients (FHIR, Withings, OIDC), on the same terms."""
    session = requests.Session()
    session.trust_env = False
    session.proxies.update({k: v for k, v in environment_proxies().items() if k != "no"})
    return session
