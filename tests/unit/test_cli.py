"""The dry-run ``convert`` command: a stable interface others script against (in-process, through
``main(argv)``; the whole process and the profiles: tests/integration/test_cli_process.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from shared import cli
from tests.helpers.common import FIXTURES


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """The CLI in-process, through ``main(argv)``, as a script would see it."""

    def run(*args: str) -> Outcome:
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.mark.parametrize(
    ("source", "path"),
    [("medisante", p) for p in sorted((FIXTURES / "medisante").glob("*.json"))]
    + [("healthkit", FIXTURES / "healthkit" / "upload.json"), ("withings", FIXTURES / "withings" / "getmeas.json")],
)
def test_convert_prints_a_batch_bundle_of_puts_for_every_fixture(run_cli, source, path):
    result = run_cli("convert", "--source", source, "--patient", "cli-p1", str(path))
    assert result.returncode == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "batch")
    assert bundle["entry"]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        if resource["resourceType"] == "Observation":
            assert resource["subject"] == {"reference": "Patient/cli-p1"}


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("notify-appli4.form", "reads the measure data of user 12345 changed between 1780039600 and 1780039700"),
        ("notify-unlink.form", "action unlink"),
    ],
)
def test_convert_withings_notification_writes_nothing_and_says_what_the_hub_does(run_cli, name, words):
    result = run_cli("convert", "--source", "withings", str(FIXTURES / "withings" / name))
    assert result.returncode == 0, result.stderr
    bundle = json.loads(result.stdout)
    assert bundle == {"resourceType": "Bundle", "type": "batch"}  # no entry: nothing is written from it
    [note] = result.stderr.strip().splitlines()
    assert note.startswith("note: ")
    assert words in note


def test_convert_medisante_xml_format(run_cli, tmp_path):
    document = json.loads((FIXTURES / "medisante" / "weight.json").read_text())
    xml = (
        "<payload><metadata><correlationId>{}</correlationId><measurementType>BodyWeightComposition</measurementType>"
        "</metadata><device><IMEI>866000000000123</IMEI></device><measurements><bodyWeight><value>81.4</value>"
        "<unit>kg</unit></bodyWeight><timestamp>2026-03-01T08:02:05+01:00</timestamp></measurements></payload>"
    ).format(document["metadata"]["correlationId"])
    path = tmp_path / "weight.xml"
    path.write_text(xml)
    result = run_cli("convert", "--source", "medisante", "--format", "medisante-xml", str(path))
    assert result.returncode == 0, result.stderr
    [observation] = [
        e["resource"] for e in json.loads(result.stdout)["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert observation["valueQuantity"]["value"] == 81.4


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        ('{"metadata": ', ["--source", "medisante"], "malformed JSON"),
        ("<a>", ["--source", "medisante", "--format", "medisante-xml"], "malformed XML"),
        ("{}", ["--source", "medisante", "--format", "csv"], "unknown format"),
        ('{"samples": "x"}', ["--source", "healthkit"], "arrays"),
        ('{"status": 601, "body": {}}', ["--source", "withings"], "status 601"),
        ("userid=abc&appli=4&startdate=1&enddate=2", ["--source", "withings"], "userid is not a positive integer"),
        ("userid=1&appli=4", ["--source", "withings"], "startdate is missing"),
        ("userid=1&appli=999", ["--source", "withings"], "not a Withings notification category"),
    ],
)
def test_invalid_input_exits_2_with_one_line_naming_the_problem(run_cli, tmp_path, content, args, words):
    path = tmp_path / "payload"
    path.write_text(content)
    result = run_cli("convert", *args, str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert words in lines[0]


def test_missing_file_exits_2(run_cli):
    result = run_cli("convert", "--source", "medisante", "/nonexistent/file.json")
    assert result.returncode == 2
    assert "cannot read" in result.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_and_nothing_otherwise():
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = cli.Progress("replay", stream)
        progress.stage("starting")
        for receipt in ("r1", "r2", "r3"):
            progress.step(receipt)
        progress.done()
    assert pipe.getvalue() == ""
    shown = terminal.getvalue()
    assert "replay: starting" in shown
    assert shown.endswith("replay: done (3)\n")


def test_convert_says_nothing_on_stderr_when_it_is_not_a_terminal(run_cli):
    result = run_cli("convert", "--source", "medisante", str(FIXTURES / "medisante" / "weight.json"))
    assert result.returncode == 0
    assert result.stderr == ""
    assert json.loads(result.stdout)["type"] == "batch"
