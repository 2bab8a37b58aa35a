"""Which deliveries of one AMQP channel may be acknowledged together, with one ``multiple`` ack.

RabbitMQ's ``basic.ack(tag, multiple=True)`` settles every outstanding delivery of the channel
up to ``tag``. It may therefore only be sent for a contiguous run of delivery tags that were
all handled (forwarded, duplicate or dead-lettered): a delivery still in the hands of a worker,
or one about to be put back, must never be covered by a later message's ack. Deliveries put
back individually (``basic.reject`` with requeue) are no longer outstanding, so they do not
block the run. The window only keeps the books; the caller sends the ack (ADR 0025).
"""

from __future__ import annotations

from collections import deque

_OPEN = 0  # in a worker's hands
_HANDLED = 1  # handled, waiting for the run below it to be handled too
_PUT_BACK = 2  # settled on its own (rejected with requeue)


class AckWindow:
    """Delivery tags of one channel in delivery order, and the handled prefix to acknowledge."""

    def __init__(self, batch: int) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._batch = batch
        self._order: deque[int] = deque()
        self._state: dict[int, int] = {}
        # Highest tag of the handled prefix not acknowledged yet, and how many it covers.
        self._ack_up_to = 0
        self._unacked = 0

    def received(self, tag: int) -> None:
        """A delivery arrived (tags grow on a channel, so arrival order is tag order)."""
        if self._order and tag <= self._order[-1]:
            raise ValueError(f"delivery tag {tag} is not above {self._order[-1]}")
        self._order.append(tag)
        self._state[tag] = _OPEN

    def handled(self, tag: int) -> int | None:
        """tag may be acknowledged; the tag to ack with ``multiple=True`` now, if it is time."""
        self._settle(tag, _HANDLED)
        return self._due()

    def handled_run(self, tags: list[int]) -> int | None:
        """Every tag of a run may be acknowledged; the tag to ack now, if it is time."""
        for tag in tags:
            self._settle(tag, _HANDLED)
        return self._due()

    def put_back(self, tag: int) -> int | None:
        """tag was rejected with requeue on its own; the tag to ack now, if it is time."""
        self._settle(tag, _PUT_BACK)
        return self._due()

    def flush(self) -> int | None:
        """The tag to ack for whatever handled prefix is waiting (at stop), else None."""
        return self._take()

    def _settle(self, tag: int, state: int) -> None:
        if self._state.get(tag) != _OPEN:
            raise ValueError(f"delivery tag {tag} is not in flight")
        self._state[tag] = state
        # Move the prefix of settled deliveries out of the window.
        while self._order and self._state[self._order[0]] != _OPEN:
            first = self._order.popleft()
            if self._state.pop(first) == _HANDLED:
                self._ack_up_to = first
                self._unacked += 1

    def _due(self) -> int | None:
        # Ack when a batch is ready, or when nothing else is in flight: no later completion
        # would come to send it, and a stopping bridge must leave nothing unacknowledged.
        if self._unacked >= self._batch or not self._order:
            return self._take()
        return None

    def _take(self) -> int | None:
        if not self._unacked:
            return None
        tag, self._ack_up_to, self._unacked = self._ack_up_to, 0, 0
        return tag
