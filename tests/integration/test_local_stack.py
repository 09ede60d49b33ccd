"""The local stand-ins work with the real Azure SDK clients and answer like the services."""

from __future__ import annotations

import uuid

import pytest
import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.cosmos import PartitionKey
from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.clients.cosmos import cosmos_client
from shared.composition import AppContext
from shared.fhir.client import FhirClient


def test_key_vault_stand_in_with_the_real_secret_client(context: AppContext):
    client = context.secrets
    name = f"test-{uuid.uuid4().hex[:12]}"
    first = client.set_secret(name, "first-value", tags={"expiresAt": "1"})
    second = client.set_secret(name, "second-value")
    assert client.get_secret(name).value == "second-value"
    assert client.get_secret(name, first.properties.version).value == "first-value"
    assert first.properties.tags == {"expiresAt": "1"}
    versions = {p.version for p in client.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert name in {p.name for p in client.list_properties_of_secrets()}
    deleted = client.begin_delete_secret(name).result()
    assert deleted.name == name
    with pytest.raises(ResourceNotFoundError):
        client.get_secret(name)
    with pytest.raises(ResourceExistsError):  # a soft-deleted name cannot be reused, as in Azure
        client.set_secret(name, "again")
    client.purge_deleted_secret(name)
    assert client.set_secret(name, "after-purge").value == "after-purge"


def test_cosmos_server_with_the_real_cosmos_client(context: AppContext):
    database = cosmos_client(context.settings).create_database_if_not_exists("stack-test")
    container = database.create_container_if_not_exists("items", partition_key=PartitionKey("/pk"))
    item_id = uuid.uuid4().hex
    container.upsert_item({"id": item_id, "pk": "a", "n": 1})
    assert container.read_item(item_id, "a")["n"] == 1
    with pytest.raises(CosmosResourceNotFoundError):  # patched: 404, not 500
        container.read_item("missing-" + item_id, "a")
    found = list(
        container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.id = @id",
            parameters=[{"name": "@pk", "value": "a"}, {"name": "@id", "value": item_id}],
            partition_key="a",
        )
    )
    assert [f["id"] for f in found] == [item_id]


def test_fhir_server_answers_a_batch_of_puts_and_searches(clean_fhir: str):
    client = FhirClient(clean_fhir)
    patient = {"resourceType": "Patient", "id": "stack-p1", "identifier": [{"system": "urn:test", "value": "p1"}]}
    observations = [
        {
            "resourceType": "Observation",
            "id": f"stack-o{i}",
            "status": "final",
            "identifier": [{"system": "urn:test:obs", "value": str(i)}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/stack-p1"},
            "effectiveDateTime": f"2026-05-1{i}T10:00:00+02:00",
            "valueQuantity": {"value": 60 + i, "system": "http://unitsofmeasure.org", "code": "/min", "unit": "/min"},
        }
        for i in range(3)
    ]
    report = client.write([patient, *observations])
    assert report.written == 4
    assert client.read("Observation", "stack-o1")["valueQuantity"]["value"] == 61
    assert len(client.search("Observation", {"identifier": "urn:test:obs|2"})) == 1
    assert len(client.search("Observation", {"subject": "Patient/stack-p1", "code": "http://loinc.org|8867-4"})) == 3
    assert len(client.search("Observation", {"date": "ge2026-05-11T00:00:00Z"})) == 2
    assert len(client.search("Patient", {"identifier": "urn:test|p1"})) == 1
    assert requests.get(f"{clean_fhir}/Observation/nope", timeout=5).status_code == 404
