"""Validation of emitted resources: the fhir.resources R4B models (structure), and Medplum's
validator with the project's profile checker (``local/fhir-validate.mjs``): the R4 base
definitions and every vital-signs profile a resource claims (slices, fixed and pattern values,
FHIRPath invariants)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation

MODELS: dict[str, Any] = {"Observation": Observation, "Device": Device, "Bundle": Bundle}
VALIDATOR = Path(__file__).resolve().parents[2] / "local" / "fhir-validate.mjs"


def validate(resource: dict[str, Any]) -> None:
    MODELS[resource["resourceType"]].model_validate(resource)


def profile_issues(resources: list[dict[str, Any]]) -> list[list[str]]:
    """For each resource, the errors against R4 and its claimed profiles (empty: valid)."""
    run = subprocess.run(
        ["node", str(VALIDATOR)],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=VALIDATOR.parent,
    )
    results = json.loads(run.stdout)
    return [
        [f"{issue['against'].rsplit('/', 1)[-1]}: {issue['details']['text']}" for issue in result["issues"]]
        for result in results
    ]
