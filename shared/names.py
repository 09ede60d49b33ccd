"""Every name the app gives a queue, a blob container or a Cosmos DB container. Triggers need
them as literals, and infra/ declares the same names (a test checks both sides)."""

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

# Cosmos DB containers, each with its partition key path.
DEVICES_CONTAINER = "devices"
CONSENTS_CONTAINER = "consents"
AUDIT_CONTAINER = "consent-audit"
PARKED_CONTAINER = "parked-readings"
DELETION_LOG_CONTAINER = "deletion-log"
USERS_CONTAINER = "users"
SESSIONS_CONTAINER = "sessions"
THROTTLE_CONTAINER = "throttle"
WITHINGS_CONTAINER = "withings"
CURSORS_CONTAINER = "sync-cursors"
TENANTS_CONTAINER = "tenants"
HELD_CONTAINER = "held-records"  # raw records of a suspended tenant, kept until it is reactivated
MEMBERSHIPS_CONTAINER = "memberships"  # admin principal or group → tenant
PARTNER_APPS_CONTAINER = "partner-apps"  # the partner platform's registered applications
PARTNER_GRANTS_CONTAINER = "partner-grants"  # their codes and tokens, by the digest of the value
PARTNER_RECEIPTS_CONTAINER = "partner-receipts"  # what became of each reading a partner sent

COSMOS_CONTAINERS: dict[str, str] = {
    DEVICES_CONTAINER: "/id",
    CONSENTS_CONTAINER: "/patientId",
    AUDIT_CONTAINER: "/receiptId",
    PARKED_CONTAINER: "/receiptId",
    DELETION_LOG_CONTAINER: "/receiptId",
    USERS_CONTAINER: "/id",
    SESSIONS_CONTAINER: "/id",
    THROTTLE_CONTAINER: "/id",
    WITHINGS_CONTAINER: "/id",
    CURSORS_CONTAINER: "/id",
    TENANTS_CONTAINER: "/id",
    HELD_CONTAINER: "/tenantId",
    MEMBERSHIPS_CONTAINER: "/principal",
    PARTNER_APPS_CONTAINER: "/id",
    PARTNER_GRANTS_CONTAINER: "/id",
    PARTNER_RECEIPTS_CONTAINER: "/id",
}
