"""Shared-secret checks. Keys are stored only as SHA-256 digests and compared in constant
time against every configured digest (two at once during a rotation)."""

from __future__ import annotations

import hashlib
import hmac

from shared.errors import ConfigurationError, Unauthorized


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_digests(setting: str) -> tuple[str, ...]:
    digests = tuple(d.strip().lower() for d in setting.split(",") if d.strip())
    for digest in digests:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigurationError("an API key hash setting holds something that is not a SHA-256 hex digest")
    return digests


def require_api_key(presented: str | None, digests: tuple[str, ...], header: str) -> None:
    if not digests:
        raise ConfigurationError(f"no API key is configured for this endpoint ({header})")
    if not presented:
        raise Unauthorized(f"the {header} header is missing", challenge=f'ApiKey header="{header}"')
    candidate = key_digest(presented)
    matched = False
    for digest in digests:  # no early exit: the time taken does not depend on which key matched
        matched |= hmac.compare_digest(candidate, digest)
    if not matched:
        raise Unauthorized(f"the {header} header does not hold a valid key", challenge=f'ApiKey header="{header}"')
