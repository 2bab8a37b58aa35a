"""The Kafka side: producing admitted envelopes, remembering recent message ids."""
