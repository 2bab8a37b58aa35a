"""Events the registration service publishes (through the transactional outbox)."""
