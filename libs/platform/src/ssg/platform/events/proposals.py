"""Consuming the ingress bridge's proposal topics (ADR 0021, 0022): the topics, and the glue
every owning service's handler shares: read the proposal's name and revision from the event,
turn a refusal into a dead letter with its reason, and a record named but not known yet into a
bounded wait (``NotKnownYet``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter

from ssg.platform.events.consumer import Event, NonRetryableError, NotKnownYet
from ssg.platform.events.envelope import topic_name
from ssg.platform.proposals import InvalidProposal, Proposal, UnknownReference, proposal

log = logging.getLogger(__name__)
R = TypeVar("R")

PROPOSALS_TAKEN = Counter(
    "ssg_proposals_taken_total",
    "Proposal deliveries by what they did (create, update, stale, claimed, refused, waiting).",
    ["kind", "outcome"],
)

SOLUTION_PROPOSAL_TOPIC = topic_name("ingress", "solution-proposal")
ORGANIZATION_PROPOSAL_TOPIC = topic_name("ingress", "organization-proposal")
EXPERT_PROPOSAL_TOPIC = topic_name("ingress", "expert-proposal")
FUNDING_PROPOSAL_TOPIC = topic_name("ingress", "funding-proposal")
KNOWLEDGE_PROPOSAL_TOPIC = topic_name("ingress", "knowledge-proposal")


def take_proposal(kind: str, event: Event[Any], apply: Callable[[Proposal], R]) -> R:
    """apply the proposal event carries (payload: submission + proposal); a proposal the owner
    refuses (InvalidProposal) raises NonRetryableError, so it is dead-lettered with the reason;
    one naming a record not known yet (UnknownReference) raises NotKnownYet, so it is retried
    for a bounded time first."""
    submission, body = event.payload.submission, event.payload.proposal
    try:
        p = proposal(kind, submission.producer, body.external_id, body.revision)
        result = apply(p)
    except UnknownReference as exc:
        PROPOSALS_TAKEN.labels(kind, "waiting").inc()
        raise NotKnownYet(f"{kind} proposal {body.external_id[:140]!r}: {exc}") from None
    except InvalidProposal as exc:
        PROPOSALS_TAKEN.labels(kind, "refused").inc()
        raise NonRetryableError(f"{kind} proposal {body.external_id[:140]!r}: {exc}") from None
    outcome = str(getattr(result, "decision", "taken"))
    PROPOSALS_TAKEN.labels(kind, outcome).inc()
    log.info(
        "proposal taken",
        extra={
            "kind": kind,
            "producer": p.producer,
            "external_id": p.external_id,
            "revision": p.revision,
            "outcome": outcome,
            "record_id": getattr(result, "record_id", ""),
        },
    )
    return result
