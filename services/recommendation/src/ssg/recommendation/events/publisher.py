"""Envelopes of what the service publishes, added to the outbox in the change's transaction.

``activity.interaction-events.v1``: InteractionRecorded, keyed by user id (one person's
interactions stay in order on one partition, which the worker's counts rely on), version the
recording time in nanoseconds. ``recommendation.match-events.v1``: MatchProposed and
MatchStatusChanged, keyed by match id with the match version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ssg.contracts.recommendation.v1 import events_pb2 as ev
from ssg.contracts.recommendation.v1 import interaction_pb2
from ssg.platform.events import publishing
from ssg.platform.events.envelope import topic_name
from ssg.platform.events.publishing import Event
from ssg.recommendation import mapping
from ssg.recommendation.domain.matches import Match

DOMAIN = "recommendation"
INTERACTION_TOPIC = topic_name("activity", "interaction")
MATCH_TOPIC = topic_name(DOMAIN, "match")
TOPICS = (INTERACTION_TOPIC, MATCH_TOPIC)


@dataclass(frozen=True)
class EventFactory(publishing.EventFactory):
    """Builds the recommendation envelopes of one producing process."""

    domain: ClassVar[str] = DOMAIN

    def interaction_recorded(self, interaction: interaction_pb2.Interaction, at: datetime) -> Event:
        """InteractionRecorded of a complete interaction (id and time set)."""
        version = max(1, int(at.timestamp() * 1_000_000_000))
        payload = ev.InteractionRecorded(interaction=interaction)
        return self.event(INTERACTION_TOPIC, interaction.user_id, version, payload, at)

    def match_proposed(self, m: Match) -> Event:
        """MatchProposed with the new match."""
        payload = ev.MatchProposed(match=mapping.match_to_proto(m))
        return self.event(MATCH_TOPIC, m.id, m.version, payload, m.update_time)

    def match_status_changed(self, m: Match) -> Event:
        """MatchStatusChanged with the match after the change."""
        payload = ev.MatchStatusChanged(match=mapping.match_to_proto(m))
        return self.event(MATCH_TOPIC, m.id, m.version, payload, m.update_time)
