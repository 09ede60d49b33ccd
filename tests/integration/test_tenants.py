"""The tenant registry: operators register, list, suspend and reactivate medical centres (CLI),
on the real Cosmos DB server; the default tenant is the deployment itself."""

from __future__ import annotations

import functools
import json

import pytest

from shared import cli
from shared.composition import AppContext
from shared.errors import BadRequest, Conflict, NotFound
from shared.tenants import DEFAULT_TENANT
from tests.helpers.common import run_together

DIGEST = "a" * 64


@pytest.fixture
def tenants(clean_cosmos: AppContext):
    return clean_cosmos.tenants


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_operators_create_list_suspend_and_reactivate_tenants(tenants, capsys):
    code, [created], _ = run_cli(
        capsys, "tenant", "create", "--id", "clinic-a", "--name", "Clinic A", "--lookback-days", "3",
        "--medisante-key-hash", DIGEST, "--fhir-url", "https://fhir.clinic-a.example/fhir",
    )  # fmt: skip
    assert code == 0
    assert (created["id"], created["status"], created["fhirUrl"]) == (
        "clinic-a", "active", "https://fhir.clinic-a.example/fhir"
    )  # fmt: skip
    assert created["settings"] == {"attributionLookbackDays": 3, "medisanteApiKeyHashes": [DIGEST]}
    assert run_cli(capsys, "tenant", "create", "--id", "clinic-b", "--name", "Clinic B")[0] == 0
    code, listed, _ = run_cli(capsys, "tenant", "list")
    assert [t["id"] for t in listed] == ["clinic-a", "clinic-b"]
    code, [suspended], _ = run_cli(capsys, "tenant", "suspend", "--id", "clinic-a")
    assert suspended["status"] == "suspended"
    assert tenants.get("clinic-a").status == "suspended"
    assert tenants.get("clinic-b").active  # the other is untouched
    code, [again], _ = run_cli(capsys, "tenant", "activate", "--id", "clinic-a")
    assert again["status"] == "active"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--id", "Clinic A", "--name", "x"], "tenant id"),
        (["--id=-a", "--name", "x"], "tenant id"),
        (["--id", "clinic-c", "--name", "x", "--medisante-key-hash", "the-key-itself"], "never a key"),
        (["--id", DEFAULT_TENANT, "--name", "x"], "deployment's own tenant"),
    ],
)
def test_an_invalid_tenant_exits_2_naming_the_problem(tenants, capsys, args, words):
    code, printed, err = run_cli(capsys, "tenant", "create", *args)
    assert (code, printed) == (2, [])
    assert words in err
    assert "Error" not in err  # no library exception name


def test_unknown_tenants_are_not_found_and_the_default_cannot_be_suspended(tenants):
    with pytest.raises(NotFound):
        tenants.get("nobody")
    with pytest.raises(NotFound):
        tenants.set_status("nobody", "suspended")
    with pytest.raises(Conflict):
        tenants.set_status(DEFAULT_TENANT, "suspended")
    with pytest.raises(BadRequest):
        tenants.create("x", "too short an id")


def test_of_two_concurrent_registrations_of_one_id_exactly_one_wins(tenants):
    def create(name: str) -> str:
        try:
            tenants.create("clinic-race", name)
        except Conflict:
            return "conflict"
        return "created"

    outcomes = run_together([functools.partial(create, name) for name in ("first", "second", "third")])
    assert sorted(outcomes) == ["conflict", "conflict", "created"]
    assert tenants.get("clinic-race").name in ("first", "second", "third")


def test_concurrent_suspensions_and_reactivations_leave_one_consistent_status(tenants):
    tenants.create("clinic-flip", "Flip")
    statuses = ["suspended", "active"] * 4
    run_together([functools.partial(tenants.set_status, "clinic-flip", status) for status in statuses])
    assert tenants.get("clinic-flip").status in ("suspended", "active")
    assert len(tenants.list()) == 1


def test_a_reading_of_the_default_tenant_lands_tagged_with_it(clean_cosmos, clean_fhir, store, admin_token):
    from tests.helpers.clinic import FIXTURE_DEVICES, assign, deliver, fixture_text, process
    from tests.helpers.stack import put_patient, search

    put_patient(clean_fhir, "anna")
    imei, device_type = FIXTURE_DEVICES["weight"]
    assert assign(admin_token, imei, device_type, "anna")[0] == 200
    deliver(fixture_text("weight"))
    process(store)
    tagged = search(clean_fhir, "Observation", _tag=f"urn:iomt-hub:tenant|{DEFAULT_TENANT}")
    assert tagged
    assert {o["subject"]["reference"] for o in tagged} == {"Patient/anna"}
    assert search(clean_fhir, "Observation", _tag="urn:iomt-hub:tenant|clinic-a") == []
    [device] = search(clean_fhir, "Device", _tag=f"urn:iomt-hub:tenant|{DEFAULT_TENANT}")
    assert device["patient"] == {"reference": "Patient/anna"}
