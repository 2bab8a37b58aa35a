"""Load: a fixed-rate mix of the platform's calls against a running local stack: searches,
recommendations and interactions, reads of solutions and organizations, submissions and needs.

Open loop: calls start on a fixed schedule (``--rate`` per second, for ``--seconds``) whatever
the answers' speed, so a slow service shows as latency and backlog, not as a lower offered load.
Each call kind has a weight; the report gives per kind the calls, errors (by status), throughput,
p50 and p99. Every call carries a deadline, and the run stops by itself.

A gRPC driver of our own rather than locust: the clients are grpc.aio stubs on one event loop,
with no gevent monkey-patching of a process that also runs grpc.aio.

    make up                                          # the stack with its demo data
    uv run python tests/load/load_mix.py --rate 40 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import statistics
import sys
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ssg.contracts.catalog.v1 import catalog_service_pb2 as cat
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from ssg.contracts.catalog.v1 import need_pb2, solution_pb2
from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.recommendation.v1 import interaction_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as rec
from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc as rec_grpc
from ssg.contracts.registration.v1 import registration_service_pb2 as reg
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as reg_grpc
from ssg.contracts.search.v1 import search_service_pb2 as srch
from ssg.contracts.search.v1 import search_service_pb2_grpc as srch_grpc
from ssg.platform.auth.tokens import DevTokenIssuer, Role

PORTS = Path(__file__).resolve().parents[2] / "deploy" / "local" / "ports.toml"
INSTANCE = "global"
DEADLINE_SECONDS = 10.0
ISSUER = DevTokenIssuer()
# What readers look for: words of the demo data's practices with the goal they filter on (a
# bare common word matches most of the index, which the local OpenSearch stand-in scores and
# facets slowly; real readers narrow by goal). Each finds solutions with all its words, so no
# search pays for the any-word retry (ADR 0013).
SEARCHES = (
    ("water committees", sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION),
    ("solar pumps", sdg_pb2.SDG_AFFORDABLE_AND_CLEAN_ENERGY),
    ("school meals", sdg_pb2.SDG_ZERO_HUNGER),
    ("community health workers", sdg_pb2.SDG_GOOD_HEALTH_AND_WELL_BEING),
    ("climate adaptation", sdg_pb2.SDG_CLIMATE_ACTION),
    ("cash transfers", sdg_pb2.SDG_NO_POVERTY),
)
READERS = 50  # distinct signed-in people who search, read recommendations and interact

Call = Callable[[], Awaitable[object]]


@dataclass
class Kind:
    """One kind of call in the mix and what was measured for it."""

    name: str
    weight: int
    call: Call
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    # The first message of each failing status, so that a report says why.
    error_details: dict[str, str] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in milliseconds (nan without answers)."""
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1] * 1000


@dataclass
class Report:
    """What one run measured."""

    rate: float
    seconds: float
    elapsed: float
    kinds: list[Kind]

    @property
    def errors(self) -> int:
        """Failed calls of every kind."""
        return sum(sum(k.errors.values()) for k in self.kinds)

    def worst_p99_ms(self) -> float:
        """The highest per-kind p99, in milliseconds."""
        return max((k.percentile(99) for k in self.kinds if k.latencies), default=float("nan"))

    def markdown(self) -> str:
        """The report as a markdown table."""
        lines = [
            f"Offered {self.rate:g} calls/s for {self.seconds:g} s (open loop); "
            f"all answered after {self.elapsed:.1f} s.",
            "",
            "| call | calls | errors | calls/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for k in self.kinds:
            done = len(k.latencies) + sum(k.errors.values())
            errors = ", ".join(f"{code} {n}" for code, n in k.errors.items()) or "0"
            lines.append(
                f"| {k.name} | {done} | {errors} | {len(k.latencies) / self.elapsed:.1f} "
                f"| {k.percentile(50):.1f} | {k.percentile(99):.1f} |"
            )
        for k in self.kinds:
            lines += [f"- {k.name} {code}: {why}" for code, why in k.error_details.items()]
        return "\n".join(lines)


def metadata(subject: str, *roles: Role, org: str = "") -> tuple[tuple[str, str], ...]:
    """Call metadata with a dev token of the stack's instance."""
    token = ISSUER.issue(subject, roles or (Role.PUBLIC,), organization_id=org, instance=INSTANCE)
    return (("authorization", f"Bearer {token}"),)


async def mix(
    registration: reg_grpc.RegistrationServiceStub,
    catalog: cat_grpc.CatalogServiceStub,
    search: srch_grpc.SearchServiceStub,
    recommendation: rec_grpc.RecommendationServiceStub,
    rng: random.Random,
) -> list[Kind]:
    """The call kinds, with ids of published solutions and verified organizations to use."""
    request = cat.ListSolutionsRequest()
    request.page.page_size = 100
    listed = await catalog.ListSolutions(request, timeout=DEADLINE_SECONDS)
    solutions = [s.id for s in listed.solutions]
    # Owners whose organization is public now: one suspended since it published (reviewers act
    # on a shared stack) is neither readable nor allowed to submit.
    owners = []
    for org in sorted({s.organization_id for s in listed.solutions}):
        try:
            await registration.GetOrganization(
                reg.GetOrganizationRequest(id=org), timeout=DEADLINE_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            continue
        owners.append(org)
    if not solutions or not owners:
        raise SystemExit("no published solutions: start the stack with its demo data (make up)")
    members = {
        org: metadata(f"load-member-{n}", Role.MEMBER, org=org) for n, org in enumerate(owners)
    }

    def a_solution(org: str) -> solution_pb2.Solution:
        return solution_pb2.Solution(
            organization_id=org,
            title=f"Load test practice {uuid.uuid4().hex[:10]}",
            summary="A practice written by the load test, kept as a draft.",
            approach="Written, submitted, never published.",
            sdgs=[sdg_pb2.SDG_QUALITY_EDUCATION],
            implementing_countries=["GHA"],
            modality=solution_pb2.COOPERATION_MODALITY_SOUTH_SOUTH,
            period=solution_pb2.Period(start_date="2022-01-01", end_date="2023-12-31"),
            language="en",
        )

    async def submit() -> object:
        org = rng.choice(owners)
        made = await catalog.CreateSolution(
            cat.CreateSolutionRequest(solution=a_solution(org)),
            metadata=members[org],
            timeout=DEADLINE_SECONDS,
        )
        return await catalog.SubmitSolution(
            cat.SubmitSolutionRequest(id=made.solution.id),
            metadata=members[org],
            timeout=DEADLINE_SECONDS,
        )

    async def post_need() -> object:
        org = rng.choice(owners)
        need = need_pb2.Need(
            seeker_organization_id=org,
            title=f"Load test need {uuid.uuid4().hex[:10]}",
            problem_statement="Posted by the load test.",
            sdgs=[sdg_pb2.SDG_ZERO_HUNGER],
            country="SEN",
            support_kinds=[need_pb2.SUPPORT_KIND_CAPACITY_BUILDING],
            deadline="2031-12-31",
        )
        return await catalog.PostNeed(
            cat.PostNeedRequest(need=need), metadata=members[org], timeout=DEADLINE_SECONDS
        )

    subjects = [f"load-reader-{n}" for n in range(READERS)]
    tokens = {subject: metadata(subject) for subject in subjects}
    # Interactions name items recommendation already knows (it learns the catalog from events):
    # the ones it recommends to a newcomer.
    known = await recommendation.Recommend(
        rec.RecommendRequest(user_id="load-newcomer", page_size=50),
        metadata=metadata("load-newcomer"),
        timeout=DEADLINE_SECONDS,
    )
    items = [r.item_id for r in known.recommendations]

    async def recommend() -> object:
        subject = rng.choice(subjects)
        return await recommendation.Recommend(
            rec.RecommendRequest(user_id=subject, page_size=10),
            metadata=tokens[subject],
            timeout=DEADLINE_SECONDS,
        )

    async def interact() -> object:
        return await recommendation.RecordInteraction(
            rec.RecordInteractionRequest(
                interaction=interaction_pb2.Interaction(
                    item_id=rng.choice(items),
                    kind=rng.choice(
                        [
                            interaction_pb2.INTERACTION_KIND_VIEW,
                            interaction_pb2.INTERACTION_KIND_SAVE,
                        ]
                    ),
                )
            ),
            metadata=tokens[rng.choice(subjects)],
            timeout=DEADLINE_SECONDS,
        )

    async def search_for() -> object:
        words, goal = rng.choice(SEARCHES)
        return await search.Search(
            srch.SearchRequest(query=words, filters=srch.SearchFilters(sdgs=[goal])),
            timeout=DEADLINE_SECONDS,
        )

    return [
        Kind("Search", 3, search_for),
        Kind("Recommend", 3, recommend),
        # Without items recommendation knows (it is still learning the catalog) none is offered.
        Kind("RecordInteraction", 2 if items else 0, interact),
        Kind(
            "GetSolution",
            10,
            lambda: catalog.GetSolution(
                cat.GetSolutionRequest(id=rng.choice(solutions)), timeout=DEADLINE_SECONDS
            ),
        ),
        Kind(
            "ListSolutions (SDG)",
            3,
            lambda: catalog.ListSolutions(
                cat.ListSolutionsRequest(sdg=rng.randint(1, 17)),  # type: ignore[arg-type]
                timeout=DEADLINE_SECONDS,
            ),
        ),
        Kind(
            "GetOrganization",
            5,
            lambda: registration.GetOrganization(
                reg.GetOrganizationRequest(id=rng.choice(owners)), timeout=DEADLINE_SECONDS
            ),
        ),
        Kind("CreateSolution + Submit", 2, submit),
        Kind("PostNeed", 1, post_need),
    ]


async def run(addresses: Mapping[str, str], rate: float, seconds: float, seed: int = 7) -> Report:
    """Offer rate calls per second for seconds to the stack at addresses; wait for every answer."""
    rng = random.Random(seed)
    async with (
        grpc.aio.insecure_channel(addresses["registration"]) as registration_channel,
        grpc.aio.insecure_channel(addresses["catalog"]) as catalog_channel,
        grpc.aio.insecure_channel(addresses["search"]) as search_channel,
        grpc.aio.insecure_channel(addresses["recommendation"]) as recommendation_channel,
    ):
        kinds = await mix(
            reg_grpc.RegistrationServiceStub(registration_channel),
            cat_grpc.CatalogServiceStub(catalog_channel),
            srch_grpc.SearchServiceStub(search_channel),
            rec_grpc.RecommendationServiceStub(recommendation_channel),
            rng,
        )
        kinds = [k for k in kinds if k.weight]
        weights = [k.weight for k in kinds]
        pending: list[asyncio.Task[None]] = []

        async def one(kind: Kind) -> None:
            started = time.perf_counter()
            try:
                await kind.call()
            except grpc.aio.AioRpcError as exc:
                kind.errors[exc.code().name] += 1
                kind.error_details.setdefault(exc.code().name, str(exc.details())[:300])
                return
            kind.latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        total = int(rate * seconds)
        for n in range(total):
            # Sleep until this call's slot: the schedule does not wait for answers.
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = rng.choices(kinds, weights)[0]
            pending.append(asyncio.create_task(one(kind)))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - began
    return Report(rate, seconds, elapsed, kinds)


def addresses_from(ports_file: Path) -> dict[str, str]:
    """gRPC address of every process with one in a ports.toml."""
    table = tomllib.loads(ports_file.read_text())
    return {
        name: f"{table['host']}:{entry['grpc']}"
        for name, entry in table["services"].items()
        if "grpc" in entry
    }


def main() -> int:
    """Run the mix against the stack of a ports file and print the report; 1 on any error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=40.0, help="calls started per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long calls start")
    parser.add_argument("--ports", type=Path, default=PORTS, help="the stack's ports.toml")
    args = parser.parse_args()
    if args.rate <= 0 or not 0 < args.seconds <= 3600:
        parser.error("rate must be positive and seconds within (0, 3600]")
    report = asyncio.run(run(addresses_from(args.ports), args.rate, args.seconds))
    print(report.markdown())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
