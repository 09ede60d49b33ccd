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
def test_every_bundle_the_process_prints_validates_against_r4(source, path):
    result = run_cli("convert", "--source", source, "--patient", "cli-p1", str(path))
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)["entry"]  # their shape: tests/unit/test_cli.py
    assert entries
    for entry in entries:
        validate(entry["resource"])


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("notify-appli4.form", "reads the measure data of user 12345 changed between 1780039600 and 1780039700"),
        ("notify-unlink.form", "action unlink"),
    ],
)
def test_the_empty_batch_of_a_notification_validates_and_the_note_is_on_stderr(name, words):
    result = run_cli("convert", "--source", "withings", str(FIXTURES / "withings" / name))
    assert result.returncode == 0, result.stderr
    validate(json.loads(result.stdout))  # the empty batch is valid R4
    assert words in result.stderr
