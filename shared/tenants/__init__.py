"""Tenants: the medical centres one deployment serves. Every request runs in exactly one, taken
from its credential. A deployment that registers none serves one: ``DEFAULT_TENANT``."""

# Every reading of a deployment without tenants belongs to this one; Observation ids already
# include it, so that registering tenants changes the id of nothing written before.
DEFAULT_TENANT = "default"
TENANT_STATUSES = ("active", "suspended")
