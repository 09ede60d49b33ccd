"""The base of every typed record the hub stores in Cosmos DB and answers with: pydantic models
whose field names are Python's and whose stored (and answered) names are the camelCase aliases.
Cosmos system properties (``_etag``, ``_ts``...) are dropped on reading."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from shared.clock import instant_text

# An instant, stored and answered as RFC 3339 in UTC with a ``Z``.
Instant = Annotated[
    dt.datetime,
    PlainSerializer(instant_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Record(BaseModel):
    # Answers always carry every field (null where empty): their schema says so.
    model_config = ConfigDict(
        populate_by_name=True, extra="ignore", json_schema_serialization_defaults_required=True
    )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Self:
        return cls.model_validate(item)

    def to_item(self) -> dict[str, Any]:
        """The stored form: aliases, JSON types."""
        return self.model_dump(by_alias=True, mode="json")

    def public(self) -> dict[str, Any]:
        """The API's view (the stored form unless a record hides something)."""
        return self.to_item()
