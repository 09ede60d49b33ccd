"""Validation of emitted resources against the fhir.resources R4B models."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation

MODELS: dict[str, Any] = {"Observation": Observation, "Device": Device, "Bundle": Bundle}


def validate(resource: dict[str, Any]) -> None:
    MODELS[resource["resourceType"]].model_validate(resource)
