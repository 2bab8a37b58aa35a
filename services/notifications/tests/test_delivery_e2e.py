"""End to end with real servers: Kafka (events in), MongoDB, RabbitMQ (the machine's, queues
under a unique prefix), an SMTP server and an HTTP receiver; the worker runs in-process, the
nameko delivery worker as a process of its own, the outbox relay in-process.

An event reaches exactly the matching subscribers by e-mail and webhook; a receiver failing
twice then succeeding gets one success and two recorded failures; a receiver always failing
ends in the dead-letter queue with a DeliveryFailed event on Kafka; the same event consumed
twice sends nothing twice; a delivery worker killed mid-task leaves the task to the next one,
which sends it once; a daily digest groups what matched during its period."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from kombu import Connection

from ssg.contracts.catalog.v1 import events_pb2 as catalog_events
from ssg.contracts.catalog.v1 import funding_pb2, review_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2, sdg_pb2
from ssg.contracts.notifications.v1 import delivery_pb2 as dpb
from ssg.contracts.notifications.v1 import events_pb2 as notification_events
from ssg.contracts.notifications.v1 import notifications_service_pb2 as pb
from ssg.contracts.notifications.v1 import subscription_pb2 as spb
from ssg.notifications.domain.signing import verify_webhook_signature
from ssg.notifications.events.digests import sweep_digests
from ssg.notifications.events.items import FUNDING_TOPIC, SOLUTION_TOPIC
from ssg.notifications.events.publisher import DELIVERY_TOPIC
from ssg.notifications.worker import topology, unsubscribe_links
from ssg.platform.auth.tokens import Role
from ssg.platform.events.consumer import Event
from ssg.platform.events.envelope import Origin, build_envelope, parse_envelope, unpack_payload
from ssg.platform.mongo import run_sync
from ssg.testing.receivers import HttpSink
from ssg.testing.waiting import eventually

from .conftest import token_metadata
from .stack import Stack, running_stack, sent_rows, sent_to

CATALOG = Origin("catalog", "global", "test-catalog")
ORG = "org-e2e"


@pytest.fixture(scope="module")
async def stack(mongodb_server, kafka_server, amqp_url, tmp_path_factory) -> AsyncIterator[Stack]:
    http = HttpSink(fail_first={"/flaky": 2}, always_fail={"/down"})
    async with running_stack(
        mongodb_server,
        kafka_server,
        amqp_url,
        tmp_path_factory.mktemp("delivery"),
        http,
        [SOLUTION_TOPIC, FUNDING_TOPIC],
    ) as running:
        yield running


def solution_event(sdgs=(6,), countries=("KEN",), title="Solar pumps for irrigation"):
    sid = uuid.uuid4().hex
    s = solution_pb2.Solution(
        id=sid,
        title=title,
        summary="Farmers share solar pumps",
        sdgs=list(sdgs),
        implementing_countries=list(countries),
        regions=[geography_pb2.REGION_AFRICA],
        organization_id=ORG,
        status=solution_pb2.SOLUTION_STATUS_PUBLISHED,
        version=3,
    )
    return build_envelope(
        CATALOG, "catalog.SolutionPublished", sid, 3, catalog_events.SolutionPublished(solution=s)
    )


async def test_event_reaches_exactly_the_matching_subscribers(stack):
    tag = uuid.uuid4().hex[:6]
    email_match = f"match-{tag}@example.org"
    email_other_sdg = f"other-{tag}@example.org"
    email_org = f"org-{tag}@example.org"
    # The session's broker also carries other tests' catalog events (SDG 6 in Kenya among them):
    # the keyword, in this test's title only, keeps those out of the counts below.
    await stack.subscribe(
        "u-match", address=email_match, sdgs=[6], countries=["KEN"], keywords=[tag]
    )
    await stack.subscribe("u-other", address=email_other_sdg, sdgs=[3], keywords=[tag])
    hook = await stack.subscribe(
        "u-hook",
        channel=spb.CHANNEL_WEBHOOK,
        address=stack.http.url(f"/hook-{tag}"),
        sdgs=[6, 7],
        keywords=[tag],
    )
    gone = await stack.subscribe(
        "u-gone", channel=spb.CHANNEL_WEBHOOK, address=stack.http.url(f"/gone-{tag}")
    )
    await stack.stub.Unsubscribe(
        pb.UnsubscribeRequest(subscription_id=gone.subscription.id),
        metadata=token_metadata("u-gone", Role.MEMBER),
    )
    await stack.subscribe(
        "u-org", address=email_org, topics=[spb.TOPIC_MY_ORGANIZATION], organization_id=ORG, org=ORG
    )

    env = solution_event(title=f"Solar pumps for irrigation {tag}")
    await stack.publish(SOLUTION_TOPIC, env)
    review = build_envelope(
        CATALOG,
        "catalog.SolutionReviewRecorded",
        env.aggregate_id,
        4,
        catalog_events.SolutionReviewRecorded(
            solution_id=env.aggregate_id,
            organization_id=ORG,
            outcome=review_pb2.REVIEW_OUTCOME_APPROVE,
            passed=True,
        ),
    )
    await stack.publish(SOLUTION_TOPIC, review)

    await eventually(lambda: sent_to(stack, email_match) == 1, "the matching e-mail")
    await eventually(lambda: len(stack.http.at(f"/hook-{tag}")) == 1, "the webhook")
    await eventually(lambda: sent_to(stack, email_org) == 1, "the organization's review alert")

    mail = stack.smtp.to(email_match)[0]
    assert "Solar pumps for irrigation" in mail["Subject"]
    assert mail["List-Unsubscribe"].startswith("<https://")
    assert {p.get_content_type() for p in mail.walk()} >= {"text/plain", "text/html"}
    assert "approved" in stack.smtp.to(email_org)[0]["Subject"]

    request = stack.http.at(f"/hook-{tag}")[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert verify_webhook_signature(
        hook.webhook_secret,
        int(headers["x-ssg-timestamp"]),
        request.body,
        headers["x-ssg-signature"],
        int(time.time()),
    )
    body = json.loads(request.body)
    assert body["event_id"] == env.event_id and body["item"]["id"] == env.aggregate_id

    delivered = await eventually(
        lambda: sent_rows(stack, "u-hook"), "the webhook delivery recorded as sent"
    )
    assert [a.outcome for a in delivered[0].attempts] == [dpb.ATTEMPT_OUTCOME_SUCCEEDED]
    assert delivered[0].attempts[0].response_code == 204
    await asyncio.sleep(1.0)  # anything extra would have arrived by now
    assert sent_to(stack, email_other_sdg) == 0
    assert stack.http.at(f"/gone-{tag}") == []
    assert sent_to(stack, email_match) == 1 and len(stack.http.at(f"/hook-{tag}")) == 1
    assert await stack.deliveries("u-other") == []


async def test_receiver_failing_twice_then_succeeding(stack):
    await stack.subscribe(
        "u-flaky", channel=spb.CHANNEL_WEBHOOK, address=stack.http.url("/flaky"), sdgs=[13]
    )
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(13,)))
    rows = await eventually(lambda: sent_rows(stack, "u-flaky"), "the flaky webhook to succeed")
    assert len(rows) == 1
    outcomes = [a.outcome for a in rows[0].attempts]
    assert outcomes == [
        dpb.ATTEMPT_OUTCOME_FAILED,
        dpb.ATTEMPT_OUTCOME_FAILED,
        dpb.ATTEMPT_OUTCOME_SUCCEEDED,
    ]
    assert [a.response_code for a in rows[0].attempts] == [500, 500, 204]
    assert len(stack.http.at("/flaky")) == 3
    ids = {r.headers.get("X-SSG-Delivery-Id") for r in stack.http.at("/flaky")}
    assert ids == {rows[0].id}


async def test_receiver_always_failing_ends_in_dlq_with_delivery_failed_event(stack, kafka_server):
    await stack.subscribe(
        "u-down", channel=spb.CHANNEL_WEBHOOK, address=stack.http.url("/down"), sdgs=[14]
    )
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(14,)))

    async def failed():
        rows = await stack.deliveries("u-down")
        return rows if rows and rows[0].status == dpb.DELIVERY_STATUS_FAILED else None

    rows = await eventually(failed, "the delivery to fail for good")
    attempts = rows[0].attempts
    assert [a.outcome for a in attempts] == [
        dpb.ATTEMPT_OUTCOME_FAILED,
        dpb.ATTEMPT_OUTCOME_FAILED,
        dpb.ATTEMPT_OUTCOME_GAVE_UP,
    ]
    assert all(a.response_code == 500 and "HTTP 500" in a.error for a in attempts)

    with Connection(stack.settings.amqp_url) as conn:
        queue = conn.SimpleQueue(topology(stack.settings).dlq)
        message = queue.get(timeout=10)
        assert message.payload["delivery_id"] == rows[0].id
        assert "HTTP 500" in message.headers["reason"]
        message.ack()
        queue.close()

    consumer = AIOKafkaConsumer(
        DELIVERY_TOPIC, bootstrap_servers=kafka_server.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:

        async def event():
            for msgs in (await consumer.getmany(timeout_ms=300)).values():
                for msg in msgs:
                    env = parse_envelope(msg.value)
                    if env.aggregate_id == rows[0].id:
                        return env
            return None

        env = await eventually(event, "DeliveryFailed on Kafka")
    finally:
        await consumer.stop()
    assert env.event_type == "notifications.DeliveryFailed"
    payload = unpack_payload(env, notification_events.DeliveryFailed)
    assert len(payload.delivery.attempts) == 3


async def test_same_event_consumed_twice_sends_nothing_twice(stack):
    address = f"twice-{uuid.uuid4().hex[:6]}@example.org"
    await stack.subscribe("u-twice", address=address, sdgs=[15])
    env = solution_event(sdgs=(15,))
    await stack.publish(SOLUTION_TOPIC, env)
    await stack.publish(SOLUTION_TOPIC, env)
    await eventually(lambda: sent_to(stack, address) == 1, "the e-mail")
    await eventually(lambda: sent_rows(stack, "u-twice"), "the delivery recorded")
    # Also straight through the handler once more, as after a lost offset commit.
    registration = stack.worker.consumer.handlers.get("catalog.SolutionPublished")
    payload = unpack_payload(env, catalog_events.SolutionPublished)
    await run_sync(registration.handler, Event(env, payload, SOLUTION_TOPIC, 0, 0))
    await asyncio.sleep(1.5)
    assert sent_to(stack, address) == 1
    assert len(await stack.deliveries("u-twice")) == 1


async def test_worker_killed_mid_task_the_task_is_sent_once(stack):
    address = f"killed-{uuid.uuid4().hex[:6]}@example.org"
    await stack.subscribe("u-killed", address=address, sdgs=[16])
    stack.smtp.stall_address = address
    stack.smtp.reached.clear()
    stack.smtp.stall.set()
    try:
        await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(16,)))
        await eventually(stack.smtp.reached.is_set, "the worker to be mid-task")
        stack.delivery.kill()
    finally:
        stack.smtp.stall.clear()
    assert sent_to(stack, address) == 0
    stack.delivery.start()
    rows = await eventually(
        lambda: sent_rows(stack, "u-killed"), "the redelivered task to be sent", within=60
    )
    await asyncio.sleep(1.0)
    assert sent_to(stack, address) == 1
    assert [a.outcome for a in rows[0].attempts] == [dpb.ATTEMPT_OUTCOME_SUCCEEDED]


async def test_daily_digest_groups_what_matched(stack):
    address = f"digest-{uuid.uuid4().hex[:6]}@example.org"
    made = await stack.subscribe(
        "u-digest",
        address=address,
        topics=[spb.TOPIC_SOLUTIONS, spb.TOPIC_FUNDING],
        sdgs=[2],
        frequency=spb.FREQUENCY_DAILY,
    )
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(2,), title="Seed banks"))
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(2,), title="Drip kits"))
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(9,), title="Not followed"))
    fid = uuid.uuid4().hex
    funding = funding_pb2.FundingOpportunity(
        id=fid,
        title="Food security grant",
        sdgs=[sdg_pb2.SDG_ZERO_HUNGER],
        funder_organization_id="f1",
    )
    await stack.publish(
        FUNDING_TOPIC,
        build_envelope(
            CATALOG,
            "catalog.FundingPublished",
            fid,
            1,
            catalog_events.FundingPublished(funding_opportunity=funding),
        ),
    )
    store = stack.worker.store

    def kept() -> int:
        return store.digest_items.count_documents({"subscription_id": made.subscription.id})

    await eventually(lambda: kept() == 3, "three items kept for the digest")
    assert sent_to(stack, address) == 0  # nothing instant for a digest subscription
    links = unsubscribe_links(stack.settings)
    later = datetime.now(UTC) + timedelta(days=1, hours=1)
    assert await run_sync(sweep_digests, store, links, later) == 1
    assert await run_sync(sweep_digests, store, links, later) == 0  # a period closes once
    await eventually(lambda: sent_to(stack, address) == 1, "the digest e-mail")
    mail = stack.smtp.to(address)[0]
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain").get_content()
    assert "3 updates" in mail["Subject"]
    assert "New solutions (2)" in text and "Funding opportunities (1)" in text
    assert "Seed banks" in text and "Drip kits" in text and "Food security grant" in text
    assert "Not followed" not in text
    assert text.index("New solutions") < text.index("Funding opportunities")


async def test_funding_deadline_reminder_once_per_deadline(stack):
    address = f"deadline-{uuid.uuid4().hex[:6]}@example.org"
    await stack.subscribe("u-deadline", address=address, topics=[spb.TOPIC_FUNDING], sdgs=[5])
    fid = uuid.uuid4().hex

    def funding(
        days: int, status=funding_pb2.FUNDING_STATUS_OPEN
    ) -> funding_pb2.FundingOpportunity:
        f = funding_pb2.FundingOpportunity(
            id=fid,
            title="Women's enterprise fund",
            sdgs=[sdg_pb2.SDG_GENDER_EQUALITY],
            status=status,
        )
        f.deadline.FromDatetime(datetime.now(UTC) + timedelta(days=days, hours=1))
        return f

    await stack.publish(
        FUNDING_TOPIC,
        build_envelope(
            CATALOG,
            "catalog.FundingPublished",
            fid,
            1,
            catalog_events.FundingPublished(funding_opportunity=funding(3)),
        ),
    )
    await eventually(lambda: sent_to(stack, address) == 1, "the new-funding alert")
    reminders = stack.worker.reminders
    await eventually(
        lambda: stack.worker.store.funding.find_one({"_id": fid}), "the funding read model"
    )
    assert await run_sync(reminders.sweep) == 1
    assert await run_sync(reminders.sweep) == 0
    await eventually(lambda: sent_to(stack, address) == 2, "the reminder")
    assert "Funding deadline in 3 days" in stack.smtp.to(address)[1]["Subject"]

    moved = catalog_events.FundingUpdated(
        funding_opportunity=funding(5), changed_fields=["deadline"]
    )
    await stack.publish(
        FUNDING_TOPIC, build_envelope(CATALOG, "catalog.FundingUpdated", fid, 2, moved)
    )

    async def reminded_again() -> bool:
        return await run_sync(reminders.sweep) == 1

    await eventually(reminded_again, "a reminder for the moved deadline")
    await eventually(lambda: sent_to(stack, address) == 3, "the second reminder")
    assert "in 5 days" in stack.smtp.to(address)[2]["Subject"]

    closed = catalog_events.FundingClosed(
        funding_opportunity=funding(2, funding_pb2.FUNDING_STATUS_CLOSED)
    )
    await stack.publish(
        FUNDING_TOPIC, build_envelope(CATALOG, "catalog.FundingClosed", fid, 3, closed)
    )
    await eventually(
        lambda: (stack.worker.store.funding.find_one({"_id": fid}) or {}).get("status") == "closed",
        "the closed funding",
    )
    assert await run_sync(reminders.sweep) == 0


async def test_one_click_link_in_the_email_unsubscribes(stack):
    address = f"leaver-{uuid.uuid4().hex[:6]}@example.org"
    await stack.subscribe("u-leaver", address=address, sdgs=[11])
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(11,)))
    await eventually(lambda: sent_to(stack, address) == 1, "the first alert")
    link = stack.smtp.to(address)[0]["List-Unsubscribe"].strip("<>")
    token = link.split("token=", 1)[1]
    done = await stack.stub.Unsubscribe(pb.UnsubscribeRequest(token=token))
    assert done.subscription.status == spb.SUBSCRIPTION_STATUS_UNSUBSCRIBED
    # A new subscriber of the same SDG gets the next event; the one who left does not.
    witness = f"witness-{uuid.uuid4().hex[:6]}@example.org"
    await stack.subscribe("u-witness", address=witness, sdgs=[11])
    await stack.publish(SOLUTION_TOPIC, solution_event(sdgs=(11,)))
    await eventually(lambda: sent_to(stack, witness) == 1, "the witness's alert")
    assert sent_to(stack, address) == 1
