"""The durable path from an accepted payload to its processing: queue, claim check, archive,
rejected records, poison queue and replay."""
