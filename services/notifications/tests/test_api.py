"""The subscriptions API against a real MongoDB: subscribe, list, update, unsubscribe (by id
and by one-click token, which cannot be forged), and INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ssg.contracts.common.v1 import paging_pb2, sdg_pb2
from ssg.contracts.notifications.v1 import notifications_service_pb2 as pb
from ssg.contracts.notifications.v1 import subscription_pb2 as spb
from ssg.notifications.domain.signing import unsubscribe_token
from ssg.platform.auth.tokens import Role


def new_sub(**kw) -> spb.Subscription:
    base: dict[str, Any] = dict(
        channel=spb.CHANNEL_EMAIL,
        address="alice@example.org",
        topics=[spb.TOPIC_SOLUTIONS],
        sdgs=[6],
        countries=["KEN"],
        frequency=spb.FREQUENCY_INSTANT,
        language="en",
    )
    base.update(kw)
    return spb.Subscription(**base)


def bad_fields(err: grpc.aio.AioRpcError) -> dict[str, str]:
    raw = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    status = status_pb2.Status.FromString(raw)
    out = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            req = error_details_pb2.BadRequest()
            detail.Unpack(req)
            out.update({v.field: v.description for v in req.field_violations})
    return out


async def test_subscribe_list_update_unsubscribe(served, auth):
    me = auth("alice-1", Role.MEMBER)
    made = await served.stub.Subscribe(pb.SubscribeRequest(subscription=new_sub()), metadata=me)
    sub = made.subscription
    assert sub.id and sub.owner == "alice-1" and sub.status == spb.SUBSCRIPTION_STATUS_ACTIVE
    assert made.webhook_secret == ""

    listed = await served.stub.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=me)
    assert [s.id for s in listed.subscriptions] == [sub.id]
    other = await served.stub.ListSubscriptions(
        pb.ListSubscriptionsRequest(), metadata=auth("bob-1", Role.MEMBER)
    )
    assert list(other.subscriptions) == []

    changed = new_sub(id=sub.id, version=sub.version, sdgs=[7], frequency=spb.FREQUENCY_WEEKLY)
    updated = await served.stub.UpdateSubscription(
        pb.UpdateSubscriptionRequest(subscription=changed), metadata=me
    )
    assert list(updated.subscription.sdgs) == [7] and updated.subscription.version == 2
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await served.stub.UpdateSubscription(
            pb.UpdateSubscriptionRequest(subscription=changed), metadata=me
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED

    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await served.stub.Unsubscribe(
            pb.UnsubscribeRequest(subscription_id=sub.id), metadata=auth("bob-1", Role.MEMBER)
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND

    gone = await served.stub.Unsubscribe(pb.UnsubscribeRequest(subscription_id=sub.id), metadata=me)
    assert gone.subscription.status == spb.SUBSCRIPTION_STATUS_UNSUBSCRIBED
    active = await served.stub.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=me)
    assert list(active.subscriptions) == []
    everything = await served.stub.ListSubscriptions(
        pb.ListSubscriptionsRequest(include_unsubscribed=True), metadata=me
    )
    assert [s.id for s in everything.subscriptions] == [sub.id]


async def test_one_click_token_works_without_sign_in_and_cannot_be_forged(served, settings, auth):
    me = auth("carol-1", Role.MEMBER)
    sub = (
        await served.stub.Subscribe(pb.SubscribeRequest(subscription=new_sub()), metadata=me)
    ).subscription
    key = settings.signing_bytes()

    forged = unsubscribe_token(b"not-the-service-key-at-all", sub.id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.stub.Unsubscribe(pb.UnsubscribeRequest(token=forged))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "token" in bad_fields(refused.value)
    tampered = unsubscribe_token(key, sub.id).rsplit(".", 1)[0] + ".AAAA"
    with pytest.raises(grpc.aio.AioRpcError):
        await served.stub.Unsubscribe(pb.UnsubscribeRequest(token=tampered))
    still = await served.stub.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=me)
    assert [s.id for s in still.subscriptions] == [sub.id]

    done = await served.stub.Unsubscribe(
        pb.UnsubscribeRequest(token=unsubscribe_token(key, sub.id))
    )
    assert done.subscription.status == spb.SUBSCRIPTION_STATUS_UNSUBSCRIBED
    again = await served.stub.Unsubscribe(
        pb.UnsubscribeRequest(token=unsubscribe_token(key, sub.id))
    )
    assert again.subscription.status == spb.SUBSCRIPTION_STATUS_UNSUBSCRIBED


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"address": "nope"}, "subscription.address"),
        (
            {"channel": spb.CHANNEL_WEBHOOK, "address": "http://192.168.1.10/hook"},
            "subscription.address",
        ),
        ({"topics": []}, "subscription.topics"),
        ({"sdgs": [42]}, "subscription.sdgs[0]"),
        ({"countries": ["ZZZ"]}, "subscription.countries[0]"),
        ({"frequency": spb.FREQUENCY_UNSPECIFIED}, "subscription.frequency"),
        ({"language": ""}, "subscription.language"),
        (
            {"sdg_targets": [sdg_pb2.SdgTarget(code="6.1"), sdg_pb2.SdgTarget(code="6.12")]},
            "subscription.sdg_targets[1]",
        ),
        ({"sdg_targets": [sdg_pb2.SdgTarget(code="six")]}, "subscription.sdg_targets[0]"),
        ({"topics": [spb.TOPIC_MATCHES_FOR_MY_NEEDS]}, "subscription.organization_id"),
        ({"topics": [spb.TOPIC_NEEDS_FOR_MY_SOLUTIONS]}, "subscription.organization_id"),
    ],
)
async def test_bad_subscription_is_invalid_argument_naming_the_field(served, auth, changes, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.Subscribe(
            pb.SubscribeRequest(subscription=new_sub(**changes)),
            metadata=auth("dave-1", Role.MEMBER),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_fields(caught.value)


async def test_sign_in_and_organization_membership_are_required(served, auth):
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await served.stub.Subscribe(pb.SubscribeRequest(subscription=new_sub()))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    mine = new_sub(topics=[spb.TOPIC_MY_ORGANIZATION], organization_id="org-a")
    with pytest.raises(grpc.aio.AioRpcError) as outsider:
        await served.stub.Subscribe(
            pb.SubscribeRequest(subscription=mine),
            metadata=auth("erin-1", Role.MEMBER, org="org-b"),
        )
    assert outsider.value.code() == grpc.StatusCode.PERMISSION_DENIED
    ok = await served.stub.Subscribe(
        pb.SubscribeRequest(subscription=mine), metadata=auth("erin-1", Role.MEMBER, org="org-a")
    )
    assert ok.subscription.organization_id == "org-a"


async def test_match_topics_and_targets_belong_to_the_organization(served, auth):
    """Match topics need membership; any member of the organization may then list, change or
    stop the organization's subscription (ADR 0033), an outsider may not see it."""
    theirs = new_sub(
        topics=[spb.TOPIC_MATCHES_FOR_MY_NEEDS, spb.TOPIC_NEEDS_FOR_MY_SOLUTIONS],
        organization_id="org-m",
        sdg_targets=[sdg_pb2.SdgTarget(code="6.1")],
        language="es",
    )
    with pytest.raises(grpc.aio.AioRpcError) as outsider:
        await served.stub.Subscribe(
            pb.SubscribeRequest(subscription=theirs),
            metadata=auth("gina-1", Role.MEMBER, org="org-n"),
        )
    assert outsider.value.code() == grpc.StatusCode.PERMISSION_DENIED
    made = await served.stub.Subscribe(
        pb.SubscribeRequest(subscription=theirs),
        metadata=auth("gina-1", Role.MEMBER, org="org-m"),
    )
    sub = made.subscription
    assert [t.code for t in sub.sdg_targets] == ["6.1"]
    assert list(sub.topics) == [spb.TOPIC_MATCHES_FOR_MY_NEEDS, spb.TOPIC_NEEDS_FOR_MY_SOLUTIONS]
    colleague = auth("hugo-1", Role.MEMBER, org="org-m")
    # Gina's own content subscription is hers, not the organization's.
    await served.stub.Subscribe(
        pb.SubscribeRequest(subscription=new_sub(organization_id="org-m")),
        metadata=auth("gina-1", Role.MEMBER, org="org-m"),
    )
    listed = await served.stub.ListSubscriptions(
        pb.ListSubscriptionsRequest(organization_id="org-m"), metadata=colleague
    )
    assert [s.id for s in listed.subscriptions] == [sub.id]
    with pytest.raises(grpc.aio.AioRpcError) as not_member:
        await served.stub.ListSubscriptions(
            pb.ListSubscriptionsRequest(organization_id="org-m"),
            metadata=auth("ivan-1", Role.MEMBER, org="org-n"),
        )
    assert not_member.value.code() == grpc.StatusCode.PERMISSION_DENIED
    changed = new_sub(
        id=sub.id,
        version=sub.version,
        topics=[spb.TOPIC_MATCHES_FOR_MY_NEEDS],
        organization_id="org-m",
        language="fr",
    )
    updated = await served.stub.UpdateSubscription(
        pb.UpdateSubscriptionRequest(subscription=changed), metadata=colleague
    )
    assert updated.subscription.language == "fr" and list(updated.subscription.sdg_targets) == []
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await served.stub.Unsubscribe(
            pb.UnsubscribeRequest(subscription_id=sub.id),
            metadata=auth("ivan-1", Role.MEMBER, org="org-n"),
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    gone = await served.stub.Unsubscribe(
        pb.UnsubscribeRequest(subscription_id=sub.id), metadata=colleague
    )
    assert gone.subscription.status == spb.SUBSCRIPTION_STATUS_UNSUBSCRIBED


async def test_webhook_subscription_gets_its_secret_and_lists_page(served, auth):
    me = auth("frank-1", Role.MEMBER)
    hook = await served.stub.Subscribe(
        pb.SubscribeRequest(
            subscription=new_sub(channel=spb.CHANNEL_WEBHOOK, address="http://127.0.0.1:9/hook")
        ),
        metadata=me,
    )
    assert len(hook.webhook_secret) >= 32
    for _ in range(2):
        await served.stub.Subscribe(pb.SubscribeRequest(subscription=new_sub()), metadata=me)
    first = await served.stub.ListSubscriptions(
        pb.ListSubscriptionsRequest(page=paging_pb2.PageRequest(page_size=2)), metadata=me
    )
    assert len(first.subscriptions) == 2 and first.page.next_page_token
    second = await served.stub.ListSubscriptions(
        pb.ListSubscriptionsRequest(
            page=paging_pb2.PageRequest(page_size=2, page_token=first.page.next_page_token)
        ),
        metadata=me,
    )
    ids = [s.id for s in first.subscriptions] + [s.id for s in second.subscriptions]
    assert len(set(ids)) == 3 and hook.subscription.id in ids
