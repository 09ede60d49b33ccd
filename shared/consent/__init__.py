"""Consent records: who may send which kinds of readings for which patient."""
