"""Notifications: subscriptions, matching of events, instant alerts and digests."""
