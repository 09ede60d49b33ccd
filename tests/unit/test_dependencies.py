"""The runtime dependencies: locked with every transitive pin and its hashes, and limited to what
the app imports."""

from __future__ import annotations

import re

from tests.helpers.common import REPO


def _requirements(text: str) -> list[str]:
    """One entry per requirement: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_runtime_requirement_is_pinned_with_hashes():
    entries = _requirements((REPO / "requirements.txt").read_text())
    assert len(entries) > 19  # the direct dependencies and what they pull in
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9_.-]+==[^ ]+ ", entry), entry
        assert "--hash=sha256:" in entry, entry


def test_direct_dependencies_are_what_the_app_imports():
    direct = {
        re.split(r"[=\[]", line)[0].lower()
        for line in _requirements((REPO / "requirements.in").read_text())
    }
    assert "cryptography" not in direct  # only local/ and tests import it; PyJWT[crypto] brings it
    imported = set()
    for path in (REPO / "shared").rglob("*.py"):
        imported |= set(re.findall(r"^\s*(?:from|import) (\w+)", path.read_text(), flags=re.M))
    distribution = {"jwt": "pyjwt", "fhir": "fhir.resources", "azure": "azure-functions"}
    third_party = {distribution.get(name, name) for name in imported} & {
        "pyjwt", "fhir.resources", "azure-functions", "pydantic", "pydantic_settings", "requests", "tenacity",
        "defusedxml", "lxml", "orjson", "msgspec", "authlib", "cryptography",
    }  # fmt: skip
    assert "cryptography" not in third_party
    locked = {line.split("==")[0].lower() for line in _requirements((REPO / "requirements.txt").read_text())}
    assert {name.replace("_", "-").replace(".", "-") for name in third_party} <= locked
