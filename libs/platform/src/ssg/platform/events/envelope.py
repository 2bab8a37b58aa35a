"""Build and parse ``ssg.events.v1.Envelope``: the value of every Kafka message."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.tracing import current_trace_id, new_trace_id

Envelope = envelope_pb2.Envelope
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9]*\.[A-Z][A-Za-z0-9]*\Z")
_TOPIC = re.compile(r"^[a-z][a-z0-9]*\.[a-z][a-z0-9-]*-events\.v[1-9][0-9]*\Z")
MAX_ENVELOPE_BYTES = 1024 * 1024
M = TypeVar("M", bound=Message)


class EnvelopeError(ValueError):
    """A message is not a valid envelope; the reason says why (it goes to the DLQ header)."""


@dataclass(frozen=True)
class Origin:
    """Who is producing: fixed per process."""

    service: str
    instance: str
    instance_id: str


def topic_name(domain: str, entity: str, version: int = 1) -> str:
    """``<domain>.<entity>-events.v<version>``, e.g. ``catalog.solution-events.v1``."""
    name = f"{domain}.{entity}-events.v{version}"
    if not _TOPIC.match(name):
        raise ValueError(f"not a valid topic name: {name!r}")
    return name


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return f"{topic}.dlq"


def build_envelope(
    origin: Origin,
    event_type: str,
    aggregate_id: str,
    aggregate_version: int,
    payload: Message,
    *,
    schema_version: int = 1,
    occurred_at: datetime | None = None,
    trace_id: str | None = None,
    event_id: str | None = None,
) -> envelope_pb2.Envelope:
    """A complete envelope around payload; the trace id defaults to the current one."""
    if not _EVENT_TYPE.match(event_type):
        raise ValueError(f"event_type must look like 'domain.EventName', got {event_type!r}")
    if not aggregate_id:
        raise ValueError("aggregate_id must not be empty")
    if aggregate_version < 1:
        raise ValueError("aggregate_version starts at 1")
    env = envelope_pb2.Envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        schema_version=schema_version,
        instance=origin.instance,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        trace_id=trace_id or current_trace_id() or new_trace_id(),
    )
    env.producer.service = origin.service
    env.producer.instance_id = origin.instance_id
    env.occurred_at.FromDatetime(occurred_at or datetime.now(UTC))
    env.payload.Pack(payload)
    return env


def parse_envelope(data: bytes | None) -> envelope_pb2.Envelope:
    """Decode and check a Kafka message value; raise EnvelopeError with the reason."""
    if data is None:
        raise EnvelopeError("empty message value (tombstone)")
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"message of {len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(data)
    except DecodeError as exc:
        raise EnvelopeError(f"not an Envelope: {exc}") from None
    for field in ("event_id", "event_type", "aggregate_id"):
        if not getattr(env, field):
            raise EnvelopeError(f"envelope field {field} is empty")
    if not env.HasField("payload"):
        raise EnvelopeError("envelope has no payload")
    if env.HasField("occurred_at"):
        try:
            env.occurred_at.ToDatetime()
        except (ValueError, OverflowError):
            raise EnvelopeError("envelope field occurred_at is out of range") from None
    return env


def unpack_payload(env: envelope_pb2.Envelope, message_type: type[M]) -> M:
    """The payload as message_type; EnvelopeError if it holds another type."""
    payload = message_type()
    try:
        unpacked = env.payload.Unpack(payload)
    except DecodeError as exc:  # the right type name around bytes that do not parse
        raise EnvelopeError(f"payload {env.payload.TypeName()} does not decode: {exc}") from None
    if not unpacked:
        raise EnvelopeError(
            f"payload is {env.payload.TypeName()}, expected {message_type.DESCRIPTOR.full_name}"
        )
    return payload
