"""Seeding the catalog: the demo solutions, knowledge products, needs and funding opportunities
(``ssg.catalog.demo``) of the demo organizations registration holds.

Order and idempotency:

1. Organization ids come from the registration API (ListOrganizations as an operator,
   matched by the demo names); a missing organization means registration was not seeded.
2. The catalog learns organizations from registration's events (its worker). Seeding waits,
   with a deadline, until a dry-run import of the demo solutions no longer finds an unknown
   organization: the read model then knows every owner and partner.
3. Solutions go in through ImportSolutions (batches, idempotent on the demo external ids) as
   drafts, then each walks its review flow with member and reviewer tokens to its demo status
   (most are published). A step runs only if the solution has not reached its status yet.
   Submitting needs the organization VERIFIED in the read model: a refusal because the worker
   has not seen the verification yet is retried until the deadline.
4. Knowledge products, needs and funding opportunities are created through their RPCs unless
   one with the same organization and title exists (they carry no client key), then moved to
   their demo status.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from rich.progress import Progress

from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.contracts.catalog.v1 import funding_pb2, knowledge_product_pb2, need_pb2, solution_pb2
from ssg.contracts.common.v1 import paging_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as reg_pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as reg_grpc
from ssg.platform.auth.tokens import DevTokenIssuer, Role

if TYPE_CHECKING:  # the service packages are optional: only installed services are seeded
    from ssg.catalog.demo import (
        DemoCatalog,
        DemoFunding,
        DemoKnowledge,
        DemoNeed,
        DemoSolution,
    )

T = TypeVar("T")
CATALOG_HEALTH = "ssg.catalog.v1.CatalogService"
CALL_SECONDS = 60.0  # an import batch of 500 solutions is one transaction
LEARN_SECONDS = 120.0  # how long the catalog worker may take to learn the organizations
IMPORT_BATCH = 500
PAGE = 100
S = solution_pb2


class CatalogSeedError(Exception):
    """Catalog seeding could not finish; the message says why."""


@dataclass
class CatalogSeedSummary:
    """What seeding the catalog did."""

    service: str = "catalog"
    solutions: int = 0
    solutions_new: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    knowledge: int = 0
    knowledge_new: int = 0
    needs: int = 0
    needs_new: int = 0
    funding: int = 0
    funding_new: int = 0
    import_seconds: float = 0.0
    seconds: float = 0.0

    def line(self) -> str:
        """One summary line for the operator."""
        order = ("PUBLISHED", "DRAFT", "SUBMITTED", "IN_REVIEW", "CHANGES_REQUESTED", "REJECTED")
        statuses = ", ".join(f"{self.statuses[s]} {s.lower()}" for s in order if self.statuses[s])
        rate = self.solutions / self.import_seconds if self.import_seconds else 0.0
        return (
            f"{self.service}: {self.solutions} solutions ({self.solutions_new} new, imported at "
            f"{rate:,.0f}/s; {statuses}), {self.knowledge} knowledge products "
            f"({self.knowledge_new} new), {self.needs} needs ({self.needs_new} new), "
            f"{self.funding} funding opportunities ({self.funding_new} new) in {self.seconds:.1f} s"
        )


def _status(number: int) -> str:
    return str(S.SolutionStatus.Name(number)).removeprefix("SOLUTION_STATUS_")  # type: ignore[arg-type]


def _verification_lag(exc: grpc.aio.AioRpcError) -> bool:
    """A refusal the catalog worker will lift once it has seen the organization's events."""
    details = exc.details() or ""
    return exc.code() is grpc.StatusCode.FAILED_PRECONDITION and (
        "not known to the catalog" in details or "only verified organizations" in details
    )


class CatalogSeeder:
    """Loads the catalog demo data through the catalog API."""

    def __init__(
        self,
        stub: pb_grpc.CatalogServiceAsyncStub,
        registration: reg_grpc.RegistrationServiceAsyncStub,
        data: DemoCatalog,
        *,
        instance: str = "global",
        concurrency: int = 16,
        issuer: DevTokenIssuer | None = None,
        learn_seconds: float = LEARN_SECONDS,
    ) -> None:
        self.stub = stub
        self.registration = registration
        self.data = data
        self.instance = instance
        self.issuer = issuer or DevTokenIssuer()
        self.learn_seconds = learn_seconds
        self.ids: dict[str, str] = {}  # organization demo key -> registration id
        self.summary = CatalogSeedSummary()
        self._tokens: dict[tuple[str, Role, str], list[tuple[str, str]]] = {}
        self._gate = asyncio.Semaphore(concurrency)
        self._deadline = 0.0

    def _auth(self, subject: str, role: Role, org: str = "") -> list[tuple[str, str]]:
        key = (subject, role, org)
        if key not in self._tokens:
            token = self.issuer.issue(subject, [role], instance=self.instance, organization_id=org)
            self._tokens[key] = [("authorization", f"Bearer {token}")]
        return self._tokens[key]

    @property
    def operator(self) -> list[tuple[str, str]]:
        return self._auth("demo-operator", Role.OPERATOR)

    @property
    def reviewer(self) -> list[tuple[str, str]]:
        return self._auth("demo-reviewer", Role.REVIEWER)

    def member(self, org_key: str) -> list[tuple[str, str]]:
        """A member token of the organization (its demo admin)."""
        org = self.data.organizations.organization(org_key)
        return self._auth(org.admin_subject or "demo-member", Role.MEMBER, self.ids[org_key])

    async def _patient(self, call: Callable[[], Awaitable[T]]) -> T:
        """call, retried while the read model has not caught up with registration (deadline)."""
        delay = 0.1
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if not _verification_lag(exc) or time.monotonic() > self._deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- organizations ----------------------------------------------------------------------------

    async def resolve_organizations(self) -> None:
        """Registration ids of the demo organizations, by their (unique) demo names."""
        by_name: dict[str, str] = {}
        token = ""
        while True:
            request = reg_pb.ListOrganizationsRequest(
                page=paging_pb2.PageRequest(page_size=PAGE, page_token=token)
            )
            reply = await self.registration.ListOrganizations(
                request, metadata=self.operator, timeout=CALL_SECONDS
            )
            by_name.update({o.name.casefold(): o.id for o in reply.organizations})
            token = reply.page.next_page_token
            if not token:
                break
        needed = self.data.organization_keys()
        missing = []
        for org in self.data.organizations.organizations:
            found = by_name.get(org.draft.name.casefold())
            if found:
                self.ids[org.key] = found
            elif org.key in needed:
                missing.append(org.draft.name)
        if missing:
            raise CatalogSeedError(
                f"{len(missing)} demo organizations are not registered (e.g. {missing[0]!r}): "
                "seed registration first (`ssg seed registration`, or `ssg seed`)"
            )

    def _rows(self, records: Sequence[DemoSolution]) -> list[pb.ImportRow]:
        from ssg.catalog.demo import solution_message

        return [
            pb.ImportRow(external_id=r.key, solution=solution_message(r, self.ids)) for r in records
        ]

    async def wait_known(self) -> None:
        """Until a dry-run import finds no unknown organization (the worker has caught up).

        The probe is every demo solution plus, for each other organization the demo records
        refer to, a copy of the first solution owned by it (dry run: nothing is written)."""
        rows = self._rows(self.data.solutions)
        owners = {r.organization_key for r in self.data.solutions} | {
            p.organization_id for r in self.data.solutions for p in r.content.partners
        }
        for key in sorted(self.data.organization_keys() - owners):
            probe = pb.ImportRow(external_id=f"probe-{key}", solution=rows[0].solution)
            probe.solution.organization_id = self.ids[key]
            rows.append(probe)
        batches = [rows[i : i + IMPORT_BATCH] for i in range(0, len(rows), IMPORT_BATCH)]
        last = ""
        while True:
            unknown = 0
            for rows in batches:
                reply = await self.stub.ImportSolutions(
                    pb.ImportSolutionsRequest(rows=rows, dry_run=True),
                    metadata=self.operator,
                    timeout=CALL_SECONDS,
                )
                problems = [
                    v
                    for r in reply.results
                    for v in r.violations
                    if "unknown organization" in v.description
                ]
                unknown += len(problems)
                other = [
                    f"{r.external_id}: {v.field}: {v.description}"
                    for r in reply.results
                    for v in r.violations
                    if "unknown organization" not in v.description
                ]
                if other:
                    raise CatalogSeedError(f"demo rows the catalog refuses: {other[0]}")
                if problems:
                    last = problems[0].description
            if not unknown:
                return
            if time.monotonic() > self._deadline:
                raise CatalogSeedError(
                    f"the catalog has not learned the demo organizations after "
                    f"{self.learn_seconds:g}s ({unknown} unknown references, e.g. {last}); is "
                    "the catalog worker running? (Locally, Kafka keeps events in memory: after a "
                    "restart the catalog cannot learn organizations registered before it; "
                    "start from an empty .run/mongodb)"
                )
            await asyncio.sleep(0.5)

    # -- solutions --------------------------------------------------------------------------------

    async def import_solutions(self, progress: Progress | None) -> dict[str, str]:
        """Import every demo solution as a draft; solution ids by external id."""
        task = progress.add_task("solutions", total=len(self.data.solutions)) if progress else None
        ids: dict[str, str] = {}
        began = time.monotonic()
        for i in range(0, len(self.data.solutions), IMPORT_BATCH):
            chunk = self.data.solutions[i : i + IMPORT_BATCH]
            reply = await self.stub.ImportSolutions(
                pb.ImportSolutionsRequest(rows=self._rows(chunk)),
                metadata=self.operator,
                timeout=CALL_SECONDS,
            )
            for result in reply.results:
                if result.outcome == pb.IMPORT_OUTCOME_REJECTED:
                    v = result.violations[0] if result.violations else None
                    why = f"{v.field}: {v.description}" if v else "rejected"
                    raise CatalogSeedError(f"demo solution {result.external_id} refused: {why}")
                ids[result.external_id] = result.solution_id
            self.summary.solutions_new += reply.created_count
            if progress is not None and task is not None:
                progress.advance(task, len(chunk))
        self.summary.import_seconds = time.monotonic() - began
        return ids

    async def walk(self, record: DemoSolution, solution_id: str) -> None:
        """Bring one solution from where it stands to its demo status."""
        from ssg.catalog.demo import review_message

        target = record.target_status.value
        async with self._gate:
            s = (
                await self.stub.GetSolution(
                    pb.GetSolutionRequest(id=solution_id),
                    metadata=self.reviewer,
                    timeout=CALL_SECONDS,
                )
            ).solution
            if s.status == S.SOLUTION_STATUS_DRAFT and target != "DRAFT":
                member = self.member(record.organization_key)
                s = (
                    await self._patient(
                        lambda: self.stub.SubmitSolution(
                            pb.SubmitSolutionRequest(id=s.id, version=s.version),
                            metadata=member,
                            timeout=CALL_SECONDS,
                        )
                    )
                ).solution
            if s.status == S.SOLUTION_STATUS_SUBMITTED and target != "SUBMITTED":
                s = (
                    await self.stub.StartSolutionReview(
                        pb.StartSolutionReviewRequest(id=s.id, version=s.version),
                        metadata=self.reviewer,
                        timeout=CALL_SECONDS,
                    )
                ).solution
            if s.status == S.SOLUTION_STATUS_IN_REVIEW and target == "PUBLISHED":
                s = await self._publish(s)  # approved by an earlier, interrupted run?
            if s.status == S.SOLUTION_STATUS_IN_REVIEW and target != "IN_REVIEW" and record.review:
                s = (
                    await self.stub.ReviewSolution(
                        pb.ReviewSolutionRequest(
                            id=s.id, version=s.version, review=review_message(record.review)
                        ),
                        metadata=self.reviewer,
                        timeout=CALL_SECONDS,
                    )
                ).solution
                if target == "PUBLISHED":
                    s = await self._publish(s, approved=True)
        self.summary.statuses[_status(s.status)] += 1

    async def _publish(
        self, s: solution_pb2.Solution, approved: bool = False
    ) -> solution_pb2.Solution:
        """Publish s; unless approved is known, a refusal (no approval yet) returns s as it is."""
        try:
            reply = await self.stub.PublishSolution(
                pb.PublishSolutionRequest(id=s.id, version=s.version),
                metadata=self.reviewer,
                timeout=CALL_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if approved or exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return s
        return reply.solution

    # -- knowledge, needs, funding ----------------------------------------------------------------

    async def _existing(
        self, list_call: Callable[[str], Awaitable[tuple[list[T], str]]]
    ) -> list[T]:
        found: list[T] = []
        token = ""
        while True:
            items, token = await list_call(token)
            found += items
            if not token:
                return found

    async def knowledge(self, progress: Progress | None) -> None:
        """Create (and publish) the demo knowledge products that do not exist yet."""
        from ssg.catalog.demo import knowledge_message

        async def page(token: str) -> tuple[list[knowledge_product_pb2.KnowledgeProduct], str]:
            reply = await self.stub.ListKnowledgeProducts(
                pb.ListKnowledgeProductsRequest(
                    page=paging_pb2.PageRequest(page_size=PAGE, page_token=token)
                ),
                metadata=self.operator,
                timeout=CALL_SECONDS,
            )
            return list(reply.knowledge_products), reply.page.next_page_token

        have = {(k.publishing_organization_id, k.title): k for k in await self._existing(page)}
        task = progress.add_task("knowledge", total=len(self.data.knowledge)) if progress else None
        published = knowledge_product_pb2.KNOWLEDGE_PRODUCT_STATUS_PUBLISHED

        async def one(record: DemoKnowledge) -> None:
            message = knowledge_message(record, self.ids)
            member = self.member(record.organization_key)
            async with self._gate:
                current = have.get((message.publishing_organization_id, message.title))
                if current is None:
                    current = (
                        await self.stub.CreateKnowledgeProduct(
                            pb.CreateKnowledgeProductRequest(knowledge_product=message),
                            metadata=member,
                            timeout=CALL_SECONDS,
                        )
                    ).knowledge_product
                    self.summary.knowledge_new += 1
                if record.publish and current.status != published:
                    await self._patient(
                        lambda: self.stub.PublishKnowledgeProduct(
                            pb.PublishKnowledgeProductRequest(
                                id=current.id, version=current.version
                            ),
                            metadata=member,
                            timeout=CALL_SECONDS,
                        )
                    )
            self.summary.knowledge += 1
            if progress is not None and task is not None:
                progress.advance(task)

        await asyncio.gather(*(one(r) for r in self.data.knowledge))

    async def needs(self, progress: Progress | None) -> None:
        """Post the demo needs that do not exist yet and move them to their demo status."""
        from ssg.catalog.demo import need_message

        async def page(token: str) -> tuple[list[need_pb2.Need], str]:
            reply = await self.stub.ListNeeds(
                pb.ListNeedsRequest(page=paging_pb2.PageRequest(page_size=PAGE, page_token=token)),
                metadata=self.operator,
                timeout=CALL_SECONDS,
            )
            return list(reply.needs), reply.page.next_page_token

        have = {(n.seeker_organization_id, n.title): n for n in await self._existing(page)}
        task = progress.add_task("needs", total=len(self.data.needs)) if progress else None
        order = ["OPEN", "MATCHED", "IN_PROGRESS", "CLOSED"]

        async def one(record: DemoNeed) -> None:
            message = need_message(record, self.ids)
            member = self.member(record.organization_key)
            async with self._gate:
                need = have.get((message.seeker_organization_id, message.title))
                if need is None:
                    need = (
                        await self._patient(
                            lambda: self.stub.PostNeed(
                                pb.PostNeedRequest(need=message),
                                metadata=member,
                                timeout=CALL_SECONDS,
                            )
                        )
                    ).need
                    self.summary.needs_new += 1
                target = record.target_status.value
                current = str(need_pb2.NeedStatus.Name(need.status)).removeprefix("NEED_STATUS_")
                if target in ("MATCHED", "IN_PROGRESS") and order.index(target) > order.index(
                    current
                ):
                    change = need_pb2.Need(
                        id=need.id,
                        version=need.version,
                        status=need_pb2.NeedStatus.Value(f"NEED_STATUS_{target}"),
                    )
                    await self.stub.UpdateNeed(
                        pb.UpdateNeedRequest(need=change, update_mask=FieldMask(paths=["status"])),
                        metadata=member,
                        timeout=CALL_SECONDS,
                    )
                elif target == "CLOSED" and current != "CLOSED":
                    await self.stub.CloseNeed(
                        pb.CloseNeedRequest(
                            id=need.id, version=need.version, reason=record.close_reason
                        ),
                        metadata=member,
                        timeout=CALL_SECONDS,
                    )
            self.summary.needs += 1
            if progress is not None and task is not None:
                progress.advance(task)

        await asyncio.gather(*(one(r) for r in self.data.needs))

    async def funding(self, progress: Progress | None) -> None:
        """Create (and open) the demo funding opportunities that do not exist yet."""
        from ssg.catalog.demo import funding_message

        async def page(token: str) -> tuple[list[funding_pb2.FundingOpportunity], str]:
            reply = await self.stub.ListFundingOpportunities(
                pb.ListFundingOpportunitiesRequest(
                    page=paging_pb2.PageRequest(page_size=PAGE, page_token=token)
                ),
                metadata=self.operator,
                timeout=CALL_SECONDS,
            )
            return list(reply.funding_opportunities), reply.page.next_page_token

        have = {(f.funder_organization_id, f.title): f for f in await self._existing(page)}
        task = progress.add_task("funding", total=len(self.data.funding)) if progress else None

        async def one(record: DemoFunding) -> None:
            message = funding_message(record, self.ids)
            member = self.member(record.organization_key)
            async with self._gate:
                current = have.get((message.funder_organization_id, message.title))
                if current is None:
                    current = (
                        await self.stub.CreateFundingOpportunity(
                            pb.CreateFundingOpportunityRequest(funding_opportunity=message),
                            metadata=member,
                            timeout=CALL_SECONDS,
                        )
                    ).funding_opportunity
                    self.summary.funding_new += 1
                if record.publish and current.status == funding_pb2.FUNDING_STATUS_DRAFT:
                    await self._patient(
                        lambda: self.stub.PublishFundingOpportunity(
                            pb.PublishFundingOpportunityRequest(
                                id=current.id, version=current.version
                            ),
                            metadata=member,
                            timeout=CALL_SECONDS,
                        )
                    )
            self.summary.funding += 1
            if progress is not None and task is not None:
                progress.advance(task)

        await asyncio.gather(*(one(r) for r in self.data.funding))

    # -- all --------------------------------------------------------------------------------------

    async def run(self, progress: Progress | None = None) -> CatalogSeedSummary:
        """Seed everything (see the module docstring for the order)."""
        began = time.monotonic()
        self._deadline = began + self.learn_seconds
        await self.resolve_organizations()
        await self.wait_known()
        ids = await self.import_solutions(progress)
        task = (
            progress.add_task("review flow", total=len(self.data.solutions)) if progress else None
        )

        async def walk(record: DemoSolution) -> None:
            await self.walk(record, ids[record.key])
            if progress is not None and task is not None:
                progress.advance(task)

        await asyncio.gather(*(walk(r) for r in self.data.solutions))
        self.summary.solutions = len(self.data.solutions)
        await self.knowledge(progress)
        await self.needs(progress)
        await self.funding(progress)
        self.summary.seconds = time.monotonic() - began
        return self.summary
