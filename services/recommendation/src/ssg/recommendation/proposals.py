"""Automatic match proposals: a posted need against published solutions, and a published
solution against open needs. Proposals above the threshold become matches and MatchProposed
events in the consumer's transaction (the match id is the pair's, so a pair is proposed once)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pymongo.client_session import ClientSession

from ssg.recommendation.domain import matches
from ssg.recommendation.domain.matching import Matcher, NeedSpec
from ssg.recommendation.domain.model import Item, Organization, Scored
from ssg.recommendation.events.publisher import EventFactory
from ssg.recommendation.funnel import count_step
from ssg.recommendation.snapshot import SnapshotCache
from ssg.recommendation.store.mongo import MongoStore


class Proposer:
    """Turns good need-solution pairs into proposed matches."""

    def __init__(
        self,
        store: MongoStore,
        cache: SnapshotCache,
        events: EventFactory,
        *,
        threshold: float,
        limit: int,
        instance: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.cache = cache
        self.events = events
        self.threshold = threshold
        self.limit = limit
        self.instance = instance
        self.clock = clock

    def for_need(self, need: Item, session: ClientSession | None) -> int:
        """Propose the best published solutions for a newly posted need."""
        matcher = Matcher(self.cache.current().index)
        spec = NeedSpec.of(need)
        organizations = self.store.organizations_by_id()
        found = matcher.match(
            spec, organizations, self.store.track_record(), self.limit, self.threshold
        )
        return sum(self._propose(need, m.scored, m.provider, session) for m in found)

    def for_solution(self, solution: Item, session: ClientSession | None) -> int:
        """Propose a newly published solution to the open needs it fits best."""
        index = self.cache.current().index
        matcher = Matcher(index)
        solution_row = index.text_vector(f"{solution.title}\n{solution.text}")
        organizations = self.store.organizations_by_id()
        provider = organizations.get(solution.organization_id) or Organization(
            solution.organization_id, verified=solution.verified
        )
        track = self.store.track_record([provider.id])
        scored: list[tuple[Scored, Item]] = []
        for need in self.store.open_needs():
            if need.organization_id == solution.organization_id:
                continue
            spec = NeedSpec.of(need)
            need_row = index.text_vector(f"{need.title}\n{need.text}")
            text = float(need_row.multiply(solution_row).sum())
            s = matcher.score(
                spec, solution, text, organizations.get(need.organization_id), provider, track
            )
            if s.score >= self.threshold:
                scored.append((s, need))
        scored.sort(key=lambda pair: -pair[0].score)
        return sum(self._propose(need, s, provider, session) for s, need in scored[: self.limit])

    def _propose(
        self, need: Item, scored: Scored, provider: Organization, session: ClientSession | None
    ) -> bool:
        if session is None:
            raise ValueError("proposals are written in the consumer's transaction")
        match = matches.propose(
            need.id,
            scored.item.id,
            need.organization_id,
            provider.id,
            scored.score,
            scored.reasons,
            self.instance,
            self.clock(),
        )
        if not self.store.insert_match_if_absent(match, session):
            return False
        event = self.events.match_proposed(match)
        self.store.outbox.add(session, event.topic, event.envelope)
        count_step(match)
        return True
