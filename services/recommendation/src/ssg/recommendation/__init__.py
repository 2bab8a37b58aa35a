"""Recommendation service: interest profiles, recommendations with reasons, matchmaking."""
