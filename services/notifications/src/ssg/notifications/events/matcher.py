"""The matcher: each catalog, registration or recommendation event that is news for someone is matched against
the subscriptions found through the in-memory index (kept current from the subscriptions'
change stream, caught up before each event); its deliveries and digest entries are
written in the consumer's transaction, together with the processed-event mark, so an event
consumed twice changes nothing twice (and delivery ids are derived, so not even a replay of
the topic duplicates a delivery)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from prometheus_client import Counter, Histogram

from ssg.notifications.domain.fanout import SourceEvent, fan_out_audiences
from ssg.notifications.events.deadlines import FundingReminders
from ssg.notifications.events.items import SOURCES, ItemSource
from ssg.notifications.store.feed import IndexFeed
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.clock import utc_now
from ssg.platform.events.consumer import Event, HandlerRegistry

MATCHED = Counter(
    "ssg_notifications_matched_total",
    "Subscriptions an event reached, by event type and frequency kind (instant, digest).",
    ["event_type", "kind"],
)
MATCH_SECONDS = Histogram(
    "ssg_notifications_match_seconds",
    "Time to find and match the subscriptions of one event.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class Matcher:
    """Event handlers that turn events into deliveries and digest entries."""

    def __init__(
        self,
        store: NotificationStore,
        feed: IndexFeed,
        public_base_url: str,
        unsubscribe_url: Callable[[str], str],
        reminders: FundingReminders | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.reminders = reminders
        self.base = public_base_url.rstrip("/")
        self.unsubscribe_url = unsubscribe_url

    def handlers(self) -> HandlerRegistry:
        """One handler per event type that becomes an item."""
        registry = HandlerRegistry()
        for event_type, source in SOURCES.items():
            registry.add(event_type, source.payload_type, self._handler(source))
        if self.reminders is not None:
            self.reminders.register(registry)
        return registry

    def _handler(self, source: ItemSource) -> Callable[[Event[Any]], None]:
        def handle(event: Event[Any]) -> None:
            self.handle(source, event)

        return handle

    def handle(self, source: ItemSource, event: Event[Any]) -> None:
        """Match one event and record what it causes (inside event.session's transaction)."""
        started = time.monotonic()
        env = event.envelope
        items = source.items(event.payload, self.base)
        occurred = (
            env.occurred_at.ToDatetime(tzinfo=UTC) if env.HasField("occurred_at") else utc_now()
        )
        index = self.feed.catch_up()
        now = utc_now()
        plan = fan_out_audiences(
            [(item, index.candidates(item)) for item in items],
            SourceEvent(env.event_id, env.event_type, occurred),
            now,
            self.unsubscribe_url,
        )
        # The index follows a change stream: an unsubscribe committed just before this event may
        # not be in it yet, so the stored status of the matched subscriptions has the last word.
        matched = {d.subscription_id for d in plan.deliveries} | set(plan.digest_subscriptions)
        active = self.store.active_ids(matched, session=event.session) if matched else set()
        deliveries = [d for d in plan.deliveries if d.subscription_id in active]
        self.store.add_deliveries(deliveries, session=event.session)
        for item, subscription_ids in plan.digest_groups:
            kept = [s for s in subscription_ids if s in active]
            if kept:
                self.store.add_digest_items(kept, env.event_id, item, now, session=event.session)
        if self.reminders is not None and env.event_type == "catalog.FundingPublished":
            self.reminders.record(
                event.payload.funding_opportunity, env.aggregate_version, event.session
            )
        MATCH_SECONDS.observe(time.monotonic() - started)
        MATCHED.labels(env.event_type, "instant").inc(len(deliveries))
        MATCHED.labels(env.event_type, "digest").inc(len(set(plan.digest_subscriptions) & active))
