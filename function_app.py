"""The Azure Functions app: one blueprint per area, nothing else."""

import gc

import azure.functions as func

from shared.api import (
    authorize,
    bff,
    consents,
    devices,
    health,
    healthkit,
    medisante,
    oauth,
    openapi,
    partner_api,
    partners,
    pipeline,
    platform,
    withings,
)
from shared.logs import configure_logging

configure_logging()  # before any function runs: the SDKs' URL logging is held back
# A FHIR batch makes tens of thousands of short-lived objects (the mapped resources, the batch
# answer); at CPython's default of a collection every 700 allocations they set off full
# collections of the whole heap every few batches, ~10 % of a HealthKit record's CPU.
gc.set_threshold(10_000, 10, 10)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(health.bp)
app.register_functions(medisante.bp)
app.register_functions(pipeline.bp)
app.register_functions(devices.bp)
app.register_functions(consents.bp)
app.register_functions(openapi.bp)
app.register_functions(bff.bp)
app.register_functions(healthkit.bp)
app.register_functions(withings.bp)
app.register_functions(platform.bp)
app.register_functions(partners.bp)
app.register_functions(oauth.bp)
app.register_functions(authorize.bp)
app.register_functions(partner_api.bp)
