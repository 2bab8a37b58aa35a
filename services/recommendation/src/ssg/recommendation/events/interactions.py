"""Profiles, popularity and co-interaction counts kept from ``activity.interaction-events.v1``.

Handled exactly once per event id: the consumer marks the event in ``processed_events`` in the
same transaction as these writes, and the topic is keyed by user id, so one person's
interactions are applied in order by whichever worker owns their partition.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ssg.contracts.recommendation.v1 import events_pb2 as ev
from ssg.platform.events.consumer import Event, HandlerRegistry, NonRetryableError
from ssg.recommendation.domain.profile import organization_key, user_key
from ssg.recommendation.events.publisher import DOMAIN
from ssg.recommendation.mapping import interaction_kind_from_proto
from ssg.recommendation.personal import PersonalLists
from ssg.recommendation.store.mongo import InteractionFacts, MongoStore


def interaction_facts(event: Event[ev.InteractionRecorded]) -> InteractionFacts:
    """The facts of an InteractionRecorded event; NonRetryableError when incomplete."""
    i = event.payload.interaction
    if not i.user_id or not i.item_id:
        raise NonRetryableError("interaction without user_id or item_id")
    try:
        kind = interaction_kind_from_proto(i.kind)
    except ValueError:
        raise NonRetryableError(f"interaction kind {i.kind} is not known") from None
    at = i.occur_time if i.HasField("occur_time") else event.envelope.occurred_at
    return InteractionFacts(
        i.user_id, i.organization_id, i.item_id, kind, at.ToDatetime(tzinfo=UTC)
    )


def interaction_handlers(store: MongoStore, lists: PersonalLists | None = None) -> HandlerRegistry:
    """The InteractionRecorded handler; with lists, it also stores the changed profiles'
    recommendation lists in the same transaction (ADR 0054)."""
    handlers = HandlerRegistry()

    def apply(event: Event[Any]) -> None:
        facts = interaction_facts(event)
        store.record_interaction(facts, store.get_item(facts.item_id, event.session), event.session)
        if lists is not None:
            subjects = [(user_key(facts.user_id), "")]
            if facts.organization_id:
                subjects.append((organization_key(facts.organization_id), facts.organization_id))
            lists.refresh(subjects, event.session)

    handlers.add(f"{DOMAIN}.InteractionRecorded", ev.InteractionRecorded, apply)
    return handlers
