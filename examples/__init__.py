"""Examples of clients of the hub."""
