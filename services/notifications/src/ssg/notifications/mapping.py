"""Between protobuf messages and domain objects (the servicer's and the events' translation)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.notifications.v1 import delivery_pb2, subscription_pb2
from ssg.notifications.domain.model import Delivery, Subscription
from ssg.notifications.domain.validation import RawSubscription


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def raw_subscription(p: subscription_pb2.Subscription) -> RawSubscription:
    """The request's subscription, unchecked."""
    return RawSubscription(
        channel=p.channel,
        address=p.address,
        topics=list(p.topics),
        sdgs=list(p.sdgs),
        regions=list(p.regions),
        countries=list(p.countries),
        keywords=list(p.keywords),
        sdg_targets=[t.code for t in p.sdg_targets],
        frequency=p.frequency,
        language=p.language,
        organization_id=p.organization_id,
    )


def subscription_to_proto(s: Subscription) -> subscription_pb2.Subscription:
    """A stored subscription as the API shows it."""
    f = s.spec.filters
    return subscription_pb2.Subscription(
        id=s.id,
        owner=s.owner,
        organization_id=s.spec.organization_id,
        channel=int(s.spec.channel),  # type: ignore[arg-type]
        address=s.spec.address,
        topics=sorted(int(t) for t in f.topics),  # type: ignore[misc]
        sdgs=sorted(f.sdgs),  # type: ignore[arg-type]
        regions=sorted(f.regions),  # type: ignore[arg-type]
        countries=sorted(f.countries),
        keywords=list(f.keywords),
        sdg_targets=[sdg_pb2.SdgTarget(code=t) for t in sorted(f.sdg_targets)],
        frequency=int(s.spec.frequency),  # type: ignore[arg-type]
        language=s.spec.language,
        status=int(s.status),  # type: ignore[arg-type]
        version=s.version,
        create_time=_ts(s.create_time),
        update_time=_ts(s.update_time),
    )


def delivery_to_proto(d: Delivery) -> delivery_pb2.Delivery:
    """A delivery with its attempts."""
    return delivery_pb2.Delivery(
        id=d.id,
        subscription_id=d.subscription_id,
        event_id=d.event_id,
        event_type=d.event_type,
        channel=int(d.channel),  # type: ignore[arg-type]
        address=d.address,
        subject=d.message.subject,
        status=int(d.status),  # type: ignore[arg-type]
        attempts=[
            delivery_pb2.DeliveryAttempt(
                number=a.number,
                outcome=int(a.outcome),  # type: ignore[arg-type]
                time=_ts(a.time),
                response_code=a.response_code,
                error=a.error,
            )
            for a in d.attempts
        ],
        create_time=_ts(d.create_time),
        event_time=_ts(d.event_time),
    )
