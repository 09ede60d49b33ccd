"""The partner platform: third-party apps and browserless gateways that send readings on a
patient's (or a clinician's) consent, scope by scope, through the hub's own OAuth 2.0
authorization server. This package holds its domain: the application registry and scopes."""
