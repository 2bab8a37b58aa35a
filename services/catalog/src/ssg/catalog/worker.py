"""``python -m ssg.catalog.worker``: keep the organizations read model from registration events,
and turn the ingress bridge's proposals into drafts (ADR 0022).

Two consumers side by side, each its own consumer group: organization events
(``organizations_group``) and proposals (``proposals_group``). A proposal naming an organization
the read model has not learned yet waits for it (``SSG_EVENT_WAIT_SECONDS``, holding only its
proposals partition), and the organization events it waits for keep flowing meanwhile.

Any number of replicas may run: each group shares its partitions; each read-model write is a
conditional upsert on the organization's version, and each proposal is applied once per revision
through its proposal link.
"""

from __future__ import annotations

import sys

from ssg.catalog.events.organizations import organization_handlers
from ssg.catalog.events.proposals import PROPOSAL_TOPICS, proposal_handlers
from ssg.catalog.proposals import ProposalIntake
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.mongo import MongoStore
from ssg.platform.events.consumer import EventConsumer
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.worker import worker_main

TOPICS = (ORGANIZATION_TOPIC, *PROPOSAL_TOPICS)


def organizations_consumer(settings: CatalogSettings, store: MongoStore) -> EventConsumer:
    """The consumer keeping the organizations read model from registration's events."""
    return EventConsumer(
        settings,
        group_id=settings.organizations_group,
        topics=(ORGANIZATION_TOPIC,),
        handlers=organization_handlers(store),
    )


def proposals_consumer(settings: CatalogSettings, store: MongoStore) -> EventConsumer:
    """The consumer turning proposals into drafts."""
    intake = ProposalIntake(store, instance=settings.instance)
    return EventConsumer(
        settings,
        group_id=settings.proposals_group,
        topics=PROPOSAL_TOPICS,
        handlers=proposal_handlers(intake),
    )


def build_consumers(settings: CatalogSettings, store: MongoStore) -> list[EventConsumer]:
    """The worker's two consumers on a store."""
    return [organizations_consumer(settings, store), proposals_consumer(settings, store)]


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    # The topics belong to registration and ingress; creating them when missing only lets this
    # worker start first on a fresh broker (with their partition counts unknown, 1 is the floor).
    return worker_main(
        CatalogSettings,
        lambda settings, db: build_consumers(settings, MongoStore(db.client, db)),
        topics=TOPICS,
    )


if __name__ == "__main__":
    sys.exit(main())
