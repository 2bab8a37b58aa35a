"""The application layer: validates and authorizes each call, then runs the domain on the store.

Blocking MongoDB work runs in the platform's thread pool (``run_sync``); every write that
publishes goes through the outbox in the same transaction (``atomically``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ssg.contracts.recommendation.v1 import interaction_pb2
from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.errors import NotFound, PermissionDenied, Unauthenticated, Violations
from ssg.platform.events.outbox import UnitOfWork, atomically
from ssg.platform.mongo import run_sync
from ssg.platform.paging import Page, PageCodec, next_page, page_request
from ssg.platform.reference.geography import is_country
from ssg.platform.reference.sdg import TARGETS
from ssg.platform.validation import check_id
from ssg.recommendation import mapping
from ssg.recommendation.domain import matches
from ssg.recommendation.domain.experts import rank_experts, visible
from ssg.recommendation.domain.matches import Match, MatchStatus
from ssg.recommendation.domain.matching import Matcher, NeedSpec, SolutionMatch
from ssg.recommendation.domain.model import ItemKind, Scored
from ssg.recommendation.domain.profile import organization_key, user_key
from ssg.recommendation.domain.scoring import Filter, Recommender, Weights
from ssg.recommendation.domain.suggest import Labelled, SdgSuggester, SdgSuggestion
from ssg.recommendation.events.publisher import EventFactory
from ssg.recommendation.funnel import count_step
from ssg.recommendation.memo import SnapshotMemo
from ssg.recommendation.neighbours import NeighbourCache
from ssg.recommendation.personal import PersonalLists
from ssg.recommendation.snapshot import Snapshot, SnapshotCache
from ssg.recommendation.store.mongo import MongoStore

log = logging.getLogger(__name__)

MAX_PAGE = 100
DEFAULT_PAGE = 10
MAX_TITLE = 300
MAX_PROBLEM = 10_000
MAX_SUGGEST_TEXT = 20_000
STAFF = frozenset({Role.OPERATOR})


@dataclass(frozen=True)
class Subject:
    """Whose recommendations: a person or an organization."""

    user_id: str = ""
    organization_id: str = ""

    @property
    def key(self) -> str:
        """The profile key."""
        return user_key(self.user_id) if self.user_id else organization_key(self.organization_id)


def page_size(v: Violations, value: int, path: str = "page_size") -> int:
    """1 to MAX_PAGE, 0 meaning the default."""
    if value == 0:
        return DEFAULT_PAGE
    v.check(1 <= value <= MAX_PAGE, path, f"must be 1 to {MAX_PAGE}")
    return value


class RecommendationService:
    """Every use case of the API."""

    def __init__(
        self,
        store: MongoStore,
        cache: SnapshotCache,
        events: EventFactory,
        *,
        instance: str,
        pages: PageCodec,
        weights: Weights | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        neighbours: NeighbourCache | None = None,
        lists: PersonalLists | None = None,
    ) -> None:
        self.store = store
        self.cache = cache
        # Without a cache (ttl 0) every call reads the neighbours.
        self.neighbours = neighbours or NeighbourCache(store, 0.0)
        self.events = events
        self.instance = instance
        self.pages = pages
        self.weights = weights or Weights()
        self.clock = clock
        self.lists = lists or PersonalLists(
            store, cache, self.neighbours, self.weights, clock=clock
        )
        # MatchNeed results per (need, k, signed in) while the snapshot's objects are current.
        self.matches: SnapshotMemo[list[SolutionMatch]] = SnapshotMemo()
        self._suggester: tuple[object, SdgSuggester] | None = None
        self._refitting: object | None = None  # the index a background fit is working on
        self._suggester_lock = threading.Lock()

    # -- behaviour ------------------------------------------------------------------------------

    async def record_interaction(
        self, who: Identity, request: interaction_pb2.Interaction
    ) -> interaction_pb2.Interaction:
        """Publish an interaction of the caller (through the outbox)."""
        if not who.authenticated:
            raise Unauthenticated("recording an interaction needs a signed-in caller")
        v = Violations()
        user_id = check_id(v, "interaction.user_id", request.user_id or who.subject)
        organization_id = check_id(
            v,
            "interaction.organization_id",
            request.organization_id or who.organization_id,
            required=False,
        )
        item_id = check_id(v, "interaction.item_id", request.item_id)
        try:
            kind = mapping.interaction_kind_from_proto(request.kind)
        except ValueError:
            v.add(
                "interaction.kind",
                "must be VIEW, SAVE, SHARE, DOWNLOAD, CONTACT_PROVIDER or SEARCH_CLICK",
            )
        v.raise_if_any()
        staff = who.has_any(STAFF)
        if user_id != who.subject and not staff:
            raise PermissionDenied("an interaction is recorded by the person who made it")
        if organization_id and organization_id != who.organization_id and not staff:
            raise PermissionDenied("only members record interactions for their organization")
        if await run_sync(self.store.get_item, item_id) is None:
            raise NotFound(f"item {item_id} is not known")
        now = self.clock()
        recorded = interaction_pb2.Interaction(
            id=uuid.uuid4().hex,
            user_id=user_id,
            organization_id=organization_id,
            item_id=item_id,
            kind=mapping.interaction_kind_to_proto(kind),
            occur_time=mapping.timestamp(now),
        )
        event = self.events.interaction_recorded(recorded, now)

        def write(uow: UnitOfWork) -> None:
            uow.add(event.topic, event.envelope)

        await run_sync(atomically, self.store.client, self.store.db, write)
        return recorded

    # -- recommendations ------------------------------------------------------------------------

    def _subject(self, who: Identity, v: Violations, user_id: str, organization_id: str) -> Subject:
        if bool(user_id) == bool(organization_id):
            v.add("user_id", "give exactly one of user_id and organization_id")
            return Subject()
        check_id(v, "user_id", user_id, required=False)
        check_id(v, "organization_id", organization_id, required=False)
        return Subject(user_id, organization_id)

    def _authorize(self, who: Identity, subject: Subject) -> None:
        if not who.authenticated:
            raise Unauthenticated("recommendations are personal: sign in")
        if who.has_any(STAFF):
            return
        if subject.user_id and subject.user_id != who.subject:
            raise PermissionDenied("you may ask for your own recommendations only")
        if subject.organization_id and subject.organization_id != who.organization_id:
            raise PermissionDenied("you may ask for your own organization's recommendations only")

    async def recommend(
        self,
        who: Identity,
        user_id: str,
        organization_id: str,
        k: int,
        sdgs: Sequence[int],
        regions: Sequence[str],
        kinds: Sequence[int],
    ) -> tuple[list[Scored], bool]:
        """Ranked items for a person or organization, and whether it was a cold start: the
        worker's stored list when it serves the request (ADR 0054), else computed here."""
        v = Violations()
        subject = self._subject(who, v, user_id, organization_id)
        k = page_size(v, k)
        item_filter = self._filter(v, sdgs, regions, kinds)
        v.raise_if_any()
        self._authorize(who, subject)
        now = self.clock()
        if item_filter == Filter():
            # Answered on the event loop when memory holds it (ADR 0055): no thread-pool hop.
            held = self.lists.held_list(subject.key, k, now)
            if held is not None:
                return held, False
            stored = await run_sync(self.lists.served, subject.key, k, now)
            if stored is not None:
                return stored, False
        return await run_sync(
            self.lists.compute, subject.key, subject.organization_id, now, k, item_filter
        )

    def _filter(
        self, v: Violations, sdgs: Sequence[int], regions: Sequence[str], kinds: Sequence[int]
    ) -> Filter:
        v.check(all(1 <= g <= 17 for g in sdgs), "filter.sdgs", "must be SDGs 1 to 17")
        v.check(all(r for r in regions), "filter.regions", "must not be REGION_UNSPECIFIED")
        found: set[ItemKind] = set()
        for n, kind in enumerate(kinds):
            try:
                found.add(mapping.item_kind_from_proto(kind))
            except ValueError:
                v.add(
                    f"filter.kinds[{n}]",
                    "must be SOLUTION, KNOWLEDGE_PRODUCT, NEED or FUNDING_OPPORTUNITY",
                )
        return Filter(frozenset(sdgs), frozenset(regions), frozenset(found))

    async def explain(
        self, who: Identity, user_id: str, organization_id: str, item_id: str
    ) -> Scored:
        """One item scored for a person or organization, with every reason."""
        v = Violations()
        subject = self._subject(who, v, user_id, organization_id)
        check_id(v, "item_id", item_id)
        v.raise_if_any()
        self._authorize(who, subject)
        now = self.clock()
        found = await run_sync(self.lists.inputs, subject.key, subject.organization_id, now)
        try:
            return found.recommender.explain(found.profile, found.signals, now, item_id)
        except KeyError:
            raise NotFound(f"item {item_id} is not known") from None

    async def similar(self, item_id: str, k: int) -> list[Scored]:
        """The items most like one item."""
        v = Violations()
        check_id(v, "item_id", item_id)
        k = page_size(v, k)
        v.raise_if_any()
        snapshot = await run_sync(self.cache.current)
        try:
            return Recommender(snapshot.index, self.weights).similar(item_id, k)
        except KeyError:
            raise NotFound(f"item {item_id} is not known") from None

    # -- matchmaking ----------------------------------------------------------------------------

    async def match_need(
        self, need_id: str, description: NeedSpec | None, k: int, who: Identity | None = None
    ) -> list[SolutionMatch]:
        """Ranked solutions, their providers and the experts behind them, for a posted or
        described need (members-only experts only for signed-in callers)."""
        v = Violations()
        k = page_size(v, k)
        if bool(need_id) == (description is not None):
            v.add("need_id", "give exactly one of need_id and need")
        elif need_id:
            check_id(v, "need_id", need_id)
        elif description is not None:
            self._check_need(v, description)
        v.raise_if_any()
        signed_in = who is not None and who.authenticated

        def run() -> list[SolutionMatch]:
            # One hop to the thread pool per call: the need and the matches on one snapshot.
            snapshot = self.cache.current()
            spec = description
            if need_id:
                # The snapshot holds every stored item; only a need newer than it is read.
                need = snapshot.index.get(need_id) or self.store.get_item(need_id)
                if need is None or need.kind is not ItemKind.NEED:
                    raise NotFound(f"need {need_id} is not known")
                spec = NeedSpec.of(need)
            assert spec is not None
            wanted: NeedSpec = spec
            basis = (
                snapshot.index,
                snapshot.organizations,
                snapshot.track_record,
                snapshot.experts,
            )
            return self.matches.get(
                (wanted, k, signed_in), basis, lambda: _matches(snapshot, wanted, k, signed_in)
            )

        return await run_sync(run)

    @staticmethod
    def _check_need(v: Violations, need: NeedSpec) -> None:
        v.check(
            0 < len(need.title.strip()) <= MAX_TITLE, "need.title", f"1 to {MAX_TITLE} characters"
        )
        v.check(
            0 < len(need.problem.strip()) <= MAX_PROBLEM,
            "need.problem_statement",
            f"1 to {MAX_PROBLEM} characters",
        )
        v.check(all(1 <= g <= 17 for g in need.sdgs), "need.sdgs", "must be SDGs 1 to 17")
        v.check(
            all(t in TARGETS for t in need.targets),
            "need.sdg_targets",
            "must be SDG target codes such as 6.4",
        )
        v.check(
            not need.country or is_country(need.country),
            "need.country",
            "must be an ISO 3166-1 alpha-3 code",
        )
        check_id(v, "need.seeker_organization_id", need.seeker_organization_id, required=False)

    async def get_match(self, who: Identity, match_id: str) -> Match:
        """A match, to its parties and operators (NOT_FOUND for anyone else)."""
        match = await self._load(match_id)
        try:
            matches.side_of(match, who)
        except PermissionDenied:
            raise NotFound(f"match {match_id} is not known") from None
        return match

    async def list_matches(
        self, who: Identity, organization_id: str, statuses: Sequence[int], size: int, token: str
    ) -> Page[Match]:
        """A page of an organization's matches (either side), newest first, to its members."""
        if not who.authenticated:
            raise Unauthenticated("sign in to list matches")
        v = Violations()
        check_id(v, "organization_id", organization_id)
        wanted: list[MatchStatus] = []
        for i, value in enumerate(statuses):
            try:
                wanted.append(mapping.match_status_from_proto(value))
            except ValueError:
                v.add(f"statuses[{i}]", "must be a known match status")
        fingerprint = f"matches|{organization_id}|{sorted(s.value for s in wanted)}"
        limit, after = page_request(self.pages, v, size, token, fingerprint)  # raises v's findings
        matches.check_lister(who, organization_id)
        found = await run_sync(self.store.list_matches, organization_id, wanted, limit, after)
        return next_page(
            self.pages, found, limit, lambda m: (m.create_time.isoformat(), m.id), fingerprint
        )

    async def _load(self, match_id: str) -> Match:
        v = Violations()
        check_id(v, "id", match_id)
        v.raise_if_any()
        match = await run_sync(self.store.get_match, match_id)
        if match is None:
            raise NotFound(f"match {match_id} is not known")
        return match

    async def _change(self, match_id: str, step: Callable[[Match], Match]) -> Match:
        """Apply step to the stored match and publish MatchStatusChanged, in one transaction."""
        current = await self._load(match_id)
        changed = step(current)
        event = self.events.match_status_changed(changed)

        def write(uow: UnitOfWork) -> None:
            self.store.save_match(changed, uow.session)
            uow.add(event.topic, event.envelope)

        await run_sync(atomically, self.store.client, self.store.db, write)
        count_step(changed)
        return changed

    async def accept_match(self, who: Identity, match_id: str) -> Match:
        """The caller's side accepts."""
        return await self._change(match_id, lambda m: matches.accept(m, who, self.clock()))

    async def decline_match(self, who: Identity, match_id: str, reason: str) -> Match:
        """The caller's side declines, with a reason."""
        return await self._change(match_id, lambda m: matches.decline(m, who, reason, self.clock()))

    async def advance_match(self, who: Identity, match_id: str, status: int, note: str) -> Match:
        """Move the match one step on."""
        try:
            to = mapping.match_status_from_proto(status)
        except ValueError:
            to = MatchStatus.PROPOSED  # refused by the domain with a field violation
        return await self._change(
            match_id, lambda m: matches.advance(m, who, to, note, self.clock())
        )

    # -- SDG suggestions ------------------------------------------------------------------------

    def _current_suggester(self) -> SdgSuggester:
        """Blocking: the classifier of the current snapshot.

        Only the first one is fitted inside a call. When the items change later, the last
        classifier keeps answering while one background thread fits the new one: a fit takes
        seconds of CPU, and fitting in every call after a change held each caller for that long
        (past their deadlines on a busy machine).
        """
        index = self.cache.current().index
        with self._suggester_lock:
            if self._suggester is None:
                self._suggester = (index, SdgSuggester(_suggest_corpus(index)))
            elif self._suggester[0] is not index and self._refitting is None:
                self._refitting = index
                threading.Thread(
                    target=self._refit, args=(index,), name="sdg-refit", daemon=True
                ).start()
            return self._suggester[1]

    def _refit(self, index: Any) -> None:
        """Fit the classifier of index and swap it in (runs in its own thread)."""
        try:
            fitted = SdgSuggester(_suggest_corpus(index))
        except Exception:
            log.exception("refitting the SDG classifier failed; the previous one keeps serving")
            fitted = None
        with self._suggester_lock:
            if fitted is not None:
                self._suggester = (index, fitted)
            self._refitting = None

    async def warm_up(self, stop: asyncio.Event) -> None:
        """Fit the first SDG classifier as the API starts (a task beside the server), so no
        caller waits for that fit; if it fails here, the first call fits it."""
        try:
            await run_sync(self._current_suggester)
        except Exception as exc:
            log.warning("could not fit the SDG classifier at start", extra={"error": repr(exc)})

    async def suggest_sdgs(self, text: str, limit: int) -> list[SdgSuggestion]:
        """SDGs and targets for a submission text."""
        v = Violations()
        v.check(
            len(text.strip()) > 0 and len(text) <= MAX_SUGGEST_TEXT,
            "text",
            f"1 to {MAX_SUGGEST_TEXT} characters",
        )
        if limit == 0:
            limit = 3
        v.check(1 <= limit <= 17, "max_suggestions", "must be 1 to 17")
        v.raise_if_any()
        suggester = await run_sync(self._current_suggester)
        return await run_sync(suggester.suggest, text, limit)


def _matches(snapshot: Snapshot, spec: NeedSpec, k: int, signed_in: bool) -> list[SolutionMatch]:
    """The k best solutions for spec on snapshot, with the experts the caller may see."""
    found = Matcher(snapshot.index).match(spec, snapshot.organizations, snapshot.track_record, k)
    seeker = snapshot.organizations.get(spec.seeker_organization_id)
    return [
        replace(
            m,
            experts=tuple(
                rank_experts(
                    spec, seeker, visible(snapshot.experts.get(m.provider.id, ()), signed_in)
                )
            ),
        )
        for m in found
    ]


def _suggest_corpus(index: Any) -> list[Labelled]:
    """The labelled texts SuggestSdgs learns from: active solutions and knowledge products."""
    return [
        Labelled(f"{i.title}\n{i.text}", i.sdgs, i.targets)
        for i in index.items
        if i.active and i.kind in (ItemKind.SOLUTION, ItemKind.KNOWLEDGE_PRODUCT)
    ]
