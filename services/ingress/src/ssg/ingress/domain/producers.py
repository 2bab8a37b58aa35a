"""Which producer (RabbitMQ user) may publish which external types: from configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProducerPolicy:
    """Producer name -> the routing keys it may publish; anyone else is unknown."""

    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Iterable[str]], known_types: Iterable[str]
    ) -> ProducerPolicy:
        """Build from ``{producer: [type, ...]}``; ValueError names an unknown type."""
        known = set(known_types)
        allowed: dict[str, frozenset[str]] = {}
        for producer, types in config.items():
            if not producer:
                raise ValueError("a producer name must not be empty")
            wanted = frozenset(types)
            unknown = sorted(wanted - known)
            if unknown:
                raise ValueError(f"producer {producer!r} is allowed unknown types {unknown}")
            allowed[producer] = wanted
        return cls(allowed)

    def knows(self, producer: str) -> bool:
        """True when producer is configured at all."""
        return producer in self.allowed

    def may_publish(self, producer: str, routing_key: str) -> bool:
        """True when producer may publish routing_key."""
        return routing_key in self.allowed.get(producer, frozenset())
