"""Consent records: who may send which kinds of readings for which patient."""

# A record's statuses (``models.ConsentStatus``), importable without pydantic (the HTTP layer's filters).
CONSENT_STATUSES = ("active", "revoked", "needs-reconsent")
