"""The ``convert`` command as a whole process: every bundle it prints validates against R4."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.common import FIXTURES, REPO
from tests.helpers.fhir_validation import validate


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    ("source", "path"),
    [("medisante", p) for p in sorted((FIXTURES / "medisante").glob("*.json"))]
    + [("healthkit", FIXTURES / "healthkit" / "upload.json"), ("withings", FIXTURES / "withings" / "getmeas.json")],
)
def test_convert_prints_a_batch_bundle_of_puts_for_every_fixture(source, path):
    result = run_cli("convert", "--source", source, "--patient", "cli-p1", str(path))
    assert result.returncode == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "batch")
    assert bundle["entry"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        validate(resource)
        if resource["resourceType"] == "Observation":
            assert resource["subject"] == {"reference": "Patient/cli-p1"}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("notify-appli4.form", "reads the measure data of user 12345 changed between 1780039600 and 1780039700"),
        ("notify-unlink.form", "action unlink"),
    ],
)
def test_convert_withings_notification_writes_nothing_and_says_what_the_hub_does(name, words):
    result = run_cli("convert", "--source", "withings", str(FIXTURES / "withings" / name))
    assert result.returncode == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert bundle == {"resourceType": "Bundle", "type": "batch"}  # no entry: nothing is written from it
    validate(bundle)
    [note] = result.stderr.strip().splitlines()
    assert note.startswith("note: ")
    assert words in note
