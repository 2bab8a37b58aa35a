"""Topics the search service reads (owned by registration and catalog) and the one it writes."""

from __future__ import annotations

from ssg.platform.events.envelope import topic_name

ORGANIZATION_TOPIC = topic_name("registration", "organization")
EXPERT_TOPIC = topic_name("registration", "expert")
SOLUTION_TOPIC = topic_name("catalog", "solution")
KNOWLEDGE_TOPIC = topic_name("catalog", "knowledge")
NEED_TOPIC = topic_name("catalog", "need")
FUNDING_TOPIC = topic_name("catalog", "funding")

SOURCE_TOPICS = (
    ORGANIZATION_TOPIC,
    EXPERT_TOPIC,
    SOLUTION_TOPIC,
    KNOWLEDGE_TOPIC,
    NEED_TOPIC,
    FUNDING_TOPIC,
)

SEARCH_EVENTS_TOPIC = topic_name("activity", "search")
