"""The use cases: each command validates its input, checks who may do it, applies the domain
rule and writes the new state and its events in one atomic unit.

The sync driver runs off the event loop (``run_sync``); a unit may run more than once (a
transaction retried after a write conflict), so the functions given to ``atomically`` only read
and write through their Transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from ssg.catalog.domain import records as record_rules
from ssg.catalog.domain import solutions as rules
from ssg.catalog.domain import validation as check
from ssg.catalog.domain.authorization import (
    Access,
    Resolve,
    access,
    is_operator,
    is_reviewer,
    require_may_create,
    require_owner,
    require_owner_or_reviewer,
    require_reviewer,
    require_signed_in,
    require_verified,
    require_visible,
)
from ssg.catalog.domain.model import (
    CriterionScore,
    FundingContent,
    FundingOpportunity,
    FundingStatus,
    KnowledgeContent,
    KnowledgeProduct,
    KnowledgeStatus,
    Need,
    NeedContent,
    NeedStatus,
    OrganizationRef,
    Provenance,
    Review,
    Solution,
    SolutionContent,
    SolutionStatus,
    Source,
)
from ssg.catalog.domain.organizations import MAX_REDIRECTS, is_known, may_vouch, resolve
from ssg.catalog.events.publisher import Event, EventFactory
from ssg.catalog.store.documents import FUNDING, KNOWLEDGE, NEEDS, SOLUTIONS, Kind
from ssg.catalog.store.ports import Cursor, Query, Store, Transaction, Visibility
from ssg.contracts.catalog.v1 import events_pb2 as ev
from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.clock import new_id, utc_now
from ssg.platform.errors import (
    PermissionDenied,
    ValidationError,
    VersionConflict,
    Violations,
)
from ssg.platform.mongo import run_sync
from ssg.platform.paging import Page, PageCodec, next_page, page_request
from ssg.platform.validation import check_id, require_id

T = TypeVar("T")
C = TypeVar("C")
Lookup = Callable[[str], OrganizationRef | None]
MAX_IMPORT_ROWS = 1000
SYSTEM = "system"

PUBLIC_STATUSES: dict[str, tuple[str, ...]] = {
    SOLUTIONS.collection: (SolutionStatus.PUBLISHED,),
    KNOWLEDGE.collection: (KnowledgeStatus.PUBLISHED,),
    # Needs are public from the moment they are posted.
    NEEDS.collection: tuple(NeedStatus),
    FUNDING.collection: (FundingStatus.OPEN, FundingStatus.CLOSED),
}
_NAMES = {
    SOLUTIONS.collection: "solution",
    KNOWLEDGE.collection: "knowledge product",
    NEEDS.collection: "need",
    FUNDING.collection: "funding opportunity",
}


def _any(record: object) -> Any:
    """A record of any kind, for the fields every kind has (id, status, version, ...)."""
    return record


def _update_cursor(record: object) -> Cursor:
    """Where a list by last update resumes after record."""
    return _any(record).update_time.isoformat(), _any(record).id


@dataclass(frozen=True)
class Filters:
    """List filters as the servicer read them (enum names; '#n' for unknown numbers)."""

    sdg: int = 0
    sdg_target: str = ""
    country: str = ""
    region: str = ""
    modality: str = ""
    organization_id: str = ""
    status: str = ""
    updated_since: datetime | None = None
    stale_only: bool = False
    type: str = ""
    support_kind: str = ""


@dataclass(frozen=True)
class SolutionView:
    """GetSolution: the solution and, for its staff, its reviews."""

    solution: Solution
    reviews: tuple[Review, ...] = ()


@dataclass(frozen=True)
class ImportRow:
    """One row of an import batch."""

    external_id: str
    organization_id: str
    content: SolutionContent


class ImportOutcome:
    """What happened to one row (names as in ssg.catalog.v1.ImportOutcome)."""

    CREATED = "CREATED"
    EXISTING = "EXISTING"
    REJECTED = "REJECTED"
    NOT_WRITTEN = "NOT_WRITTEN"


@dataclass(frozen=True)
class ImportResult:
    """The report of one row."""

    index: int
    external_id: str
    outcome: str
    solution_id: str = ""
    violations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImportReport:
    """The report of a batch, row by row in request order."""

    results: tuple[ImportResult, ...]

    def count(self, outcome: str) -> int:
        """How many rows had outcome."""
        return sum(1 for r in self.results if r.outcome == outcome)


def _masked(current: C, draft: C, mask: Sequence[str], prefix: str) -> C:
    """current with the fields named by mask taken from draft (every field for an empty mask)."""
    names = {f.name for f in fields(current)}  # type: ignore[arg-type]
    v = Violations()
    for path in mask:
        v.check(path in names, "update_mask", f"not an editable field: {path[:100]!r}")
    v.raise_if_any()
    chosen = mask or sorted(names)
    return replace(current, **{n: getattr(draft, n) for n in chosen})  # type: ignore[type-var]


class CatalogService:
    """Every command and query of the catalog service."""

    def __init__(
        self,
        store: Store,
        events: EventFactory,
        *,
        instance: str,
        pages: PageCodec,
        pass_threshold: int = rules.DEFAULT_PASS_THRESHOLD,
        stale_after: timedelta = rules.STALE_AFTER,
        clock: Callable[[], datetime] = utc_now,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self.store = store
        self.events = events
        self.instance = instance
        self.pages = pages
        self.pass_threshold = pass_threshold
        self.stale_after = stale_after
        self.clock = clock
        self.ids = ids

    # -- plumbing -------------------------------------------------------------------------------

    async def _atomically(self, fn: Callable[[Transaction], T]) -> T:
        return await run_sync(self.store.atomically, fn)

    @staticmethod
    def _resolver(lookup: Lookup) -> Resolve:
        def to_current(org_id: str) -> str:
            found = resolve(org_id, lookup)
            return found.id if found is not None else org_id

        return to_current

    @staticmethod
    def _knows(lookup: Lookup) -> Callable[[str], bool]:
        return lambda org_id: is_known(resolve(org_id, lookup))

    @staticmethod
    def _shown(kind: Kind[T], record: T, lookup: Lookup) -> T:
        """record with its vouching organization's current verification."""
        org_id = getattr(record, kind.org_field)
        provenance: Provenance = _any(record).provenance
        verified = may_vouch(resolve(org_id, lookup))
        if provenance.vouching_organization_verified == verified:
            return record
        shown: T = replace(  # type: ignore[type-var]
            record, provenance=replace(provenance, vouching_organization_verified=verified)
        )
        return shown

    def _access(self, actor: Identity, kind: Kind[Any], record: Any, lookup: Lookup) -> Access:
        return access(
            actor, getattr(record, kind.org_field), record.instance, self._resolver(lookup)
        )

    async def _change(
        self,
        actor: Identity,
        kind: Kind[T],
        record_id: str,
        version: int,
        authorize: Callable[[Access], None],
        apply: Callable[[Transaction, T, Lookup], tuple[T, list[Event]] | None],
    ) -> T:
        """Load a record, authorize, check the version, apply a rule, write it with its events."""
        require_id(record_id)

        def unit(tx: Transaction) -> T:
            record = tx.get(kind, record_id)
            lookup = tx.get_organization
            who = self._access(actor, kind, record, lookup) if record else Access(False, False)
            public = (
                record is not None and str(_any(record).status) in PUBLIC_STATUSES[kind.collection]
            )
            require_visible(record is not None, public, who, _NAMES[kind.collection], record_id)
            assert record is not None
            authorize(who)
            current = _any(record).version
            if version and current != version:
                raise VersionConflict(
                    f"{_NAMES[kind.collection]} {record_id} is at version {current}, not {version}"
                )
            outcome = apply(tx, record, lookup)
            if outcome is None:
                return self._shown(kind, record, lookup)
            changed, events = outcome
            tx.save(kind, changed, current)
            for event in events:
                tx.add_event(event.topic, event.envelope)
            return self._shown(kind, changed, lookup)

        return await self._atomically(unit)

    def _verified_flag(self, kind: Kind[Any], record: Any, lookup: Lookup) -> bool:
        return may_vouch(resolve(getattr(record, kind.org_field), lookup))

    def _query(self, actor: Identity, kind: Kind[Any], filters: Filters) -> Query:
        """The list query: filters plus what this caller may see."""
        orgs: tuple[str, ...] = ()
        if actor.organization_id and "member" in actor.roles:
            orgs = (actor.organization_id,)
        return Query(
            visibility=Visibility(
                public_statuses=PUBLIC_STATUSES[kind.collection],
                organizations=orgs,
                instance=self.instance if is_reviewer(actor, self.instance) else "",
            ),
            sdg=filters.sdg,
            sdg_target=filters.sdg_target,
            country=filters.country,
            region=filters.region,
            modality=filters.modality,
            organization_id=filters.organization_id,
            status=filters.status,
            updated_since=filters.updated_since,
            stale_only=filters.stale_only,
            type=filters.type,
            support_kind=filters.support_kind,
        )

    async def _list(
        self, actor: Identity, kind: Kind[T], filters: Filters, size: int, token: str
    ) -> Page[T]:
        v = Violations()
        if filters.country:
            check.country(v, "country", filters.country, required=False)
        if filters.sdg and not 1 <= filters.sdg <= 17:
            v.add("sdg", f"SDG must be 1 to 17, got {filters.sdg}")
        if filters.sdg_target:
            check.sdg_targets(v, "sdg_target", [filters.sdg_target], list(range(1, 18)), "sdg")
        if filters.organization_id:
            check_id(v, "organization_id", filters.organization_id)
        for name in ("region", "modality", "status", "type", "support_kind"):
            if getattr(filters, name).startswith("#"):
                v.add(name, f"unknown value {getattr(filters, name)[1:]}")
        query = self._query(actor, kind, filters)
        fingerprint = f"{kind.collection}:{query!r}"
        limit, after = page_request(
            self.pages, v, size, token, fingerprint, key="t", check_key=datetime.fromisoformat
        )
        items = await run_sync(self.store.list_records, kind, query, after, limit + 1)
        page = next_page(self.pages, items, limit, _update_cursor, fingerprint, key="t")
        lookup = _remembered(self.store.get_organization)
        shown = await run_sync(lambda: [self._shown(kind, r, lookup) for r in page.items])
        return Page(shown, page.next_page_token)

    async def _get(
        self, actor: Identity, kind: Kind[T], record_id: str, *, with_reviews: bool = False
    ) -> tuple[T, Access, tuple[Review, ...] | None]:
        """The record the caller may see, the caller's access to it, and its reviews when
        with_reviews (None when not read): one read on the event loop (ADR 0009)."""
        require_id(record_id)
        fetched = await self.store.read_record(kind, record_id, with_reviews=with_reviews)
        known = dict(fetched.organizations) if fetched is not None else {}
        mine = actor.organization_id
        if fetched is not None and mine and Role.MEMBER in actor.roles and mine not in known:
            known[mine] = await self.store.read_organization(mine)  # whether the caller owns it

        def decide(lookup: Lookup) -> tuple[T, Access]:
            record = fetched.record if fetched is not None else None
            who = self._access(actor, kind, record, lookup) if record else Access(False, False)
            public = (
                record is not None and str(_any(record).status) in PUBLIC_STATUSES[kind.collection]
            )
            require_visible(record is not None, public, who, _NAMES[kind.collection], record_id)
            assert record is not None
            return self._shown(kind, record, lookup), who

        reviews = fetched.reviews if fetched is not None else None
        try:
            return (*decide(_prefetched(known)), reviews)
        except _NotPrefetched:
            # A merged organization redirects elsewhere: follow it in the thread pool.
            record, who = await run_sync(decide, _remembered(self.store.get_organization, known))
            return record, who, reviews

    async def _create(
        self,
        actor: Identity,
        kind: Kind[T],
        organization_id: str,
        organization_path: str,
        validate: Callable[[], Any],
        status: Enum,
        *,
        posted: Callable[[T], Event] | None = None,
    ) -> T:
        """A new record of organization_id in status, written in one unit.

        With ``posted`` the record is public from the start: its organization must be verified
        and the event ``posted`` makes goes to the outbox with it.
        """
        require_signed_in(actor)

        def unit(tx: Transaction) -> T:
            lookup = tx.get_organization
            require_may_create(actor, organization_id, self.instance, self._resolver(lookup))
            v = Violations()
            check.organizations(v, organization_path, organization_id, self._knows(lookup))
            content = _with_earlier(v, validate)
            if posted is not None:
                require_verified(resolve(organization_id, lookup), organization_id)
            now = self.clock()
            # Knowledge products, needs and funding opportunities share these fields.
            new: Callable[..., T] = kind.cls
            record = new(
                id=self.ids(),
                content=content,
                provenance=Provenance(
                    submitted_by=actor.subject,
                    vouching_organization_id=organization_id,
                    vouching_organization_verified=posted is not None,
                ),
                instance=self.instance,
                status=status,
                version=1,
                create_time=now,
                update_time=now,
                **{kind.org_field: organization_id},
            )
            tx.insert(kind, record)
            if posted is not None:
                event = posted(record)
                tx.add_event(event.topic, event.envelope)
            return self._shown(kind, record, lookup)

        return await self._atomically(unit)

    async def _edit(
        self,
        actor: Identity,
        kind: Kind[T],
        record_id: str,
        version: int,
        message: str,
        validate: Callable[[Any], Any],
        rule: Callable[[T, Any, datetime], tuple[T, tuple[str, ...]] | None],
        public_status: Enum,
        updated: Callable[[T, bool, tuple[str, ...]], Event],
    ) -> T:
        """Edit a record's content (its organization only); an Updated event once it is public."""
        if not version:
            raise ValidationError.single(f"{message}.version", "is required")

        def apply(tx: Transaction, record: T, lookup: Lookup) -> tuple[T, list[Event]] | None:
            outcome = rule(record, validate(_any(record).content), self.clock())
            if outcome is None:
                return None
            changed, names = outcome
            if _any(changed).status is not public_status:
                return changed, []
            verified = self._verified_flag(kind, changed, lookup)
            return changed, [updated(changed, verified, names)]

        what = _NAMES[kind.collection]
        return await self._change(
            actor,
            kind,
            record_id,
            version,
            lambda who: require_owner(actor, who, f"edit a {what}"),
            apply,
        )

    # -- solutions ------------------------------------------------------------------------------

    async def create_solution(
        self, actor: Identity, organization_id: str, draft: SolutionContent
    ) -> Solution:
        """A DRAFT solution of the caller's organization."""

        def unit(tx: Transaction) -> Solution:
            lookup = tx.get_organization
            require_may_create(actor, organization_id, self.instance, self._resolver(lookup))
            v = Violations()
            check.organizations(v, "solution.organization_id", organization_id, self._knows(lookup))
            content = self._validated_solution(draft, lookup, v)
            solution = rules.create(
                self.ids(), organization_id, content, actor.subject, self.instance, self.clock()
            )
            tx.insert(SOLUTIONS, solution)
            return self._shown(SOLUTIONS, solution, lookup)

        require_signed_in(actor)
        return await self._atomically(unit)

    def _validated_solution(
        self, draft: SolutionContent, lookup: Lookup, v: Violations | None = None
    ) -> SolutionContent:
        """Validated content; violations already in v are raised together with its own."""
        earlier = v.items if v is not None else ()
        try:
            content = check.validate_solution(draft, self._knows(lookup))
        except ValidationError as exc:
            raise ValidationError([*earlier, *exc.violations]) from None
        if earlier:
            raise ValidationError(earlier)
        return content

    async def update_solution(
        self,
        actor: Identity,
        solution_id: str,
        version: int,
        draft: SolutionContent,
        mask: Sequence[str],
    ) -> Solution:
        """Apply the masked fields; a published solution's edit is public at once."""
        if not version:
            raise ValidationError.single("solution.version", "is required (the version last read)")

        def apply(
            tx: Transaction, s: Solution, lookup: Lookup
        ) -> tuple[Solution, list[Event]] | None:
            content = self._validated_solution(_masked(s.content, draft, mask, "solution"), lookup)
            outcome = rules.update(s, content, self.clock())
            if outcome is None:
                return None
            changed, names = outcome
            events = []
            if changed.status is SolutionStatus.PUBLISHED:
                verified = self._verified_flag(SOLUTIONS, changed, lookup)
                events.append(self.events.solution_updated(changed, verified, names))
            return changed, events

        return await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_owner(actor, who, "edit a solution"),
            apply,
        )

    async def submit_solution(self, actor: Identity, solution_id: str, version: int) -> Solution:
        """Send a draft to the reviewers; its organization must be verified now."""

        def apply(tx: Transaction, s: Solution, lookup: Lookup) -> tuple[Solution, list[Event]]:
            require_verified(resolve(s.organization_id, lookup), s.organization_id)
            resubmission = s.status is SolutionStatus.CHANGES_REQUESTED
            changed = rules.submit(s, actor.subject, self.clock())
            return changed, [self.events.solution_submitted(changed, resubmission)]

        return await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_owner(actor, who, "submit a solution"),
            apply,
        )

    async def start_review(self, actor: Identity, solution_id: str, version: int) -> Solution:
        """A reviewer of the instance takes up a submitted solution."""

        def apply(tx: Transaction, s: Solution, lookup: Lookup) -> tuple[Solution, list[Event]]:
            return rules.start_review(s, self.clock()), []

        return await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_reviewer(actor, who, "review a solution"),
            apply,
        )

    async def review_solution(
        self,
        actor: Identity,
        solution_id: str,
        version: int,
        scores: Sequence[CriterionScore],
        outcome: str,
        comment: str,
    ) -> tuple[Review, Solution]:
        """Record a reviewer's checklist and decision."""
        checklist, decided, note = check.validate_scores(scores, outcome, comment)
        recorded: list[Review] = []

        def apply(tx: Transaction, s: Solution, lookup: Lookup) -> tuple[Solution, list[Event]]:
            changed, review = rules.review(
                s,
                self.ids(),
                checklist,
                decided,
                note,
                actor.subject,
                self.clock(),
                self.pass_threshold,
            )
            tx.insert_review(review)
            recorded[:] = [review]
            return changed, [self.events.review_recorded(changed, review)]

        solution = await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_reviewer(actor, who, "review a solution"),
            apply,
        )
        return recorded[0], solution

    async def publish_solution(self, actor: Identity, solution_id: str, version: int) -> Solution:
        """Publish an approved solution: SolutionPublished carries its full public state."""

        def apply(tx: Transaction, s: Solution, lookup: Lookup) -> tuple[Solution, list[Event]]:
            changed = rules.publish(s, self.clock())
            verified = self._verified_flag(SOLUTIONS, changed, lookup)
            return changed, [self.events.solution(ev.SolutionPublished, changed, verified)]

        return await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_reviewer(actor, who, "publish a solution"),
            apply,
        )

    async def archive_solution(
        self, actor: Identity, solution_id: str, version: int, reason: str
    ) -> Solution:
        """Withdraw a published solution."""
        why = check.reason(reason)

        def apply(tx: Transaction, s: Solution, lookup: Lookup) -> tuple[Solution, list[Event]]:
            changed = rules.archive(s, self.clock())
            verified = self._verified_flag(SOLUTIONS, changed, lookup)
            return changed, [self.events.solution_archived(changed, verified, why)]

        return await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_owner_or_reviewer(actor, who, "archive a solution"),
            apply,
        )

    async def confirm_solution(self, actor: Identity, solution_id: str, version: int) -> Solution:
        """Its organization says a published solution is current."""

        def apply(tx: Transaction, s: Solution, lookup: Lookup) -> tuple[Solution, list[Event]]:
            changed = rules.confirm(s, self.clock())
            verified = self._verified_flag(SOLUTIONS, changed, lookup)
            return changed, [self.events.solution_updated(changed, verified, ())]

        return await self._change(
            actor,
            SOLUTIONS,
            solution_id,
            version,
            lambda who: require_owner(actor, who, "confirm a solution"),
            apply,
        )

    async def get_solution(self, actor: Identity, solution_id: str) -> SolutionView:
        """One solution the caller may see; its reviews for its staff."""
        # Reviewers of this instance are staff of its solutions: read the reviews with the
        # solution then; anyone else finds out from the record first.
        solution, who, reviews = await self._get(
            actor, SOLUTIONS, solution_id, with_reviews=is_reviewer(actor, self.instance)
        )
        if not who.staff:
            return SolutionView(solution)
        if reviews is None:
            reviews = tuple(await self.store.read_reviews(solution.id))
        return SolutionView(solution, reviews)

    async def list_solutions(
        self, actor: Identity, filters: Filters, size: int, token: str
    ) -> Page[Solution]:
        """A page of the solutions the caller may see, newest update first."""
        return await self._list(actor, SOLUTIONS, filters, size, token)

    # -- import ---------------------------------------------------------------------------------

    async def import_solutions(
        self,
        actor: Identity,
        rows: Sequence[ImportRow],
        *,
        publish: bool,
        all_or_nothing: bool = False,
        dry_run: bool = False,
    ) -> ImportReport:
        """Import one batch: the good rows in one transaction, each bad row reported.

        Idempotent on external id: a row already imported is EXISTING and writes nothing.
        """
        require_signed_in(actor)
        if not is_operator(actor, self.instance):
            raise PermissionDenied("only operators of this instance may import")
        if not rows:
            raise ValidationError.single("rows", "is required")
        if len(rows) > MAX_IMPORT_ROWS:
            raise ValidationError.single("rows", f"at most {MAX_IMPORT_ROWS} rows per batch")
        # Every organization the batch names (owners, partners, merge targets): one batched
        # read by _id instead of a read per row; external ids likewise.
        named = {r.organization_id for r in rows} | {
            p.organization_id for r in rows for p in r.content.partners
        }
        known = await run_sync(_organizations, self.store.get_organizations, named)
        checked = await run_sync(self._check_rows, rows, known.get)
        existing = await run_sync(
            self.store.find_external, [r.external_id for r in rows if r.external_id]
        )
        results: list[ImportResult] = []
        good: list[tuple[int, ImportRow, SolutionContent]] = []
        for i, (row, outcome) in enumerate(zip(rows, checked, strict=True)):
            if isinstance(outcome, tuple):
                results.append(
                    ImportResult(i, row.external_id, ImportOutcome.REJECTED, "", outcome)
                )
            elif row.external_id in existing:
                results.append(
                    ImportResult(
                        i, row.external_id, ImportOutcome.EXISTING, existing[row.external_id]
                    )
                )
            else:
                results.append(ImportResult(i, row.external_id, ImportOutcome.NOT_WRITTEN))
                good.append((i, row, outcome))
        rejected = any(r.outcome == ImportOutcome.REJECTED for r in results)
        if dry_run or not good or (all_or_nothing and rejected):
            return ImportReport(tuple(results))
        now = self.clock()

        def unit(tx: Transaction) -> dict[int, tuple[str, str]]:
            # Re-read inside the transaction: a concurrent import of the same file may have
            # committed since; the unique _id of the external id settles any remaining race.
            already = tx.find_external([row.external_id for _, row, _ in good])
            owners: Lookup = (
                _organizations(
                    tx.get_organizations, {row.organization_id for _, row, _ in good}
                ).get
                if publish
                else tx.get_organization
            )
            written: dict[int, tuple[str, str]] = {}
            created: list[Solution] = []
            events: list[tuple[str, envelope_pb2.Envelope]] = []
            for i, row, content in good:
                if row.external_id in already:
                    written[i] = (ImportOutcome.EXISTING, already[row.external_id])
                    continue
                solution = rules.create(
                    self.ids(),
                    row.organization_id,
                    content,
                    actor.subject,
                    self.instance,
                    now,
                    source=Source.IMPORT,
                    external_id=row.external_id,
                )
                if publish:
                    solution = rules.publish_imported(solution, actor.subject, now)
                    solution = self._shown(SOLUTIONS, solution, owners)
                    event = self.events.solution(
                        ev.SolutionPublished,
                        solution,
                        solution.provenance.vouching_organization_verified,
                    )
                    events.append((event.topic, event.envelope))
                created.append(solution)
                written[i] = (ImportOutcome.CREATED, solution.id)
            tx.insert_many(SOLUTIONS, created)
            tx.add_events(events)
            return written

        written = await self._atomically(unit)
        return ImportReport(
            tuple(
                replace(r, outcome=written[r.index][0], solution_id=written[r.index][1])
                if r.index in written
                else r
                for r in results
            )
        )

    def _check_rows(
        self, rows: Sequence[ImportRow], lookup: Lookup
    ) -> list[SolutionContent | tuple[tuple[str, str], ...]]:
        """Per row: the validated content, or its violations (paths relative to the row)."""
        seen: set[str] = set()
        out: list[SolutionContent | tuple[tuple[str, str], ...]] = []
        knows = self._knows(lookup)
        for row in rows:
            v = Violations()
            check.external_id(v, "external_id", row.external_id)
            if row.external_id in seen:
                v.add("external_id", "repeats an earlier row of this batch")
            seen.add(row.external_id)
            check.organizations(v, "solution.organization_id", row.organization_id, knows)
            try:
                content = check.validate_solution(row.content, knows)
            except ValidationError as exc:
                out.append(tuple((f.field, f.reason) for f in (*v.items, *exc.violations)))
                continue
            out.append(tuple((f.field, f.reason) for f in v.items) if v else content)
        return out

    # -- freshness and deadlines (sweeps) -------------------------------------------------------

    async def flag_stale(self, solution_id: str) -> bool:
        """Flag one solution stale and emit SolutionStale; False if it was not due (any more).

        Safe with several replicas: the save is conditional on the version read, so only one
        unit changes it; the other finds it flagged (or gets VersionConflict)."""

        def unit(tx: Transaction) -> bool:
            s = tx.get(SOLUTIONS, solution_id)
            now = self.clock()
            if s is None or not rules.stale_due(s, now, self.stale_after):
                return False
            changed = rules.mark_stale(s, now)
            tx.save(SOLUTIONS, changed, s.version)
            verified = self._verified_flag(SOLUTIONS, changed, tx.get_organization)
            event = self.events.solution(ev.SolutionStale, changed, verified)
            tx.add_event(event.topic, event.envelope)
            return True

        return await self._atomically(unit)

    async def close_expired(self, funding_id: str) -> bool:
        """Close one funding opportunity past its deadline and emit FundingClosed."""

        def unit(tx: Transaction) -> bool:
            f = tx.get(FUNDING, funding_id)
            now = self.clock()
            if f is None or not record_rules.funding_expired(f, now):
                return False
            changed = record_rules.close_funding(f, record_rules.DEADLINE_REASON, now)
            tx.save(FUNDING, changed, f.version)
            verified = self._verified_flag(FUNDING, changed, tx.get_organization)
            event = self.events.funding(ev.FundingClosed, changed, verified)
            tx.add_event(event.topic, event.envelope)
            return True

        return await self._atomically(unit)

    async def sweep(self, limit: int = 100) -> tuple[int, int]:
        """One round: flag due stale solutions and close expired funding; (flagged, closed)."""
        now = self.clock()
        due = await run_sync(self.store.stale_candidates, now - self.stale_after, limit)
        expired = await run_sync(self.store.expired_funding, now, limit)
        flagged = closed = 0
        for solution_id in due:
            try:
                flagged += await self.flag_stale(solution_id)
            except VersionConflict:
                continue  # another replica or the owner changed it first
        for funding_id in expired:
            try:
                closed += await self.close_expired(funding_id)
            except VersionConflict:
                continue
        return flagged, closed

    # -- knowledge products ---------------------------------------------------------------------

    async def create_knowledge(
        self, actor: Identity, organization_id: str, draft: KnowledgeContent
    ) -> KnowledgeProduct:
        """A DRAFT knowledge product of the caller's organization."""
        return await self._create(
            actor,
            KNOWLEDGE,
            organization_id,
            "knowledge_product.publishing_organization_id",
            lambda: check.validate_knowledge(draft),
            KnowledgeStatus.DRAFT,
        )

    async def update_knowledge(
        self,
        actor: Identity,
        product_id: str,
        version: int,
        draft: KnowledgeContent,
        mask: Sequence[str],
    ) -> KnowledgeProduct:
        """Edit a draft or published knowledge product."""
        return await self._edit(
            actor,
            KNOWLEDGE,
            product_id,
            version,
            "knowledge_product",
            lambda current: check.validate_knowledge(
                _masked(current, draft, mask, "knowledge_product")
            ),
            record_rules.update_knowledge,
            KnowledgeStatus.PUBLISHED,
            self.events.knowledge_updated,
        )

    async def publish_knowledge(
        self, actor: Identity, product_id: str, version: int
    ) -> KnowledgeProduct:
        """Publish a draft: its organization must be verified."""

        def apply(
            tx: Transaction, k: KnowledgeProduct, lookup: Lookup
        ) -> tuple[KnowledgeProduct, list[Event]]:
            require_verified(
                resolve(k.publishing_organization_id, lookup), k.publishing_organization_id
            )
            changed = record_rules.publish_knowledge(k, self.clock())
            return changed, [self.events.knowledge(ev.KnowledgeProductPublished, changed, True)]

        return await self._change(
            actor,
            KNOWLEDGE,
            product_id,
            version,
            lambda who: require_owner_or_reviewer(actor, who, "publish a knowledge product"),
            apply,
        )

    async def archive_knowledge(
        self, actor: Identity, product_id: str, version: int
    ) -> KnowledgeProduct:
        """Withdraw a published knowledge product."""

        def apply(
            tx: Transaction, k: KnowledgeProduct, lookup: Lookup
        ) -> tuple[KnowledgeProduct, list[Event]]:
            changed = record_rules.archive_knowledge(k, self.clock())
            verified = self._verified_flag(KNOWLEDGE, changed, lookup)
            return changed, [self.events.knowledge(ev.KnowledgeProductArchived, changed, verified)]

        return await self._change(
            actor,
            KNOWLEDGE,
            product_id,
            version,
            lambda who: require_owner_or_reviewer(actor, who, "archive a knowledge product"),
            apply,
        )

    async def get_knowledge(self, actor: Identity, product_id: str) -> KnowledgeProduct:
        """One knowledge product the caller may see."""
        return (await self._get(actor, KNOWLEDGE, product_id))[0]

    async def list_knowledge(
        self, actor: Identity, filters: Filters, size: int, token: str
    ) -> Page[KnowledgeProduct]:
        """A page of knowledge products the caller may see."""
        return await self._list(actor, KNOWLEDGE, filters, size, token)

    # -- needs ----------------------------------------------------------------------------------

    async def post_need(self, actor: Identity, organization_id: str, draft: NeedContent) -> Need:
        """An OPEN need of the caller's verified organization (NeedPosted)."""
        return await self._create(
            actor,
            NEEDS,
            organization_id,
            "need.seeker_organization_id",
            lambda: check.validate_need(draft),
            NeedStatus.OPEN,
            posted=lambda need: self.events.need(ev.NeedPosted, need, True),
        )

    async def update_need(
        self,
        actor: Identity,
        need_id: str,
        version: int,
        draft: NeedContent,
        status: str,
        mask: Sequence[str],
    ) -> Need:
        """Edit a need or move it forward."""
        if not version:
            raise ValidationError.single("need.version", "is required")
        v = Violations()
        new_status = check.enum_value(v, "need.status", status, NeedStatus, required=False)
        v.raise_if_any()
        content_mask = [m for m in mask if m != "status"]
        if mask and "status" not in mask:
            new_status = None

        def apply(tx: Transaction, n: Need, lookup: Lookup) -> tuple[Need, list[Event]] | None:
            content = n.content
            if content_mask or not mask:
                content = check.validate_need(_masked(n.content, draft, content_mask, "need"))
            outcome = record_rules.update_need(n, content, new_status, self.clock())
            if outcome is None:
                return None
            changed, names = outcome
            verified = self._verified_flag(NEEDS, changed, lookup)
            return changed, [self.events.need_updated(changed, verified, names)]

        return await self._change(
            actor,
            NEEDS,
            need_id,
            version,
            lambda who: require_owner(actor, who, "edit a need"),
            apply,
        )

    async def close_need(self, actor: Identity, need_id: str, version: int, reason: str) -> Need:
        """Close a need (NeedClosed)."""
        why = check.reason(reason)

        def apply(tx: Transaction, n: Need, lookup: Lookup) -> tuple[Need, list[Event]]:
            changed = record_rules.close_need(n, why, self.clock())
            verified = self._verified_flag(NEEDS, changed, lookup)
            return changed, [self.events.need(ev.NeedClosed, changed, verified)]

        return await self._change(
            actor,
            NEEDS,
            need_id,
            version,
            lambda who: require_owner_or_reviewer(actor, who, "close a need"),
            apply,
        )

    async def get_need(self, actor: Identity, need_id: str) -> Need:
        """One need."""
        return (await self._get(actor, NEEDS, need_id))[0]

    async def list_needs(
        self, actor: Identity, filters: Filters, size: int, token: str
    ) -> Page[Need]:
        """A page of needs."""
        return await self._list(actor, NEEDS, filters, size, token)

    # -- funding opportunities ------------------------------------------------------------------

    async def create_funding(
        self, actor: Identity, organization_id: str, draft: FundingContent
    ) -> FundingOpportunity:
        """A DRAFT funding opportunity of the caller's organization."""
        return await self._create(
            actor,
            FUNDING,
            organization_id,
            "funding_opportunity.funder_organization_id",
            lambda: check.validate_funding(draft),
            FundingStatus.DRAFT,
        )

    async def update_funding(
        self,
        actor: Identity,
        funding_id: str,
        version: int,
        draft: FundingContent,
        mask: Sequence[str],
    ) -> FundingOpportunity:
        """Edit a draft or open funding opportunity."""
        return await self._edit(
            actor,
            FUNDING,
            funding_id,
            version,
            "funding_opportunity",
            lambda current: check.validate_funding(
                _masked(current, draft, mask, "funding_opportunity")
            ),
            record_rules.update_funding,
            FundingStatus.OPEN,
            self.events.funding_updated,
        )

    async def publish_funding(
        self, actor: Identity, funding_id: str, version: int
    ) -> FundingOpportunity:
        """Open a draft (FundingPublished); its funder must be verified."""

        def apply(
            tx: Transaction, f: FundingOpportunity, lookup: Lookup
        ) -> tuple[FundingOpportunity, list[Event]]:
            require_verified(resolve(f.funder_organization_id, lookup), f.funder_organization_id)
            changed = record_rules.publish_funding(f, self.clock())
            return changed, [self.events.funding(ev.FundingPublished, changed, True)]

        return await self._change(
            actor,
            FUNDING,
            funding_id,
            version,
            lambda who: require_owner(actor, who, "publish a funding opportunity"),
            apply,
        )

    async def close_funding(
        self, actor: Identity, funding_id: str, version: int, reason: str
    ) -> FundingOpportunity:
        """Close an open funding opportunity early (FundingClosed)."""
        why = check.reason(reason)

        def apply(
            tx: Transaction, f: FundingOpportunity, lookup: Lookup
        ) -> tuple[FundingOpportunity, list[Event]]:
            changed = record_rules.close_funding(f, why, self.clock())
            verified = self._verified_flag(FUNDING, changed, lookup)
            return changed, [self.events.funding(ev.FundingClosed, changed, verified)]

        return await self._change(
            actor,
            FUNDING,
            funding_id,
            version,
            lambda who: require_owner_or_reviewer(actor, who, "close a funding opportunity"),
            apply,
        )

    async def get_funding(self, actor: Identity, funding_id: str) -> FundingOpportunity:
        """One funding opportunity the caller may see."""
        return (await self._get(actor, FUNDING, funding_id))[0]

    async def list_funding(
        self, actor: Identity, filters: Filters, size: int, token: str
    ) -> Page[FundingOpportunity]:
        """A page of funding opportunities the caller may see."""
        return await self._list(actor, FUNDING, filters, size, token)


class _NotPrefetched(Exception):
    """A decision needed an organization that was not read with the record."""


def _prefetched(known: dict[str, OrganizationRef | None]) -> Lookup:
    """A lookup over organizations already read; _NotPrefetched for any other."""

    def lookup(org_id: str) -> OrganizationRef | None:
        try:
            return known[org_id]
        except KeyError:
            raise _NotPrefetched(org_id) from None

    return lookup


def _remembered(lookup: Lookup, known: dict[str, OrganizationRef | None] | None = None) -> Lookup:
    """lookup reading each organization once (for one request: access, then shown flag),
    starting from the known ones."""
    seen: dict[str, OrganizationRef | None] = dict(known or {})

    def remembered(org_id: str) -> OrganizationRef | None:
        if org_id not in seen:
            seen[org_id] = lookup(org_id)
        return seen[org_id]

    return remembered


def _organizations(
    get_many: Callable[[Collection[str]], dict[str, OrganizationRef]], org_ids: Collection[str]
) -> dict[str, OrganizationRef]:
    """The organizations org_ids name and every one their merges redirect to (as far as
    ``resolve`` follows), by id: a lookup table for a whole batch, one read per merge level."""
    found: dict[str, OrganizationRef] = {}
    wanted = {i for i in org_ids if i}
    for _ in range(MAX_REDIRECTS + 1):
        if not wanted:
            break
        batch = get_many(wanted)
        found.update(batch)
        wanted = {
            o.merged_into for o in batch.values() if o.merged_into and o.merged_into not in found
        }
    return found


def _with_earlier(v: Violations, validate: Callable[[], T]) -> T:
    """validate()'s result, raising its violations together with those already in v."""
    try:
        result = validate()
    except ValidationError as exc:
        raise ValidationError([*v.items, *exc.violations]) from None
    v.raise_if_any()
    return result
