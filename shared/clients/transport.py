"""The HTTP transport of every SDK client and of our own REST clients.

``requests`` re-reads the proxy settings from the environment on every request (it walks the
whole environment each time: a large share of a worker's CPU per record). The proxies are read
once, when a client is built, and given to it explicitly: a proxy configured through
HTTP(S)_PROXY / NO_PROXY is still used, and the environment is not scanned again per call.

Each SDK client keeps up to ``POOL_SIZE`` connections per host: the host runs up to 48
invocations at once, and with requests' default of 10 every call beyond the tenth opened a new
connection and threw it away afterwards (a TCP connect per archive write)."""

from __future__ import annotations

import urllib.request
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

POOL_SIZE = 64


def environment_proxies() -> dict[str, str]:
    return {scheme: url for scheme, url in urllib.request.getproxies().items() if scheme in ("http", "https", "no")}


def sdk_options(**connection: Any) -> dict[str, Any]:
    """Keyword arguments for an Azure SDK client: a requests transport that does not consult
    the environment per request (``connection``: its settings, e.g. ``connection_verify``,
    ``connection_timeout``, ``read_timeout``), and the proxies found once."""
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_maxsize=POOL_SIZE, max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    transport = RequestsTransport(session=session, session_owner=True, use_env_settings=False, **connection)
    options: dict[str, Any] = {"transport": transport}
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
