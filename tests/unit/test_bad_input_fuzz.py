"""Seeded mutations of every fixture (wrong types, absurd numbers, missing fields, control
characters): each conversion ends in readings that serialise, rejected readings with reasons, or
an InvalidPayload naming the problem. Never another exception. The seed is fixed, so a failure
here is reproducible."""

from __future__ import annotations

import copy
import json
import random
from typing import Any
from xml.sax.saxutils import escape

import orjson
import pytest

from shared import conversion
from shared.errors import HubError
from shared.fhir.mapping import batch_bundle
from tests.helpers.common import FHIR_BUNDLE, FIXTURES

ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e308,
    -1e308,
    1e-320,
    10**30,
    2**63,
    -(2**63) - 1,
    "",
    "   ",
    "x",
    "-5",
    "NaN",
    "1e400",
    "\u0000",
    "../../etc/passwd",
    "x" * 300,
    "2026-13-45T99:99:99Z",
    [],
    [1],
    {},
    {"resourceType": "x"},
]
JSON_CASES = [
    ("medisante", "medisante-json", json.loads((FIXTURES / "medisante" / "blood-pressure.json").read_text())),
    ("medisante", "medisante-json", json.loads((FIXTURES / "medisante" / "glucose.json").read_text())),
    ("medisante", "medisante-json", json.loads((FIXTURES / "medisante" / "weight.json").read_text())),
    ("medisante", "fhir-json", FHIR_BUNDLE),
    ("healthkit", "healthkit-json", json.loads((FIXTURES / "healthkit" / "upload.json").read_text())),
    ("withings", "withings-json", json.loads((FIXTURES / "withings" / "getmeas.json").read_text())),
]


def mutated(document: Any, rng: random.Random) -> Any:
    document = copy.deepcopy(document)
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            walk(child, [*path, key])

    walk(document, [])
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice(paths[1:])
        target = document
        try:
            for key in parents:
                target = target[key]
            if isinstance(target, dict) and rng.random() < 0.15:
                del target[last]
            else:
                target[last] = copy.deepcopy(rng.choice(ODD_VALUES))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation changed the shape under this path
    return document


def as_xml(tag: str, node: Any) -> str:
    if isinstance(node, dict):
        inner = "".join(as_xml(key if key[:1].isalpha() else f"k{key}", value) for key, value in node.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(node, list):
        return "".join(as_xml(tag, item) for item in node)
    text = "".join(ch for ch in ("" if node is None else str(node)) if ch >= " ")
    return f"<{tag}>{escape(text)}</{tag}>"


def outcome(source: str, format_name: str, text: str) -> str:
    """'written', 'refused' (InvalidPayload, with its reason) or 'nothing' (every reading rejected)."""
    options = {"userid": "12345"} if source == "withings" else {}
    try:
        parsed, mapped = conversion.convert(source, format_name, text, lambda _: "p1", **options)
    except HubError as exc:
        return "refused" if exc.message.strip() else "refused without a reason"
    assert all(rejected.reason for rejected in parsed.rejected)
    orjson.loads(orjson.dumps(batch_bundle(mapped.resources)))  # what is kept is JSON the writer can send
    return "written" if mapped.resources else "nothing"


@pytest.mark.parametrize(
    ("source", "format_name", "document"),
    JSON_CASES,
    ids=["medisante-bp", "medisante-glucose", "medisante-weight", "fhir-bundle", "healthkit", "withings"],
)
def test_mutated_json_payloads_never_raise(source, format_name, document):
    rng = random.Random(f"{source}/{format_name}")
    outcomes = [outcome(source, format_name, json.dumps(mutated(document, rng))) for _ in range(400)]
    assert "refused without a reason" not in outcomes
    assert outcomes.count("written") > 20  # enough mutations leave good readings to convert


def test_mutated_medisante_xml_payloads_never_raise():
    rng = random.Random("medisante-xml")
    outcomes = [
        outcome("medisante", "medisante-xml", as_xml("payload", mutated(document, rng)))
        for _ in range(200)
        for source, format_name, document in JSON_CASES[:3]
    ]
    assert "refused without a reason" not in outcomes
    assert outcomes.count("written") > 60
