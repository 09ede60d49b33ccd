"""Clients of the backing services, built from settings once per worker process."""
