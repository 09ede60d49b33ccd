"""Apple HealthKit uploads from the patients' mobile app, through the BFF."""
