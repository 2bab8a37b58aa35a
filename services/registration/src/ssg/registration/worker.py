"""``python -m ssg.registration.worker``: take in the ingress bridge's organization and expert
proposals (ADR 0023).

Any number of replicas may run: the consumer group shares the partitions, and each proposal is
applied once per revision through its proposal link.
"""

from __future__ import annotations

import sys

from ssg.platform.events.consumer import EventConsumer
from ssg.platform.events.envelope import Origin
from ssg.platform.events.worker import worker_main
from ssg.registration.events.proposals import PROPOSAL_TOPICS, proposal_handlers
from ssg.registration.events.publisher import EventFactory
from ssg.registration.proposals import ProposalIntake
from ssg.registration.settings import RegistrationSettings
from ssg.registration.store.mongo import MongoStore


def build_consumer(settings: RegistrationSettings, store: MongoStore) -> EventConsumer:
    """The proposals consumer on a store."""
    events = EventFactory(Origin(settings.service, settings.instance, settings.instance_id))
    intake = ProposalIntake(store, events, instance=settings.instance)
    return EventConsumer(
        settings,
        group_id=settings.proposals_group,
        topics=PROPOSAL_TOPICS,
        handlers=proposal_handlers(intake),
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    # The topics belong to ingress; creating them when missing only lets this worker start
    # first on a fresh broker.
    return worker_main(
        RegistrationSettings,
        lambda settings, db: build_consumer(settings, MongoStore(db.client, db)),
        topics=PROPOSAL_TOPICS,
    )


if __name__ == "__main__":
    sys.exit(main())
