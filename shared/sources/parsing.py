"""Tolerant readers for the loosely typed values providers send."""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring as parse_xml_safely

from shared.errors import InvalidPayload

EPOCH_LIMIT_S = 32503680000  # year 3000
# No payload the hub reads is nested anywhere near this deep; past it, a document is an attack
# on whatever walks it recursively (the FHIR models, our own readers).
MAX_XML_DEPTH = 64
_XML_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (DTDForbidden, "a document type declaration (DTD)"),
    (EntitiesForbidden, "an entity declaration"),
    (ExternalReferenceForbidden, "a reference to an external resource"),
)


def load_json(text: str | bytes) -> Any:
    """orjson: several times faster than ``json``, and strict (no NaN, no integers past 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def read_xml(text: str, max_depth: int = MAX_XML_DEPTH) -> Element:
    """An XML document through ``defusedxml`` (no DTDs, entities or external references),
    nested at most ``max_depth`` elements deep (checked without recursion)."""
    try:
        root: Element = parse_xml_safely(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        found = next((text for kind, text in _XML_REFUSALS if isinstance(exc, kind)), "a construct that is not allowed")
        raise InvalidPayload(f"XML refused: it holds {found}; DTDs and entities are not accepted") from None
    except ParseError as exc:
        line, column = exc.position
        raise InvalidPayload(f"malformed XML at line {line} column {column}") from None
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > max_depth:
            raise InvalidPayload(f"XML is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in element)
    return root


def parse_instant(value: Any, field: str) -> dt.datetime:
    """RFC 3339 (any fraction length, ``Z`` or an offset) or epoch seconds, as a number or a
    string. The result keeps the offset the source gave; a naive time is refused."""
    if type(value) is int and 0 < value < EPOCH_LIMIT_S:  # the common case, first
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, bool):
        raise InvalidPayload(f"{field} must be a date-time, not a boolean")
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        seconds = float(value)
        if not math.isfinite(seconds) or not 0 < seconds < EPOCH_LIMIT_S:
            raise InvalidPayload(f"{field} is not a plausible epoch time")
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"{field} is missing or not a date-time")
    text = value.strip()
    if text.endswith("z"):
        text = text[:-1] + "Z"
    try:  # Python 3.11+ reads "Z" and cuts fractions past microseconds
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayload(f"{field} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidPayload(f"{field} has no UTC offset")
    return parsed


def epoch_in_zone(seconds: Any, zone: ZoneInfo | None, field: str) -> dt.datetime:
    if type(seconds) is int and 0 < seconds < EPOCH_LIMIT_S:  # the common case, first
        return dt.datetime.fromtimestamp(seconds, tz=zone or dt.UTC)
    instant = parse_instant(seconds, field)
    return instant.astimezone(zone) if zone else instant


# IANA zone names: "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC".
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]{0,30}(?:/[A-Za-z0-9_+\-]{1,30}){0,2}")


@functools.lru_cache(maxsize=256)
def zone_info(name: str | None) -> ZoneInfo | None:
    """The zone a source names, or None (unknown or not a zone name: the offset it gave stays)."""
    if not name or not _ZONE_NAME.fullmatch(name):  # ZoneInfo reads the name as a file path
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def parse_number(value: Any, field: str) -> float:
    if type(value) is int:  # the common case, first (bool is a subclass of int, not int)
        return float(value)
    if isinstance(value, bool):
        raise InvalidPayload(f"{field} must be a number, not a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise InvalidPayload(f"{field} is not a number") from None
    else:
        raise InvalidPayload(f"{field} is missing or not a number")
    if not math.isfinite(number):
        raise InvalidPayload(f"{field} is not a finite number")
    return number


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    return None


def require_mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayload(f"{field} is missing or not an object")
    return value


def optional_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def require_text(value: Any, field: str) -> str:
    text = optional_text(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None:
        raise InvalidPayload(f"{field} is missing or empty")
    return text
