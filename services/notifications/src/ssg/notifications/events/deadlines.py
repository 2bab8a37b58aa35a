"""Funding-deadline reminders: the worker keeps a small read model of funding opportunities
(``funding``: open or closed, deadline, the item) from the funding events, and a sweep turns
each deadline coming within the window into a reminder for the subscribers the publication
reached (instant: a delivery; digest: an item of the next digest)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.client_session import ClientSession

from ssg.contracts.catalog.v1 import events_pb2 as catalog_events
from ssg.contracts.catalog.v1 import funding_pb2
from ssg.notifications.domain.deadlines import (
    REMINDER_EVENT_TYPE,
    reminder_due,
    reminder_item,
    reminder_source,
)
from ssg.notifications.domain.fanout import SourceEvent, fan_out
from ssg.notifications.events.items import funding_item
from ssg.notifications.store.documents import item_from_doc, item_to_doc, utc
from ssg.notifications.store.feed import IndexFeed
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.clock import utc_now
from ssg.platform.events.consumer import Event, HandlerRegistry, apply_if_newer

log = logging.getLogger(__name__)


class FundingReminders:
    """The funding read model and its reminder sweep."""

    def __init__(
        self,
        store: NotificationStore,
        feed: IndexFeed,
        public_base_url: str,
        unsubscribe_url: Callable[[str], str],
        window: timedelta,
    ) -> None:
        self.store = store
        self.feed = feed
        self.base = public_base_url.rstrip("/")
        self.unsubscribe_url = unsubscribe_url
        self.window = window

    def record(
        self, f: funding_pb2.FundingOpportunity, version: int, session: ClientSession | None
    ) -> None:
        """Keep the latest state of a funding opportunity (older versions are ignored)."""
        deadline = f.deadline.ToDatetime(tzinfo=UTC) if f.HasField("deadline") else None
        doc = {
            "status": "open" if f.status == funding_pb2.FUNDING_STATUS_OPEN else "closed",
            "deadline": deadline,
            "item": item_to_doc(funding_item(f, self.base)),
        }
        apply_if_newer(self.store.funding, f.id, version, doc, session=session)

    def register(self, registry: HandlerRegistry) -> None:
        """Handlers for the funding events the matcher does not turn into news."""

        def changed(event: Event[Any]) -> None:
            f = event.payload.funding_opportunity
            self.record(f, event.envelope.aggregate_version, event.session)

        registry.add("catalog.FundingUpdated", catalog_events.FundingUpdated, changed)
        registry.add("catalog.FundingClosed", catalog_events.FundingClosed, changed)

    def sweep(self, now: datetime | None = None) -> int:
        """Send every reminder that is due; how many funding opportunities were reminded."""
        now = now or utc_now()
        due = [
            doc
            for doc in self.store.funding.find(
                {"status": "open", "deadline": {"$gt": now, "$lte": now + self.window}}
            )
            if reminder_due(
                utc(doc["deadline"]),
                utc(doc["reminded_for"]) if doc.get("reminded_for") else None,
                now,
                self.window,
            )
        ]
        return sum(self._remind(doc, now) for doc in due)

    def _remind(self, doc: dict[str, Any], now: datetime) -> bool:
        deadline = utc(doc["deadline"])
        item = reminder_item(item_from_doc(doc["item"]), deadline, now)
        source = SourceEvent(reminder_source(doc["_id"], deadline), REMINDER_EVENT_TYPE, now)
        plan = fan_out(
            item, self.feed.catch_up().candidates(item), source, now, self.unsubscribe_url
        )

        def transaction(session: ClientSession) -> bool:
            marked = self.store.funding.update_one(
                {
                    "_id": doc["_id"],
                    "deadline": doc["deadline"],
                    "reminded_for": doc.get("reminded_for"),
                },
                {"$set": {"reminded_for": doc["deadline"]}},
                session=session,
            )
            if marked.modified_count != 1:
                return False  # another replica reminded it, or it changed meanwhile
            self.store.add_deliveries(plan.deliveries, session=session)
            self.store.add_digest_items(
                plan.digest_subscriptions, source.event_id, item, now, session=session
            )
            return True

        with self.store.client.start_session() as session:
            return bool(session.with_transaction(transaction))
