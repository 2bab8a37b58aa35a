"""The digest sweep: when a daily or weekly period has ended, everything kept for a
subscription during it becomes one digest delivery (nothing is sent for an empty period).
Several replicas may sweep: moving the subscription to its next period is conditional, so
only one of them closes a period."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pymongo.client_session import ClientSession

from ssg.notifications.domain.digest import next_boundary, period_label, period_start
from ssg.notifications.domain.ids import delivery_id, digest_source
from ssg.notifications.domain.messages import Envelope, render_digest
from ssg.notifications.domain.model import Delivery, DeliveryStatus, Item, Subscription
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.clock import utc_now

log = logging.getLogger(__name__)
DIGEST_EVENT_TYPE = "notifications.Digest"


def build_digest(
    sub: Subscription,
    period_end: datetime,
    items: Sequence[Item],
    now: datetime,
    unsubscribe_url: Callable[[str], str],
) -> Delivery:
    """The digest delivery of sub for the period ending at period_end."""
    freq = sub.spec.frequency
    start = period_start(freq, period_end - timedelta(microseconds=1))
    did = delivery_id(digest_source(period_end.isoformat()), sub.id, int(sub.spec.channel))
    env = Envelope(did, "", DIGEST_EVENT_TYPE, period_end, unsubscribe_url(sub.id))
    return Delivery(
        id=did,
        subscription_id=sub.id,
        owner=sub.owner,
        event_id="",
        event_type=DIGEST_EVENT_TYPE,
        channel=sub.spec.channel,
        address=sub.spec.address,
        message=render_digest(
            items,
            period_label(freq, start, sub.spec.language),
            env,
            language=sub.spec.language,
        ),
        status=DeliveryStatus.PENDING,
        create_time=now,
        event_time=period_end,
    )


def _close_period(
    store: NotificationStore,
    sub: Subscription,
    period_end: datetime,
    now: datetime,
    unsubscribe_url: Callable[[str], str],
) -> bool:
    """Close one subscription's period in a transaction; True when a digest was recorded."""
    freq = sub.spec.frequency
    # After an outage the next period starts from now, not from the missed boundaries.
    next_at = max(next_boundary(freq, period_end), next_boundary(freq, now))

    def transaction(session: ClientSession) -> bool:
        kept = store.undigested_items(sub.id, period_end, session=session)
        items = [item for _, item in kept]
        digest = build_digest(sub, period_end, items, now, unsubscribe_url) if items else None
        closed = store.close_digest(
            sub.id, period_end, next_at, [k for k, _ in kept], digest, session
        )
        return closed and digest is not None

    with store.client.start_session() as session:
        return bool(session.with_transaction(transaction))


def sweep_digests(
    store: NotificationStore,
    unsubscribe_url: Callable[[str], str],
    now: datetime | None = None,
    limit: int = 500,
) -> int:
    """Close every due digest period; how many digests were recorded."""
    now = now or utc_now()
    return sum(
        _close_period(store, sub, period_end, now, unsubscribe_url)
        for sub, period_end in store.due_digests(now, limit)
    )
