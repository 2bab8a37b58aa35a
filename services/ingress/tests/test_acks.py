"""The ack window: one multiple ack covers only a contiguous run of handled deliveries."""

from __future__ import annotations

import pytest

from ssg.ingress.amqp.acks import AckWindow


def window(batch: int, tags: range) -> AckWindow:
    made = AckWindow(batch)
    for tag in tags:
        made.received(tag)
    return made


def test_a_run_of_handled_deliveries_is_acked_once_a_batch_is_ready():
    acks = window(3, range(1, 8))
    assert acks.handled(1) is None
    assert acks.handled(2) is None
    assert acks.handled(3) == 3
    assert acks.handled(4) is None


def test_a_delivery_in_flight_holds_back_every_later_one():
    acks = window(2, range(1, 6))
    assert acks.handled(2) is None
    assert acks.handled(3) is None
    assert acks.handled(4) is None  # 1 is still in a worker's hands: nothing may be acked
    assert acks.handled(1) == 4


def test_a_delivery_being_dead_lettered_is_not_covered_by_a_later_ack():
    acks = window(1, range(1, 4))
    assert acks.handled(1) == 1
    # 2 is still being dead-lettered when 3 is handled: an ack of 3 would settle 2 too.
    assert acks.handled(3) is None
    assert acks.handled(2) == 3


def test_a_delivery_put_back_on_its_own_no_longer_holds_the_run():
    acks = window(5, range(1, 5))
    assert acks.handled(1) is None
    assert acks.handled(3) is None
    # 2 was rejected with requeue, so it is not outstanding; 4 is, so the run waits.
    assert acks.put_back(2) is None
    assert acks.handled(4) == 4


def test_a_run_of_only_put_back_deliveries_sends_no_ack():
    acks = window(1, range(1, 3))
    assert acks.put_back(1) is None
    assert acks.put_back(2) is None
    assert acks.flush() is None


def test_the_last_delivery_in_flight_sends_the_ack_of_what_waits():
    acks = window(10, range(1, 4))
    assert acks.handled(1) is None
    assert acks.handled(2) is None
    assert acks.handled(3) == 3  # nothing else in flight: no later completion would send it
    acks.received(4)
    assert acks.flush() is None
    assert acks.handled(4) == 4


def test_a_batch_of_one_acks_each_delivery():
    acks = window(1, range(1, 4))
    assert [acks.handled(tag) for tag in (1, 2, 3)] == [1, 2, 3]


def test_tags_must_grow_and_be_settled_once():
    acks = window(2, range(5, 7))
    with pytest.raises(ValueError, match="not above"):
        acks.received(6)
    assert acks.handled(5) is None
    with pytest.raises(ValueError, match="not in flight"):
        acks.handled(5)
    with pytest.raises(ValueError, match="not in flight"):
        acks.put_back(9)
    with pytest.raises(ValueError, match="at least 1"):
        AckWindow(0)


def test_a_handled_run_is_acked_with_one_tag_and_never_past_a_delivery_in_flight():
    acks = window(4, range(1, 10))
    assert acks.handled_run([2, 3, 4, 5]) is None  # 1 is still in a worker's hands
    assert acks.handled_run([1]) == 5
    assert acks.handled_run([6, 7]) is None  # a smaller run waits for the batch ...
    assert acks.handled_run([8, 9]) == 9  # ... or for nothing left in flight
