"""The Withings connector: OAuth consent, tokens in Key Vault, notifications, incremental sync
and the poller, within Withings' application-wide rate limit."""
