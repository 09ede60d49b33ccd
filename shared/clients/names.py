"""Names of the queues and blob containers the app uses. Triggers need them as literals, and
infra/ declares the same names (a test checks both sides)."""

RAW_QUEUE = "raw-ingest"
# The Functions host's own convention for the queue of messages that failed every attempt.
RAW_POISON_QUEUE = f"{RAW_QUEUE}-poison"
RAW_CONTAINER = "raw-payloads"
REJECTED_CONTAINER = "rejected-records"
# Password reset messages for the mail sender (built-in directory): the only place a reset
# token exists in clear, never logged.
RESET_OUTBOX_QUEUE = "password-reset-outbox"

WITHINGS_SYNC_QUEUE = "withings-sync"
WITHINGS_SYNC_POISON_QUEUE = f"{WITHINGS_SYNC_QUEUE}-poison"
LOCKS_CONTAINER = "locks"  # blob leases: single-flight token refresh

QUEUES = (RAW_QUEUE, RAW_POISON_QUEUE, RESET_OUTBOX_QUEUE, WITHINGS_SYNC_QUEUE, WITHINGS_SYNC_POISON_QUEUE)
BLOB_CONTAINERS = (RAW_CONTAINER, REJECTED_CONTAINER, LOCKS_CONTAINER)
