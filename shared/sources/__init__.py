"""One package per source: its parsers, and for a connector its client, tokens, sync and
notifications. Parsers are pure: one payload in, provider-neutral ``Measurement``s out."""
