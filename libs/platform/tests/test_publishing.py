"""A service's EventFactory: envelopes typed '<domain>.<Message>', from the process's origin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events import publishing
from ssg.platform.events.envelope import Origin, parse_envelope, unpack_payload

ORIGIN = Origin("diagnostics", "africa", "api-1")
TOPIC = "diagnostics.echo-events.v1"


@dataclass(frozen=True)
class EchoEvents(publishing.EventFactory):
    domain: ClassVar[str] = "diagnostics"

    def echoed(self, key: str, version: int, at: datetime) -> publishing.Event:
        return self.event(TOPIC, key, version, EchoRequest(message=key), at)


def test_event_type_is_domain_and_message_name() -> None:
    assert publishing.event_type("catalog", EchoRequest()) == "catalog.EchoRequest"


def test_event_carries_topic_origin_aggregate_and_time() -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    event = EchoEvents(ORIGIN).echoed("e-1", 3, at)
    assert event.topic == TOPIC
    env = parse_envelope(event.envelope.SerializeToString())
    assert env.event_type == "diagnostics.EchoRequest"
    assert (env.aggregate_id, env.aggregate_version) == ("e-1", 3)
    assert (env.instance, env.producer.service, env.producer.instance_id) == (
        "africa",
        "diagnostics",
        "api-1",
    )
    assert env.occurred_at.ToDatetime(tzinfo=UTC) == at
    assert unpack_payload(env, EchoRequest).message == "e-1"
