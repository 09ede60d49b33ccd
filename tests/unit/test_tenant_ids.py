"""Ids that carry the tenant: the default tenant's are those from before tenants; any other's
are distinct, and a consent id says which tenant, source and patient it is."""

from __future__ import annotations

import pytest

from shared.consent.models import consent_id, parse_consent_id
from shared.devices.types import registry_id
from shared.tenants import DEFAULT_TENANT


@pytest.mark.parametrize("patient", ["anna", "p.1.2", "0f3c-9"])
@pytest.mark.parametrize("tenant", [DEFAULT_TENANT, "clinic-a", "b2"])
def test_consent_ids_round_trip_and_keep_the_default_tenants_shape(tenant, patient):
    record_id = consent_id("withings", patient, tenant)
    assert parse_consent_id(record_id) == (tenant, "withings", patient)
    if tenant == DEFAULT_TENANT:
        assert record_id == f"withings.{patient}"  # the ids written before tenants existed


def test_the_same_device_in_two_tenants_has_two_registry_ids_and_the_default_keeps_its_own():
    ids = {tenant: registry_id("medisante", "358000000000047", tenant) for tenant in (DEFAULT_TENANT, "a", "b")}
    assert len(set(ids.values())) == 3
    assert ids[DEFAULT_TENANT] == registry_id("medisante", "358000000000047")
