"""Admission rules without any server: every reason, the envelope, deterministic ids."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ssg.contracts.ingress.v1 import events_pb2, proposals_pb2
from ssg.ingress.domain.admission import (
    ID_NAMESPACE,
    Admission,
    Incoming,
    Reason,
    Rejected,
    aggregate_id,
    event_id,
)
from ssg.ingress.domain.catalogue import CATALOGUE, topics
from ssg.ingress.domain.producers import ProducerPolicy
from ssg.platform.events.envelope import Origin, parse_envelope, unpack_payload

from .helpers import body_of

ORIGIN = Origin("ingress", "africa", "bridge-1")
POLICY = ProducerPolicy.from_config(
    {"pm-system": sorted(CATALOGUE), "hr-roster": ["expert.profile"]}, CATALOGUE
)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def message(
    routing_key: str = "expert.profile",
    body: bytes | dict | None = None,
    *,
    user_id: str | None = "pm-system",
    message_id: str | None = "msg-1",
    content_type: str | None = "application/json",
    trace_id: str | None = None,
) -> Incoming:
    if body is None:
        body = body_of(routing_key if routing_key in CATALOGUE else "expert.profile")
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return Incoming(routing_key, data, content_type, user_id, message_id, trace_id, NOW)


def admission(max_body_bytes: int = 4096) -> Admission:
    return Admission(POLICY, ORIGIN, max_body_bytes)


def reason_of(incoming: Incoming, max_body_bytes: int = 4096) -> Reason:
    with pytest.raises(Rejected) as caught:
        admission(max_body_bytes).admit(incoming)
    assert caught.value.detail
    return caught.value.reason


@pytest.mark.parametrize("routing_key", sorted(CATALOGUE))
def test_a_valid_json_body_becomes_the_envelope_of_its_type(routing_key):
    external = CATALOGUE[routing_key]
    body = body_of(routing_key, external_id="rec-7", revision="4")
    admitted = admission().admit(message(routing_key, body, trace_id="trace-0123456789"))

    env = parse_envelope(admitted.envelope.SerializeToString())
    assert admitted.topic == external.topic == f"ingress.{external.entity}-events.v1"
    assert env.event_type == external.event_type
    assert env.event_id == event_id("pm-system", "msg-1")
    assert env.aggregate_id == aggregate_id("pm-system", routing_key, "rec-7")
    assert admitted.key == env.aggregate_id.encode()
    assert env.aggregate_version == 4
    assert env.trace_id == "trace-0123456789"
    assert (env.producer.service, env.producer.instance_id, env.instance) == (
        "ingress",
        "bridge-1",
        "africa",
    )
    assert env.occurred_at.ToDatetime(tzinfo=UTC) == NOW
    event: Any = unpack_payload(env, external.event)
    assert event.submission.producer == "pm-system"
    assert event.submission.received_at.ToDatetime(tzinfo=UTC) == NOW
    assert event.proposal.external_id == "rec-7"


def test_a_binary_body_is_parsed_and_unknown_fields_are_dropped():
    proposal = proposals_pb2.ExpertProfile(external_id="hr-1")
    proposal.expert.display_name = "Amina Diallo"
    # Field 99 is not in the schema: a newer producer's addition.
    data = proposal.SerializeToString() + b"\x9a\x06\x03abc"
    admitted = admission().admit(
        message("expert.profile", data, user_id="hr-roster", content_type="application/x-protobuf")
    )
    event = unpack_payload(admitted.envelope, events_pb2.ExpertProfileProposed)
    assert event.proposal.expert.display_name == "Amina Diallo"
    assert event.proposal.SerializeToString() == proposal.SerializeToString()


def test_a_missing_trace_id_gets_a_fresh_one_and_an_unsafe_one_is_replaced():
    minted = admission().admit(message()).envelope.trace_id
    replaced = admission().admit(message(trace_id="bad trace\n")).envelope.trace_id
    assert len(minted) == 32
    assert replaced != "bad trace\n"
    assert len(replaced) == 32


def test_ids_are_deterministic_and_distinct_per_producer():
    assert event_id("a", "m1") == event_id("a", "m1")
    assert event_id("a", "m1") != event_id("b", "m1")
    assert event_id("a", "m1") != event_id("a", "m2")
    assert aggregate_id("a", "expert.profile", "x") != aggregate_id("a", "solution.proposed", "x")
    # Pinned: changing the namespace would break deduplication across a release.
    assert event_id("pm-system", "msg-1") == "2653aa5b-7ae3-59ae-8249-f736e232813e"


@pytest.mark.parametrize(
    ("incoming", "reason"),
    [
        (message(user_id=None), Reason.MISSING_USER_ID),
        (message(user_id="nobody"), Reason.UNKNOWN_PRODUCER),
        (message("solution.deleted"), Reason.UNKNOWN_TYPE),
        (message("solution.proposed", user_id="hr-roster"), Reason.TYPE_NOT_ALLOWED),
        (message(message_id=None), Reason.BAD_MESSAGE_ID),
        (message(message_id="has space"), Reason.BAD_MESSAGE_ID),
        (message(message_id="x" * 129), Reason.BAD_MESSAGE_ID),
        (message(content_type=None), Reason.UNSUPPORTED_CONTENT_TYPE),
        (message(content_type="text/plain"), Reason.UNSUPPORTED_CONTENT_TYPE),
        (message(body=b"{not json"), Reason.MALFORMED),
        (message(body=b"\xff\xfe"), Reason.MALFORMED),
        (
            message(body=b"\x0a\xff", content_type="application/x-protobuf"),
            Reason.MALFORMED,
        ),
        (message(body=b"[1, 2]"), Reason.SCHEMA_MISMATCH),
        (message(body={"externalId": "x", "expert": {"displayName": 7}}), Reason.SCHEMA_MISMATCH),
        (message(body={"externalId": "x", "expert": {}, "color": "red"}), Reason.SCHEMA_MISMATCH),
        (message(body={"expert": {"displayName": "N"}}), Reason.INVALID),
        (message(body={"externalId": "bad id", "expert": {"displayName": "N"}}), Reason.INVALID),
        (message(body={"externalId": "x"}), Reason.INVALID),
        (message(body={"externalId": "x", "expert": {"biography": "b"}}), Reason.INVALID),
        (
            message("solution.proposed", {"externalId": "x", "solution": {"title": "T"}}),
            Reason.INVALID,
        ),
    ],
)
def test_a_bad_message_is_rejected_with_its_reason(incoming, reason):
    assert reason_of(incoming) is reason


def test_size_is_checked_before_anything_else():
    oversized = message(user_id=None, body=b"{" + b" " * 5000 + b"}")
    assert reason_of(oversized) is Reason.TOO_LARGE
    # At the limit the body is read (and found to lack fields); one byte over, it is not.
    at_limit = message(body=b"{" + b" " * 1022 + b"}")
    assert reason_of(at_limit, max_body_bytes=1024) is Reason.INVALID
    over = message(body=b"{" + b" " * 1023 + b"}")
    assert reason_of(over, max_body_bytes=1024) is Reason.TOO_LARGE


def test_the_policy_refuses_unknown_types_and_empty_names():
    with pytest.raises(ValueError, match=r"solution\.deleted"):
        ProducerPolicy.from_config({"pm": ["solution.deleted"]}, CATALOGUE)
    with pytest.raises(ValueError, match="empty"):
        ProducerPolicy.from_config({"": ["expert.profile"]}, CATALOGUE)
    assert POLICY.may_publish("hr-roster", "expert.profile")
    assert not POLICY.may_publish("hr-roster", "solution.proposed")
    assert not POLICY.may_publish("nobody", "expert.profile")


def test_every_type_has_its_own_topic():
    assert len(set(topics())) == len(CATALOGUE) == 5


@pytest.mark.parametrize("seed", range(20))
def test_ids_are_the_uuid5_of_their_recipe(seed):
    # The ids are computed without uuid.UUID for speed; they must stay the standard UUIDv5.
    producer, message_id, external_id = f"p{seed}", f"m-{seed * 7919}", f"x:{seed}.é"
    assert event_id(producer, message_id) == str(
        uuid.uuid5(ID_NAMESPACE, f"message\x1f{producer}\x1f{message_id}")
    )
    assert (
        aggregate_id(producer, "expert.profile", external_id)
        == uuid.uuid5(ID_NAMESPACE, f"record\x1f{producer}\x1fexpert.profile\x1f{external_id}").hex
    )


def test_the_receipt_time_keeps_its_microseconds():
    at = datetime(2026, 11, 27, 21, 59, 28, 123456, tzinfo=UTC)
    admitted = admission().admit(replace(message(), received_at=at))
    event = unpack_payload(admitted.envelope, events_pb2.ExpertProfileProposed)
    assert event.submission.received_at.ToDatetime(tzinfo=UTC) == at
    assert admitted.envelope.occurred_at.ToDatetime(tzinfo=UTC) == at
