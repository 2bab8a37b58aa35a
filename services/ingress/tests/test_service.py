"""The service's decisions with nameko's worker_factory: forward, drop a repeat, dead-letter, put back.

Kafka and the dead-letter exchange are in-memory stand-ins here (the real ones are exercised
by test_bridge.py); the admission rules and the recent ids are the real objects.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from nameko.testing.services import worker_factory

from ssg.ingress.domain.admission import (
    Admission,
    Admitted,
    Incoming,
    Reason,
    Rejected,
    event_id,
)
from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.ingress.domain.producers import ProducerPolicy
from ssg.ingress.events.kafka_sink import KafkaRefused, KafkaUnavailable
from ssg.ingress.events.recent import RecentIds
from ssg.ingress.service import IngressBridge, Outcome
from ssg.platform.events.envelope import Origin

from .helpers import body_of


class MemoryKafka:
    """Records what was produced; fails while ``down``, refuses every record while ``refusing``."""

    def __init__(self) -> None:
        self.produced: list[Admitted] = []
        self.down = False
        self.refusing = False

    def send(self, admitted: Admitted) -> float:
        if self.down:
            raise KafkaUnavailable("broker down")
        if self.refusing:
            raise KafkaRefused("MessageSizeTooLargeError")
        self.produced.append(admitted)
        return 0.001

    def send_all(self, run: list[Admitted]) -> list[float | Exception]:
        results: list[float | Exception] = []
        for admitted in run:
            try:
                results.append(self.send(admitted))
            except (KafkaRefused, KafkaUnavailable) as exc:
                results.append(exc)
        return results


class MemoryDeadLetters:
    """Records what was dead-lettered; fails while ``down``."""

    def __init__(self) -> None:
        self.published: list[tuple[Incoming, Rejected]] = []
        self.down = False

    def publish(self, message: Incoming, rejected: Rejected) -> None:
        if self.down:
            raise ConnectionError("dead-letter exchange unreachable")
        self.published.append((message, rejected))


def bridge(
    kafka: MemoryKafka | None = None, admission: type[Admission] = Admission
) -> tuple[IngressBridge, MemoryKafka, MemoryDeadLetters]:
    policy = ProducerPolicy.from_config({"pm-system": sorted(CATALOGUE)}, CATALOGUE)
    kafka, dead = kafka or MemoryKafka(), MemoryDeadLetters()
    service = worker_factory(
        IngressBridge,
        admission=admission(policy, Origin("ingress", "global", "t"), 4096),
        recent=RecentIds(100),
        kafka=kafka,
        dead_letters=dead,
    )
    return service, kafka, dead


def incoming(message_id: str = "m-1", user_id: str | None = "pm-system") -> Incoming:
    body = json.dumps(body_of("expert.profile")).encode()
    return Incoming(
        "expert.profile", body, "application/json", user_id, message_id, None, datetime.now(UTC)
    )


def test_a_valid_message_is_produced_once_and_a_repeat_is_acknowledged_only():
    service, kafka, dead = bridge()
    assert service.receive(incoming("m-1")) is Outcome.ACCEPTED
    assert service.receive(incoming("m-1")) is Outcome.DUPLICATE
    assert service.receive(incoming("m-2")) is Outcome.ACCEPTED
    ids = [admitted.envelope.event_id for admitted in kafka.produced]
    assert len(ids) == 2
    assert ids[0] != ids[1]
    assert dead.published == []


def test_an_invalid_message_is_dead_lettered_not_produced():
    service, kafka, dead = bridge()
    assert service.receive(incoming(user_id=None)) is Outcome.REJECTED
    assert kafka.produced == []
    ((message, rejected),) = dead.published
    assert rejected.reason is Reason.MISSING_USER_ID
    assert message.message_id == "m-1"


def test_kafka_down_raises_so_the_message_goes_back_and_is_not_remembered():
    service, kafka, _ = bridge()
    kafka.down = True
    with pytest.raises(KafkaUnavailable):
        service.receive(incoming("m-1"))
    kafka.down = False
    # Not taken for a duplicate: the first attempt never reached Kafka.
    assert service.receive(incoming("m-1")) is Outcome.ACCEPTED
    assert len(kafka.produced) == 1


def test_a_failed_dead_letter_publish_raises_so_the_message_goes_back():
    service, _, dead = bridge()
    dead.down = True
    with pytest.raises(ConnectionError):
        service.receive(incoming(user_id="nobody"))
    dead.down = False
    assert service.receive(incoming(user_id="nobody")) is Outcome.REJECTED
    assert dead.published[0][1].reason is Reason.UNKNOWN_PRODUCER


def test_recent_ids_forget_the_oldest_beyond_capacity():
    recent = RecentIds(2)
    for id_ in ("a", "b", "c"):
        recent.add(id_)
    assert "a" not in recent
    assert "b" in recent and "c" in recent
    assert len(recent) == 2
    disabled = RecentIds(0)
    disabled.add("a")
    assert "a" not in disabled
    assert disabled.claim("a") and disabled.claim("a")


def test_a_claim_holds_while_the_first_copy_is_in_flight_and_a_release_frees_it():
    recent = RecentIds(10)
    assert recent.claim("e1")
    assert not recent.claim("e1")
    recent.release("e1")
    assert recent.claim("e1")


def test_a_repeat_arriving_while_the_first_copy_is_produced_is_not_produced():
    repeats: list[Outcome] = []

    class ReentrantKafka(MemoryKafka):
        """Delivers the repeat while the first copy is still being produced."""

        def send(self, admitted: Admitted) -> float:
            if not repeats:
                repeats.append(service.receive(incoming("m-1")))
            return super().send(admitted)

    reentrant = ReentrantKafka()
    service, _, _ = bridge(reentrant)
    assert service.receive(incoming("m-1")) is Outcome.ACCEPTED
    assert repeats == [Outcome.DUPLICATE]
    assert len(reentrant.produced) == 1


def test_an_unexpected_produce_failure_releases_the_claim():
    class Exploding(MemoryKafka):
        """Raises something unexpected once, then works."""

        def send(self, admitted: Admitted) -> float:
            if not self.produced and not getattr(self, "exploded", False):
                self.exploded = True
                raise ValueError("unexpected")
            return super().send(admitted)

    service, kafka, _ = bridge(Exploding())
    with pytest.raises(ValueError):
        service.receive(incoming("m-1"))
    assert service.receive(incoming("m-1")) is Outcome.ACCEPTED
    assert len(kafka.produced) == 1


def test_a_record_kafka_refuses_for_good_is_dead_lettered_not_retried():
    service, kafka, dead = bridge()
    kafka.refusing = True
    assert service.receive(incoming("m-1")) is Outcome.REJECTED
    assert dead.published[0][1].reason is Reason.KAFKA_REFUSED
    assert kafka.produced == []


class BrokenAdmission(Admission):
    """Admission with a bug: every message makes it raise."""

    def admit(self, message: Incoming) -> Admitted:
        raise RuntimeError("bug")


def test_a_bug_in_admission_parks_the_message_instead_of_redelivering_it():
    service, kafka, dead = bridge(admission=BrokenAdmission)
    assert service.receive(incoming()) is Outcome.REJECTED
    assert dead.published[0][1].reason is Reason.INTERNAL_ERROR
    assert kafka.produced == []


def test_the_trace_id_of_a_message_is_kept_and_a_bad_one_replaced():
    service, kafka, dead = bridge()
    good = replace(incoming("m-1"), trace_id="trace-0123456789")
    bad = replace(incoming("m-2", user_id="nobody"), trace_id="not a trace id")
    service.receive(good)
    service.receive(bad)
    assert kafka.produced[0].envelope.trace_id == "trace-0123456789"
    assert dead.published[0][0].trace_id not in (None, "not a trace id")


class FailingOne(MemoryKafka):
    """Kafka that fails the record of one message id and takes the others."""

    def send(self, admitted: Admitted) -> float:
        if admitted.envelope.event_id == event_id("pm-system", "m-2"):
            raise KafkaUnavailable("no report in time")
        return super().send(admitted)


def test_a_run_settles_each_message_on_its_own():
    service, kafka, dead = bridge(FailingOne())
    service.receive(incoming("m-3"))
    run = [incoming("m-1"), incoming("m-2"), incoming("m-3"), incoming("m-4", user_id=None)]
    outcomes = service.receive_run(run)
    assert outcomes[0] is Outcome.ACCEPTED
    assert isinstance(outcomes[1], KafkaUnavailable)  # this one alone goes back
    assert outcomes[2] is Outcome.DUPLICATE
    assert outcomes[3] is Outcome.REJECTED
    assert [a.envelope.event_id for a in kafka.produced] == [
        event_id("pm-system", m) for m in ("m-3", "m-1")
    ]
    assert dead.published[0][1].reason is Reason.MISSING_USER_ID
    # The failed record's claim was released: its redelivery is produced.
    kafka.produced.clear()
    assert service.receive_run([incoming("m-5"), incoming("m-1")]) == [
        Outcome.ACCEPTED,
        Outcome.DUPLICATE,
    ]
