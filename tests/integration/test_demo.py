"""`make demo` end to end: the tour starts the project's Functions host (nothing answers on the
hub's port), sends readings from all three sources and a partner app over HTTP, and every expected
kind lands."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.common import REPO


def test_the_demo_lands_readings_from_every_source_and_the_partner(clean_fhir: str, clean_cosmos, store):
    tour = subprocess.run(
        [sys.executable, str(REPO / "local" / "demo.py")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert tour.returncode == 0, tour.stdout + tour.stderr
    out = tour.stdout
    assert "starting the project's Functions host" in out
    for line in ("medisante  Blood pressure", "healthkit  Heart rate", "withings   Steps", "partner    Body weight"):
        assert line in out, out
    assert "parked     1 readings of medisante" in out
    assert "is not among the HealthKit types the user granted" in out
    assert "consent given (steps unticked), 2 readings sent" in out
    assert out.count("written              Observation/") == 2  # the partner's receipt: both written
    assert out.rstrip().endswith("Every source landed.")
