"""Match alerts end to end (Kafka, MongoDB, RabbitMQ, SMTP, an HTTP receiver, the nameko
delivery worker in its own process): a MatchProposed reaches exactly the seeker's and the
provider's subscriptions of the matching topics, by e-mail and webhook, once each, in each
subscription's language, even when the event is consumed twice; an answer to a match reaches
the other side; a match event naming no party is dead-lettered with its reason and the
consumer carries on."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial

import pytest
from aiokafka import AIOKafkaConsumer

from ssg.contracts.notifications.v1 import delivery_pb2 as dpb
from ssg.contracts.notifications.v1 import subscription_pb2 as spb
from ssg.contracts.recommendation.v1 import events_pb2 as rec_events
from ssg.contracts.recommendation.v1 import match_pb2, reason_pb2
from ssg.notifications.domain.signing import verify_webhook_signature
from ssg.notifications.events.items import MATCH_TOPIC
from ssg.platform.events.consumer import Event
from ssg.platform.events.envelope import Origin, build_envelope, dlq_topic, unpack_payload
from ssg.platform.mongo import run_sync
from ssg.testing.receivers import HttpSink
from ssg.testing.waiting import eventually

from .stack import Stack, running_stack, sent_rows, sent_to

RECOMMENDATION = Origin("recommendation", "global", "test-recommendation")
SEEKS = spb.TOPIC_MATCHES_FOR_MY_NEEDS
ANSWERS = spb.TOPIC_NEEDS_FOR_MY_SOLUTIONS


@pytest.fixture(scope="module")
async def stack(mongodb_server, kafka_server, amqp_url, tmp_path_factory) -> AsyncIterator[Stack]:
    async with running_stack(
        mongodb_server,
        kafka_server,
        amqp_url,
        tmp_path_factory.mktemp("matches"),
        HttpSink(),
        [MATCH_TOPIC],
    ) as running:
        yield running


def new_match(seeker: str, provider: str, status=match_pb2.MATCH_STATUS_PROPOSED, **kw):
    fields = dict(
        id=f"m-{uuid.uuid4().hex[:12]}",
        need_id=f"need-{uuid.uuid4().hex[:8]}",
        solution_id=f"sol-{uuid.uuid4().hex[:8]}",
        seeker_organization_id=seeker,
        provider_organization_id=provider,
        status=status,
        score=0.74,
        reasons=[reason_pb2.Reason(code="sdg_focus", text="both work on SDG 6", weight=0.4)],
        version=1,
    )
    fields.update(kw)
    return match_pb2.Match(**fields)


def proposed(m: match_pb2.Match):
    return build_envelope(
        RECOMMENDATION,
        "recommendation.MatchProposed",
        m.id,
        m.version,
        rec_events.MatchProposed(match=m),
    )


def status_changed(m: match_pb2.Match):
    return build_envelope(
        RECOMMENDATION,
        "recommendation.MatchStatusChanged",
        m.id,
        m.version,
        rec_events.MatchStatusChanged(match=m),
    )


def orgs() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"seeker-{tag}", f"provider-{tag}"


async def follow(stack: Stack, subject: str, org: str, topic, **fields):
    """A member of org subscribes the organization to topic."""
    return await stack.subscribe(subject, org=org, organization_id=org, topics=[topic], **fields)


async def test_proposal_reaches_both_parties_once_each_even_consumed_twice(stack):
    seeker, provider = orgs()
    mails = {k: f"{k}-{seeker}@example.org" for k in ("seeker", "provider", "wrong", "other")}
    await follow(stack, f"u-{seeker}", seeker, SEEKS, address=mails["seeker"], language="fr")
    seeker_hook = await follow(
        stack,
        f"u2-{seeker}",
        seeker,
        SEEKS,
        channel=spb.CHANNEL_WEBHOOK,
        address=stack.http.url(f"/{seeker}"),
    )
    await follow(
        stack, f"u-{provider}", provider, ANSWERS, address=mails["provider"], language="es"
    )
    provider_hook = await follow(
        stack,
        f"u2-{provider}",
        provider,
        ANSWERS,
        channel=spb.CHANNEL_WEBHOOK,
        address=stack.http.url(f"/{provider}"),
    )
    # Not recipients: the provider following the seeker's side, an unrelated organization,
    # a follower of every new need.
    await follow(stack, f"u3-{provider}", provider, SEEKS, address=mails["wrong"])
    await follow(stack, f"u-other-{seeker}", f"other-{seeker}", SEEKS, address=mails["other"])
    content = f"needs-{seeker}@example.org"
    await stack.subscribe(f"u-needs-{seeker}", address=content, topics=[spb.TOPIC_NEEDS])

    match = new_match(seeker, provider)
    env = proposed(match)
    await stack.publish(MATCH_TOPIC, env)
    await stack.publish(MATCH_TOPIC, env)  # redelivered by the broker

    await eventually(lambda: sent_to(stack, mails["seeker"]) == 1, "the seeker's e-mail")
    await eventually(lambda: sent_to(stack, mails["provider"]) == 1, "the provider's e-mail")
    await eventually(lambda: len(stack.http.at(f"/{seeker}")) == 1, "the seeker's webhook")
    await eventually(lambda: len(stack.http.at(f"/{provider}")) == 1, "the provider's webhook")

    # Each side reads its own alert, in its subscription's language.
    assert (
        "Une solution est proposée pour votre besoin"
        in stack.smtp.to(mails["seeker"])[0]["Subject"]
    )
    assert (
        "Una necesidad que su solución podría atender"
        in stack.smtp.to(mails["provider"])[0]["Subject"]
    )
    for org, hook in ((seeker, seeker_hook), (provider, provider_hook)):
        request = stack.http.at(f"/{org}")[0]
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert verify_webhook_signature(
            hook.webhook_secret,
            int(headers["x-ssg-timestamp"]),
            request.body,
            headers["x-ssg-signature"],
            int(time.time()),
        )
        body = json.loads(request.body)
        assert body["event_id"] == env.event_id and body["language"] == "en"
        assert body["item"]["kind"] == "match" and body["item"]["id"] == match.id
        assert body["item"]["organization_id"] == org
        assert body["item"]["details"]["need"] == match.need_id

    # The handler once more, as after a lost offset commit.
    registration = stack.worker.consumer.handlers.get("recommendation.MatchProposed")
    payload = unpack_payload(env, rec_events.MatchProposed)
    await run_sync(registration.handler, Event(env, payload, MATCH_TOPIC, 0, 0))
    for subject in (f"u-{seeker}", f"u2-{seeker}", f"u-{provider}", f"u2-{provider}"):
        rows = await eventually(partial(sent_rows, stack, subject), f"{subject} sent")
        assert [r.event_id for r in rows] == [env.event_id]
    await asyncio.sleep(1.5)  # anything extra would have arrived by now
    assert sent_to(stack, mails["seeker"]) == 1 and sent_to(stack, mails["provider"]) == 1
    assert len(stack.http.at(f"/{seeker}")) == 1 and len(stack.http.at(f"/{provider}")) == 1
    assert sent_to(stack, mails["wrong"]) == sent_to(stack, mails["other"]) == 0
    # Other tests' new needs may reach this follower of every need; this proposal must not.
    assert env.event_id not in {d.event_id for d in await stack.deliveries(f"u-needs-{seeker}")}
    assert await stack.deliveries(f"u3-{provider}") == []


async def test_an_answer_reaches_the_other_side(stack):
    seeker, provider = orgs()
    seeker_mail, provider_mail = f"s-{seeker}@example.org", f"p-{provider}@example.org"
    await follow(stack, f"u-{seeker}", seeker, SEEKS, address=seeker_mail)
    await follow(stack, f"u-{provider}", provider, ANSWERS, address=provider_mail)
    match = new_match(seeker, provider)
    await stack.publish(MATCH_TOPIC, proposed(match))
    await eventually(lambda: sent_to(stack, seeker_mail) == 1, "the seeker's proposal")
    await eventually(lambda: sent_to(stack, provider_mail) == 1, "the provider's proposal")

    accepted = match_pb2.Match()
    accepted.CopyFrom(match)
    accepted.status = match_pb2.MATCH_STATUS_SEEKER_ACCEPTED
    accepted.version = 2
    accepted.history.append(
        match_pb2.MatchStep(
            status=match_pb2.MATCH_STATUS_SEEKER_ACCEPTED, actor="u", organization_id=seeker
        )
    )
    await stack.publish(MATCH_TOPIC, status_changed(accepted))
    await eventually(lambda: sent_to(stack, provider_mail) == 2, "the provider told")
    assert "The seeker accepted the match" in stack.smtp.to(provider_mail)[1]["Subject"]
    await asyncio.sleep(1.0)
    assert sent_to(stack, seeker_mail) == 1  # the side that answered is not told


async def test_match_naming_no_party_is_dead_lettered_and_the_consumer_carries_on(
    stack, kafka_server
):
    seeker, provider = orgs()
    mail = f"s-{seeker}@example.org"
    await follow(stack, f"u-{seeker}", seeker, SEEKS, address=mail)
    poison = proposed(new_match(seeker, ""))
    good = proposed(new_match(seeker, provider))
    # One key for both: same partition, the good one behind the poison one.
    for env in (poison, good):
        await stack.producer.send_and_wait(
            MATCH_TOPIC, env.SerializeToString(), key=seeker.encode()
        )
    await eventually(lambda: sent_to(stack, mail) == 1, "the good match after the poison one")

    consumer = AIOKafkaConsumer(
        dlq_topic(MATCH_TOPIC),
        bootstrap_servers=kafka_server.bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        found: list = []

        async def dead_lettered() -> bool:
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                found.extend(m for m in messages if poison.aggregate_id.encode() in m.value)
            return bool(found)

        await eventually(dead_lettered, "the poison match on the dead-letter topic")
    finally:
        await consumer.stop()
    reason = dict(found[0].headers)["dlq-reason"]
    assert b"match without provider_organization_id" in reason
    rows = await eventually(lambda: sent_rows(stack, f"u-{seeker}"), "the good match sent")
    assert [r.event_id for r in rows] == [good.event_id]
    assert all(r.status == dpb.DELIVERY_STATUS_SENT for r in rows)
