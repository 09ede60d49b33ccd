"""Provider parsers: one provider's payload in, provider-neutral ``Measurement``s out.
Pure functions: no I/O, no Azure, no HTTP, no FHIR client."""
