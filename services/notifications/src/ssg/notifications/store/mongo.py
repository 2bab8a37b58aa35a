"""The notifications database: subscriptions (with their matching index keys), deliveries
(the delivery log, which is also the outbox of delivery tasks), digest items, and the
platform's outbox and processed-events collections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database

from ssg.notifications.domain.model import (
    ORGANIZATION_TOPICS,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Frequency,
    Item,
    Subscription,
    SubscriptionInput,
    SubscriptionStatus,
)
from ssg.notifications.domain.tasks import AttemptResult
from ssg.notifications.store.documents import (
    delivery_from_doc,
    delivery_to_doc,
    item_from_doc,
    item_to_doc,
    spec_fields,
    subscription_from_doc,
    utc,
)
from ssg.platform.errors import NotFound, VersionConflict
from ssg.platform.events.outbox import Outbox
from ssg.platform.mongo import keyset_after
from ssg.platform.paging import Cursor

Doc = dict[str, Any]
ACTIVE = int(SubscriptionStatus.ACTIVE)
# A delivery whose result is recorded is never moved back by a late or repeated result.
_FINAL = [int(DeliveryStatus.SENT), int(DeliveryStatus.FAILED)]


def _after(cursor: Cursor | None) -> Doc:
    """The filter of a newest-first page after cursor (create time iso, id)."""
    if cursor is None:
        return {}
    return keyset_after("create_time", datetime.fromisoformat(cursor[0]), cursor[1])


class NotificationStore:
    """Everything the notifications processes read and write in MongoDB."""

    def __init__(self, client: MongoClient[Doc], db: Database[Doc]) -> None:
        self.client = client
        self.db = db
        self.subscriptions: Collection[Doc] = db["subscriptions"]
        self.deliveries: Collection[Doc] = db["deliveries"]
        self.digest_items: Collection[Doc] = db["digest_items"]
        # Funding opportunities (latest state) for deadline reminders.
        self.funding: Collection[Doc] = db["funding"]
        self.outbox = Outbox(db)

    def ensure_indexes(self) -> None:
        """Create every index (idempotent)."""
        s = self.subscriptions
        s.create_index([("owner", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)])
        s.create_index(
            [("organization_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        s.create_index(
            [("frequency", ASCENDING), ("status", ASCENDING), ("next_digest_at", ASCENDING)]
        )
        d = self.deliveries
        d.create_index([("status", ASCENDING), ("create_time", ASCENDING)])
        d.create_index([("owner", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)])
        d.create_index(
            [("subscription_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        self.digest_items.create_index(
            [("subscription_id", ASCENDING), ("digest_id", ASCENDING), ("created_at", ASCENDING)]
        )
        self.funding.create_index([("status", ASCENDING), ("deadline", ASCENDING)])
        self.outbox.ensure_indexes()

    # -- subscriptions ---------------------------------------------------------------------

    def insert_subscription(self, sub: Subscription, next_digest_at: datetime | None) -> None:
        """Store a new subscription."""
        self.subscriptions.insert_one(
            {
                "_id": sub.id,
                "owner": sub.owner,
                **spec_fields(sub.spec),
                "status": int(sub.status),
                "version": sub.version,
                "create_time": sub.create_time,
                "update_time": sub.update_time,
                "next_digest_at": next_digest_at,
            }
        )

    def active_ids(
        self, subscription_ids: Iterable[str], session: ClientSession | None = None
    ) -> set[str]:
        """Which of subscription_ids are still active, as stored now."""
        cursor = self.subscriptions.find(
            {"_id": {"$in": list(subscription_ids)}, "status": ACTIVE}, {"_id": 1}, session=session
        )
        return {d["_id"] for d in cursor}

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        """A subscription by id."""
        doc = self.subscriptions.find_one({"_id": subscription_id})
        return subscription_from_doc(doc) if doc else None

    def update_subscription(
        self,
        subscription_id: str,
        version: int,
        spec: SubscriptionInput,
        now: datetime,
        next_digest_at: datetime | None,
    ) -> Subscription:
        """Replace the caller-supplied part at version; VersionConflict when it moved on."""
        doc = self.subscriptions.find_one_and_update(
            {"_id": subscription_id, "version": version},
            {
                "$set": {**spec_fields(spec), "update_time": now, "next_digest_at": next_digest_at},
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            if self.subscriptions.count_documents({"_id": subscription_id}, limit=1):
                raise VersionConflict("the subscription changed; read it again")
            raise NotFound("no such subscription")
        return subscription_from_doc(doc)

    def set_status(
        self, subscription_id: str, status: SubscriptionStatus, now: datetime
    ) -> Subscription | None:
        """Set the status (a no-op write when it already has it); None when there is none."""
        doc = self.subscriptions.find_one_and_update(
            {"_id": subscription_id, "status": {"$ne": int(status)}},
            {"$set": {"status": int(status), "update_time": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            doc = self.subscriptions.find_one({"_id": subscription_id})
        return subscription_from_doc(doc) if doc else None

    def list_subscriptions(
        self,
        owner: str,
        include_unsubscribed: bool,
        limit: int,
        after: Cursor | None,
        organization_id: str = "",
    ) -> list[Subscription]:
        """limit + 1 of owner's subscriptions (or, with organization_id, of that
        organization's subscriptions to organization topics), newest first, after cursor."""
        whose: Doc = (
            {
                "organization_id": organization_id,
                "topics": {"$in": sorted(int(t) for t in ORGANIZATION_TOPICS)},
            }
            if organization_id
            else {"owner": owner}
        )
        query: Doc = {**whose, **_after(after)}
        if not include_unsubscribed:
            query["status"] = ACTIVE
        cursor = self.subscriptions.find(query).sort(
            [("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        return [subscription_from_doc(d) for d in cursor.limit(limit + 1)]

    # -- deliveries and digest items (written by the matcher) --------------------------------

    def add_deliveries(
        self, deliveries: Sequence[Delivery], session: ClientSession | None = None
    ) -> None:
        """Record new deliveries; one already recorded under the same id is left as it is."""
        if deliveries:
            self.deliveries.bulk_write(
                [
                    UpdateOne({"_id": d.id}, {"$setOnInsert": delivery_to_doc(d)}, upsert=True)
                    for d in deliveries
                ],
                ordered=False,
                session=session,
            )

    def add_digest_items(
        self,
        subscription_ids: Sequence[str],
        event_id: str,
        item: Item,
        at: datetime,
        session: ClientSession | None = None,
    ) -> None:
        """Keep item for the next digest of each subscription (once per event)."""
        if subscription_ids:
            doc = item_to_doc(item)
            self.digest_items.bulk_write(
                [
                    UpdateOne(
                        {"_id": f"{sid}:{event_id}"},
                        {
                            "$setOnInsert": {
                                "subscription_id": sid,
                                "event_id": event_id,
                                "item": doc,
                                "created_at": at,
                                "digest_id": None,
                            }
                        },
                        upsert=True,
                    )
                    for sid in subscription_ids
                ],
                ordered=False,
                session=session,
            )

    # -- the dispatcher -----------------------------------------------------------------------

    def claim_pending(
        self, limit: int, claimer: str, now: datetime, lease: timedelta
    ) -> list[Delivery]:
        """Up to limit of the oldest deliveries not yet on the task queue, claimed for lease so
        that another dispatcher leaves them alone (a dispatcher that dies loses its claim);
        claimer must be unique to this call."""
        free = {
            "status": int(DeliveryStatus.PENDING),
            "$or": [{"claimed_until": None}, {"claimed_until": {"$lt": now}}],
        }
        ids = [
            d["_id"]
            for d in self.deliveries.find(free, {"_id": 1})
            .sort("create_time", ASCENDING)
            .limit(limit)
        ]
        if not ids:
            return []
        self.deliveries.update_many(
            {"_id": {"$in": ids}, **free},
            {"$set": {"claimed_by": claimer, "claimed_until": now + lease}},
        )
        cursor = self.deliveries.find({"_id": {"$in": ids}, "claimed_by": claimer}).sort(
            "create_time", ASCENDING
        )
        return [delivery_from_doc(d) for d in cursor]

    def mark_queued(self, delivery_ids: Sequence[str], now: datetime) -> None:
        """Record that these deliveries are on the task queue."""
        if delivery_ids:
            self.deliveries.update_many(
                {"_id": {"$in": list(delivery_ids)}, "status": int(DeliveryStatus.PENDING)},
                {"$set": {"status": int(DeliveryStatus.QUEUED), "queued_at": now}},
            )

    def count_by_status(self, status: DeliveryStatus) -> int:
        """How many deliveries have status."""
        return self.deliveries.count_documents({"status": int(status)})

    # -- results ------------------------------------------------------------------------------

    def record_attempt(
        self, result: AttemptResult, at: datetime, session: ClientSession | None = None
    ) -> tuple[Delivery | None, bool]:
        """Record one attempt (keyed by its number: a repeated result writes nothing new) and,
        for a final one, the delivery's status; (the delivery, whether it just failed for good)."""
        attempt = {
            "outcome": result.outcome,
            "time": at,
            "response_code": result.response_code,
            "error": result.error[:1000],
        }
        update: Doc = {f"attempts.{result.attempt}": attempt}
        failed_now = False
        if result.outcome == AttemptOutcome.SUCCEEDED:
            update["status"] = int(DeliveryStatus.SENT)
        elif result.outcome == AttemptOutcome.GAVE_UP:
            update["status"] = int(DeliveryStatus.FAILED)
        doc = self.deliveries.find_one_and_update(
            {"_id": result.delivery_id, "status": {"$nin": _FINAL}},
            {"$set": update},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if doc is None:
            # Already final: a repeated or late result. Only a missing attempt entry is added.
            doc = self.deliveries.find_one_and_update(
                {"_id": result.delivery_id, f"attempts.{result.attempt}": {"$exists": False}},
                {"$set": {f"attempts.{result.attempt}": attempt}},
                return_document=ReturnDocument.AFTER,
                session=session,
            ) or self.deliveries.find_one({"_id": result.delivery_id}, session=session)
        else:
            failed_now = result.outcome == AttemptOutcome.GAVE_UP
        return (delivery_from_doc(doc) if doc else None), failed_now

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        """A delivery by id."""
        doc = self.deliveries.find_one({"_id": delivery_id})
        return delivery_from_doc(doc) if doc else None

    def list_deliveries(
        self, owner: str, subscription_id: str, limit: int, after: Cursor | None
    ) -> list[Delivery]:
        """limit + 1 of owner's deliveries (of one subscription if given), newest first."""
        query: Doc = {"owner": owner, **_after(after)}
        if subscription_id:
            query["subscription_id"] = subscription_id
        cursor = self.deliveries.find(query).sort(
            [("create_time", DESCENDING), ("_id", DESCENDING)]
        )
        return [delivery_from_doc(d) for d in cursor.limit(limit + 1)]

    # -- digests ------------------------------------------------------------------------------

    def due_digests(self, now: datetime, limit: int) -> list[tuple[Subscription, datetime]]:
        """Active digest subscriptions whose period ended, with that period's end."""
        cursor = self.subscriptions.find(
            {
                "frequency": {"$in": [int(Frequency.DAILY), int(Frequency.WEEKLY)]},
                "status": ACTIVE,
                "next_digest_at": {"$lte": now},
            }
        ).limit(limit)
        return [(subscription_from_doc(d), utc(d["next_digest_at"])) for d in cursor]

    def undigested_items(
        self, subscription_id: str, before: datetime, session: ClientSession | None = None
    ) -> list[tuple[str, Item]]:
        """Items kept for a subscription's digest before a time, oldest first, with their ids."""
        cursor = self.digest_items.find(
            {"subscription_id": subscription_id, "digest_id": None, "created_at": {"$lt": before}},
            session=session,
        ).sort("created_at", ASCENDING)
        return [(d["_id"], item_from_doc(d["item"])) for d in cursor]

    def close_digest(
        self,
        subscription_id: str,
        period_end: datetime,
        next_at: datetime,
        item_ids: Sequence[str],
        digest: Delivery | None,
        session: ClientSession,
    ) -> bool:
        """In the caller's transaction: move the subscription to its next period (only if it is
        still at period_end), mark the items, record the digest; False when another replica did."""
        moved = self.subscriptions.update_one(
            {"_id": subscription_id, "next_digest_at": period_end},
            {"$set": {"next_digest_at": next_at}},
            session=session,
        )
        if moved.modified_count != 1:
            return False
        if item_ids:
            self.digest_items.update_many(
                {"_id": {"$in": list(item_ids)}},
                {"$set": {"digest_id": digest.id if digest else ""}},
                session=session,
            )
        if digest is not None:
            self.add_deliveries([digest], session=session)
        return True
