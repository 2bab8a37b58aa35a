"""Integration events: the envelope, topics, the outbox and idempotent consumers."""
