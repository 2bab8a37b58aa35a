"""The messages between the worker and the delivery processes (JSON over RabbitMQ): a
delivery task, and the result of one attempt at it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ssg.notifications.domain.model import AttemptOutcome, Channel


class BadTask(ValueError):
    """A message that is not a task or a result; dead-lettered, never retried."""


@dataclass(frozen=True)
class DeliveryTask:
    """Everything a delivery worker needs to send one delivery; attempt counts from 1."""

    delivery_id: str
    subscription_id: str
    channel: int
    address: str
    subject: str
    text: str
    html: str
    body: str
    event_type: str
    # Seconds since the epoch: delivery latency is measured from here.
    event_time: float
    unsubscribe_url: str = ""
    attempt: int = 1

    def to_json(self) -> dict[str, Any]:
        """The message body."""
        # Every field is a plain value: a shallow copy does what asdict's deep copy would.
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: object) -> DeliveryTask:
        """Parse a message body; BadTask when it is not a task."""
        try:
            task = cls(**data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise BadTask(f"not a delivery task: {exc}") from None
        if task.channel not in Channel._value2member_map_ or task.attempt < 1:
            raise BadTask("unknown channel or attempt number")
        return task

    def next_attempt(self) -> DeliveryTask:
        """The same task, one attempt later."""
        return replace(self, attempt=self.attempt + 1)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did; final when no further attempt follows."""

    delivery_id: str
    attempt: int
    outcome: int
    at: float
    response_code: int = 0
    error: str = ""

    @property
    def final(self) -> bool:
        """True for a success or a give-up."""
        return self.outcome in (AttemptOutcome.SUCCEEDED, AttemptOutcome.GAVE_UP)

    def to_json(self) -> dict[str, Any]:
        """The message body."""
        # Every field is a plain value: a shallow copy does what asdict's deep copy would.
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: object) -> AttemptResult:
        """Parse a message body; BadTask when it is not a result."""
        try:
            result = cls(**data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise BadTask(f"not an attempt result: {exc}") from None
        if result.outcome not in AttemptOutcome._value2member_map_:
            raise BadTask("unknown outcome")
        return result
