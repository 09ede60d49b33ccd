"""The backend-for-frontend of the patients' mobile app: identity, sessions, throttling and
the vetting of HealthKit uploads."""
