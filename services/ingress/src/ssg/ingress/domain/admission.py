"""Admit one AMQP message: who sent it, may they, is the body valid; build its envelope or say why not.

Checks run cheapest first (size before parsing) and each failure names one ``Reason``: it goes
to the dead-letter queue's headers and to the rejected-messages metric.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.ingress.v1 import events_pb2
from ssg.ingress.domain.catalogue import CATALOGUE, ExternalType
from ssg.ingress.domain.json_mapping import parse_dict
from ssg.ingress.domain.producers import ProducerPolicy
from ssg.platform.events.envelope import Origin, build_envelope
from ssg.platform.tracing import accept_trace_id

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
_PROTOBUF_ALIASES = {PROTOBUF, "application/protobuf", "application/vnd.google.protobuf"}
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
# Fixed forever: event and aggregate ids derived from it must stay the same across releases.
ID_NAMESPACE = uuid.UUID("6f1d3c0e-2b8a-5e4f-9c71-4a0d5b9e8f21")


class Reason(StrEnum):
    """Why a message was dead-lettered (the ``x-ssg-reason`` header, a metric label)."""

    TOO_LARGE = "too_large"
    MISSING_USER_ID = "missing_user_id"
    UNKNOWN_PRODUCER = "unknown_producer"
    UNKNOWN_TYPE = "unknown_type"
    TYPE_NOT_ALLOWED = "type_not_allowed"
    BAD_MESSAGE_ID = "bad_message_id"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    MALFORMED = "malformed"
    SCHEMA_MISMATCH = "schema_mismatch"
    INVALID = "invalid"
    # Valid here, but Kafka refused the record for good (e.g. larger than the broker allows).
    KAFKA_REFUSED = "kafka_refused"
    # The bridge failed on this message (a bug); parked rather than redelivered forever.
    INTERNAL_ERROR = "internal_error"


class Rejected(Exception):
    """A message the bridge will not forward; reason is machine-readable, detail for people."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Incoming:
    """What the bridge reads of one AMQP message (the transport's view, already unwrapped)."""

    routing_key: str
    body: bytes
    content_type: str | None
    user_id: str | None
    message_id: str | None
    trace_id: str | None
    received_at: datetime
    # Application headers as sent (kept on a dead-lettered copy).
    headers: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Admitted:
    """A valid message turned into the envelope to produce, with its topic and key."""

    external_type: ExternalType
    producer: str
    topic: str
    key: bytes
    envelope: envelope_pb2.Envelope


def event_id(producer: str, message_id: str) -> str:
    """The event id of a producer's message: the same message id always gives the same id."""
    digits = _uuid5_hex(f"message\x1f{producer}\x1f{message_id}")
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def aggregate_id(producer: str, routing_key: str, external_id: str) -> str:
    """The aggregate (and Kafka key) of a producer's record: its versions share a partition."""
    return _uuid5_hex(f"record\x1f{producer}\x1f{routing_key}\x1f{external_id}")


def _uuid5_hex(name: str) -> str:
    # uuid.uuid5(ID_NAMESPACE, name).hex without building UUID objects (twice per message).
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


class Admission:
    """The checks every message passes before it may go to Kafka."""

    def __init__(self, policy: ProducerPolicy, origin: Origin, max_body_bytes: int) -> None:
        self._policy = policy
        self._origin = origin
        self._max_body_bytes = max_body_bytes

    def knows(self, producer: str) -> bool:
        """True when producer is configured (a bounded metric label)."""
        return self._policy.knows(producer)

    def admit(self, message: Incoming) -> Admitted:
        """The envelope for message; raise Rejected with the first reason it fails."""
        size = len(message.body)
        if size > self._max_body_bytes:
            raise Rejected(Reason.TOO_LARGE, f"body of {size} bytes exceeds {self._max_body_bytes}")
        producer = message.user_id or ""
        if not producer:
            raise Rejected(Reason.MISSING_USER_ID, "the user_id property must name the producer")
        if not self._policy.knows(producer):
            raise Rejected(Reason.UNKNOWN_PRODUCER, f"producer {producer!r} is not configured")
        external = CATALOGUE.get(message.routing_key)
        if external is None:
            raise Rejected(Reason.UNKNOWN_TYPE, f"no event type {message.routing_key[:100]!r}")
        if not self._policy.may_publish(producer, external.routing_key):
            raise Rejected(
                Reason.TYPE_NOT_ALLOWED, f"{producer!r} may not publish {external.routing_key!r}"
            )
        message_id = message.message_id or ""
        if not _ID.match(message_id):
            raise Rejected(
                Reason.BAD_MESSAGE_ID, "message_id must be 1 to 128 characters of [A-Za-z0-9._:-]"
            )
        body = decode_body(external, message.body, message.content_type)
        external_id = check_body(external, body)
        return self._admitted(external, producer, message_id, external_id, body, message)

    def _admitted(
        self,
        external: ExternalType,
        producer: str,
        message_id: str,
        external_id: str,
        body: Message,
        message: Incoming,
    ) -> Admitted:
        submission = events_pb2.Submission(
            producer=producer, message_id=message_id, routing_key=external.routing_key
        )
        # Timestamp.FromDatetime goes through a time tuple; the instant is all it needs.
        received = message.received_at
        submission.received_at.seconds = int(received.timestamp())
        submission.received_at.nanos = received.microsecond * 1000
        event = external.event(submission=submission, proposal=body)
        aggregate = aggregate_id(producer, external.routing_key, external_id)
        envelope = build_envelope(
            self._origin,
            external.event_type,
            aggregate,
            getattr(body, "revision", 0) or 1,
            event,
            occurred_at=message.received_at,
            trace_id=accept_trace_id(message.trace_id),
            event_id=event_id(producer, message_id),
        )
        return Admitted(external, producer, external.topic, aggregate.encode(), envelope)


def decode_body(external: ExternalType, body: bytes, content_type: str | None) -> Message:
    """Parse body as the type's schema, JSON mapping or binary as content_type says."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    message = external.body()
    if kind == JSON:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejected(Reason.MALFORMED, f"not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise Rejected(Reason.SCHEMA_MISMATCH, "the JSON body must be an object")
        try:
            parse_dict(document, message)
        except json_format.ParseError as exc:
            raise Rejected(Reason.SCHEMA_MISMATCH, str(exc)[:500]) from None
    elif kind in _PROTOBUF_ALIASES:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise Rejected(
                Reason.MALFORMED, f"not a {external.body.DESCRIPTOR.name}: {exc}"
            ) from None
        # Fields of a newer schema are not forwarded: consumers read this schema only.
        message.DiscardUnknownFields()
    else:
        raise Rejected(
            Reason.UNSUPPORTED_CONTENT_TYPE,
            f"content_type must be {JSON} or {PROTOBUF}, got {(content_type or '')[:100]!r}",
        )
    return message


def check_body(external: ExternalType, body: Message) -> str:
    """The body's external id once its required fields are present; Rejected(INVALID) if not."""
    external_id: str = getattr(body, "external_id", "")
    if not _ID.match(external_id):
        raise Rejected(Reason.INVALID, "external_id must be 1 to 128 characters of [A-Za-z0-9._:-]")
    if not body.HasField(external.record_field):
        raise Rejected(Reason.INVALID, f"{external.record_field} is required")
    record = getattr(body, external.record_field)
    for name in external.required:
        if not getattr(record, name):
            raise Rejected(Reason.INVALID, f"{external.record_field}.{name} is required")
    return external_id
