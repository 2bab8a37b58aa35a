"""The event envelope: built complete, parsed strictly, payloads typed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ssg.contracts.diagnostics.v1 import diagnostics_pb2
from ssg.platform.events.envelope import (
    EnvelopeError,
    Origin,
    build_envelope,
    dlq_topic,
    parse_envelope,
    topic_name,
    unpack_payload,
)
from ssg.platform.tracing import bound_trace_id

ORIGIN = Origin(service="catalog", instance="africa", instance_id="catalog-0")


def _envelope(**kwargs: Any) -> bytes:
    env = build_envelope(
        ORIGIN,
        "catalog.SolutionPublished",
        "sol-1",
        3,
        diagnostics_pb2.EchoRequest(message="x"),
        **kwargs,
    )
    return env.SerializeToString()


def test_round_trip_keeps_every_field() -> None:
    when = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    with bound_trace_id("trace-123456789"):
        env = parse_envelope(_envelope(occurred_at=when))
    assert env.event_type == "catalog.SolutionPublished"
    assert env.aggregate_id == "sol-1"
    assert env.aggregate_version == 3
    assert env.instance == "africa"
    assert env.producer.service == "catalog"
    assert env.producer.instance_id == "catalog-0"
    assert env.trace_id == "trace-123456789"
    assert env.occurred_at.ToDatetime(tzinfo=UTC) == when
    assert len(env.event_id) == 36
    assert unpack_payload(env, diagnostics_pb2.EchoRequest).message == "x"


def test_unique_event_ids() -> None:
    assert parse_envelope(_envelope()).event_id != parse_envelope(_envelope()).event_id


def test_wrong_payload_type_is_an_envelope_error() -> None:
    env = parse_envelope(_envelope())
    with pytest.raises(EnvelopeError, match=r"expected ssg\.diagnostics\.v1\.EchoResponse"):
        unpack_payload(env, diagnostics_pb2.EchoResponse)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "tombstone"),
        (b"\xff\xfe not protobuf", "not an Envelope"),
        (b"", "event_id is empty"),
    ],
)
def test_bad_messages_say_why(data: bytes | None, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        parse_envelope(data)


@pytest.mark.parametrize(
    ("event_type", "aggregate_id", "version"),
    [("SolutionPublished", "a", 1), ("catalog.SolutionPublished", "", 1), ("catalog.X", "a", 0)],
)
def test_build_rejects_incomplete_events(event_type: str, aggregate_id: str, version: int) -> None:
    with pytest.raises(ValueError):
        build_envelope(ORIGIN, event_type, aggregate_id, version, diagnostics_pb2.EchoRequest())


def test_topic_names() -> None:
    assert topic_name("catalog", "solution") == "catalog.solution-events.v1"
    assert topic_name("registration", "organization", 2) == "registration.organization-events.v2"
    assert dlq_topic("catalog.solution-events.v1") == "catalog.solution-events.v1.dlq"
    with pytest.raises(ValueError):
        topic_name("Catalog", "solution")


def test_corrupt_payload_of_the_right_type_is_an_envelope_error() -> None:
    env = parse_envelope(_envelope())
    env.payload.value = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, length far beyond the data
    with pytest.raises(EnvelopeError, match="does not decode"):
        unpack_payload(parse_envelope(env.SerializeToString()), diagnostics_pb2.EchoRequest)


def test_occurred_at_out_of_range_is_an_envelope_error() -> None:
    env = parse_envelope(_envelope())
    env.occurred_at.seconds = 10**13
    with pytest.raises(EnvelopeError, match="occurred_at"):
        parse_envelope(env.SerializeToString())
