"""The store and the index feed against a real MongoDB: the index follows inserts, updates,
unsubscribes and deletes through the change stream; two dispatchers never claim the same
delivery; attempt results are recorded once and a final status is never moved back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ssg.notifications.domain.model import (
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryStatus,
    Filters,
    Frequency,
    Item,
    Message,
    Subscription,
    SubscriptionInput,
    SubscriptionStatus,
    Topic,
)
from ssg.notifications.domain.tasks import AttemptResult
from ssg.notifications.store.feed import IndexFeed
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.clock import utc_now
from ssg.platform.mongo import make_client

from .conftest import make_settings


@pytest.fixture
def store(mongodb_server) -> Iterator[NotificationStore]:
    settings = make_settings(mongodb_server.uri(f"notifications-store-{uuid.uuid4().hex[:8]}"))
    client = make_client(settings)
    s = NotificationStore(client, client.get_default_database())
    s.ensure_indexes()
    yield s
    client.drop_database(s.db.name)
    client.close()


def spec(sdgs=(6,)) -> SubscriptionInput:
    return SubscriptionInput(
        Channel.EMAIL,
        "a@example.org",
        Filters(frozenset({Topic.SOLUTIONS}), frozenset(sdgs)),
        Frequency.INSTANT,
        "en",
    )


ITEM = Item(Topic.SOLUTIONS, "solution", "x", "Water", sdgs=frozenset({6}))


def test_index_feed_follows_the_collection(store):
    feed = IndexFeed(store)
    now = utc_now()
    first = Subscription(uuid.uuid4().hex, "u1", spec(), SubscriptionStatus.ACTIVE, 1, now, now)
    store.insert_subscription(first, None)
    assert [s.id for s in feed.catch_up().match(ITEM)] == [first.id]

    second = Subscription(uuid.uuid4().hex, "u2", spec(), SubscriptionStatus.ACTIVE, 1, now, now)
    store.insert_subscription(second, None)
    assert {s.id for s in feed.catch_up().match(ITEM)} == {first.id, second.id}

    store.update_subscription(first.id, 1, spec(sdgs=(3,)), now, None)
    store.set_status(second.id, SubscriptionStatus.UNSUBSCRIBED, now)
    assert feed.catch_up().match(ITEM) == []
    store.update_subscription(first.id, 2, spec(sdgs=(6,)), now, None)
    assert [s.id for s in feed.catch_up().match(ITEM)] == [first.id]
    store.subscriptions.delete_one({"_id": first.id})
    assert feed.catch_up().match(ITEM) == []
    # A stream that died (closed by the server, a failover) is replaced by a fresh load.
    store.insert_subscription(
        Subscription(uuid.uuid4().hex, "u3", spec(), SubscriptionStatus.ACTIVE, 1, now, now), None
    )
    feed._stream.close()  # type: ignore[union-attr]
    assert len(feed.catch_up().match(ITEM)) == 1
    feed.close()


def delivery(n: int) -> Delivery:
    now = utc_now() + timedelta(milliseconds=n)
    return Delivery(
        id=uuid.uuid4().hex,
        subscription_id="s",
        owner="u",
        event_id=f"e{n}",
        event_type="catalog.SolutionPublished",
        channel=Channel.EMAIL,
        address="a@example.org",
        message=Message("s", "t", "h", "{}"),
        status=DeliveryStatus.PENDING,
        create_time=now,
        event_time=now,
    )


def test_claims_do_not_overlap_and_expire(store):
    store.add_deliveries([delivery(n) for n in range(10)])
    store.add_deliveries([delivery(99)])  # a different id: 11 in all
    now = utc_now()
    a = store.claim_pending(6, "a", now, timedelta(seconds=60))
    b = store.claim_pending(6, "b", now, timedelta(seconds=60))
    assert len(a) == 6 and len(b) == 5 and not {d.id for d in a} & {d.id for d in b}
    assert store.claim_pending(6, "c", now, timedelta(seconds=60)) == []
    store.mark_queued([d.id for d in a], now)
    later = store.claim_pending(20, "d", now + timedelta(seconds=61), timedelta(seconds=60))
    assert {d.id for d in later} == {d.id for d in b}  # a's were queued, b's claim expired


def test_results_recorded_once_and_final_status_sticks(store):
    d = delivery(1)
    store.add_deliveries([d])
    at = datetime.now(UTC)
    failed = AttemptResult(d.id, 1, int(AttemptOutcome.FAILED), at.timestamp(), 500, "HTTP 500")
    ok = AttemptResult(d.id, 2, int(AttemptOutcome.SUCCEEDED), at.timestamp(), 204)
    store.record_attempt(failed, at)
    store.record_attempt(failed, at)
    row, failed_now = store.record_attempt(ok, at)
    assert row is not None and not failed_now
    assert row.status is DeliveryStatus.SENT
    assert [a.outcome for a in row.attempts] == [AttemptOutcome.FAILED, AttemptOutcome.SUCCEEDED]
    late = AttemptResult(d.id, 3, int(AttemptOutcome.GAVE_UP), at.timestamp(), 0, "late")
    row, failed_now = store.record_attempt(late, at)
    assert row is not None and row.status is DeliveryStatus.SENT and not failed_now
