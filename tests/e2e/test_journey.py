"""The platform's journey on the local stack, through the public gRPC APIs only: an organization
registers, a reviewer verifies it, the catalog learns that from the registration events, its
member submits a solution, a reviewer reviews and publishes it, anyone reads it; a second
organization posts a need that anyone can read and filter by region. Search finds the published
solution (learned from catalog events), and recommendation explains it to a reader whose saved
items share its SDG, proposes it to the need as a match of which both sides are alerted (by e-mail
and webhook) and which they find, accept and follow to its recorded results. An internal system's
proposal over AMQP arrives as a draft of its organization."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from kombu import Connection, Exchange

from ssg.contracts.catalog.v1 import catalog_service_pb2 as cat
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as cat_grpc
from ssg.contracts.catalog.v1 import need_pb2, provenance_pb2, review_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2, sdg_pb2
from ssg.contracts.notifications.v1 import notifications_service_pb2 as notif
from ssg.contracts.notifications.v1 import notifications_service_pb2_grpc as notif_grpc
from ssg.contracts.notifications.v1 import subscription_pb2 as sub_pb2
from ssg.contracts.recommendation.v1 import interaction_pb2, match_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as rec
from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc as rec_grpc
from ssg.contracts.registration.v1 import organization_pb2 as org_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as reg
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as reg_grpc
from ssg.contracts.search.v1 import search_service_pb2 as srch
from ssg.contracts.search.v1 import search_service_pb2_grpc as srch_grpc
from ssg.platform.auth.tokens import DevTokenIssuer, Role
from ssg.testing.receivers import plain_text
from ssg.testing.waiting import eventually

from .conftest import LocalStack

ISSUER = DevTokenIssuer()
INSTANCE = "global"
Metadata = tuple[tuple[str, str], ...]


def as_(subject: str, *roles: Role, org: str = "") -> Metadata:
    """Call metadata with a dev token of the stack's instance."""
    token = ISSUER.issue(subject, roles or (Role.PUBLIC,), organization_id=org, instance=INSTANCE)
    return (("authorization", f"Bearer {token}"),)


REVIEWER = as_("journey-reviewer", Role.REVIEWER)
ANYONE: Metadata = ()


@pytest.fixture
async def stubs(local_stack: LocalStack) -> AsyncIterator[tuple[Any, ...]]:
    """Registration, catalog, search, recommendation and notifications stubs on the stack."""
    async with (
        grpc.aio.insecure_channel(local_stack.grpc_address("registration")) as registration,
        grpc.aio.insecure_channel(local_stack.grpc_address("catalog")) as catalog,
        grpc.aio.insecure_channel(local_stack.grpc_address("search")) as search,
        grpc.aio.insecure_channel(local_stack.grpc_address("recommendation")) as recommendation,
        grpc.aio.insecure_channel(local_stack.grpc_address("notifications")) as notifications,
    ):
        yield (
            reg_grpc.RegistrationServiceStub(registration),
            cat_grpc.CatalogServiceStub(catalog),
            srch_grpc.SearchServiceStub(search),
            rec_grpc.RecommendationServiceStub(recommendation),
            notif_grpc.NotificationServiceStub(notifications),
        )


async def verified_organization(registration: Any, name: str, country: str) -> str:
    """Register an organization as a new person and have a reviewer verify it; its id."""
    founder = as_(f"founder-{uuid.uuid4().hex[:8]}")
    registered = await registration.RegisterOrganization(
        reg.RegisterOrganizationRequest(
            request_id=uuid.uuid4().hex,
            organization=org_pb2.Organization(
                name=name,
                type=organization_type_pb2.ORGANIZATION_TYPE_NGO,
                headquarters_country=country,
                sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
                languages=["en"],
            ),
        ),
        metadata=founder,
        timeout=10,
    )
    org = registered.organization
    assert org.status == org_pb2.ORGANIZATION_STATUS_PENDING
    verified = await registration.VerifyOrganization(
        reg.VerifyOrganizationRequest(id=org.id, version=org.version, evidence_note="site visit"),
        metadata=REVIEWER,
        timeout=10,
    )
    assert verified.organization.status == org_pb2.ORGANIZATION_STATUS_VERIFIED
    return str(org.id)


async def once_accepted(call: Callable[[], Awaitable[Any]], what: str) -> Any:
    """call()'s result once the catalog accepts it (it learns organizations from events)."""
    result: list[Any] = []

    async def attempt() -> bool:
        try:
            result.append(await call())
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.PERMISSION_DENIED,
            ):
                raise
            return False
        return True

    await eventually(attempt, what, within=60.0, interval=0.5)
    return result[0]


def water_solution(org_id: str) -> solution_pb2.Solution:
    """A solution of org_id, as its member writes it."""
    return solution_pb2.Solution(
        organization_id=org_id,
        title="Rain-fed cisterns run by village water committees",
        summary="Committees build and maintain household cisterns that store the rainy season.",
        approach="Masons trained by the committees; households pay into a maintenance fund.",
        sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
        sdg_targets=[sdg_pb2.SdgTarget(code="6.1")],
        implementing_countries=["KEN"],
        beneficiary_countries=["TZA"],
        regions=[geography_pb2.REGION_AFRICA],
        modality=solution_pb2.COOPERATION_MODALITY_SOUTH_SOUTH,
        period=solution_pb2.Period(start_date="2021-03-01", end_date="2024-02-29"),
        language="en",
    )


def passing_review() -> review_pb2.Review:
    """Every checklist criterion scored 4, approved."""
    return review_pb2.Review(
        scores=[
            review_pb2.CriterionScore(criterion=c, score=4, comment="evidence seen")
            for c in review_pb2.ReviewCriterion.values()
            if c
        ],
        outcome=review_pb2.REVIEW_OUTCOME_APPROVE,
    )


@pytest.mark.timeout(900)
async def test_register_verify_submit_review_publish_and_post_a_need(
    stubs, local_stack: LocalStack
) -> None:
    registration, catalog, search, recommendation, notifications = stubs
    provider = await verified_organization(registration, "Lake Basin Water Network", "KEN")
    member = as_("provider-member", Role.MEMBER, org=provider)

    # The catalog accepts the member's draft once it has learned the verification.
    draft = (
        await once_accepted(
            lambda: catalog.CreateSolution(
                cat.CreateSolutionRequest(solution=water_solution(provider)),
                metadata=member,
                timeout=10,
            ),
            "the catalog to know the verified provider",
        )
    ).solution
    assert draft.status == solution_pb2.SOLUTION_STATUS_DRAFT
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await catalog.GetSolution(cat.GetSolutionRequest(id=draft.id), timeout=10)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND  # drafts stay with their staff

    # Submitting needs a verified organization: the catalog may still be learning that.
    await once_accepted(
        lambda: catalog.SubmitSolution(
            cat.SubmitSolutionRequest(id=draft.id), metadata=member, timeout=10
        ),
        "the catalog to know the provider is verified",
    )
    await catalog.StartSolutionReview(
        cat.StartSolutionReviewRequest(id=draft.id), metadata=REVIEWER, timeout=10
    )
    await catalog.ReviewSolution(
        cat.ReviewSolutionRequest(id=draft.id, review=passing_review()),
        metadata=REVIEWER,
        timeout=10,
    )
    await catalog.PublishSolution(
        cat.PublishSolutionRequest(id=draft.id), metadata=REVIEWER, timeout=10
    )
    public = (await catalog.GetSolution(cat.GetSolutionRequest(id=draft.id), timeout=10)).solution
    assert public.status == solution_pb2.SOLUTION_STATUS_PUBLISHED
    assert public.provenance.vouching_organization_verified

    # Search learns it from the catalog's events: found by its words, among verified providers.
    async def found() -> Any:
        reply = await search.Search(
            srch.SearchRequest(
                query="rain-fed cisterns village water committees",
                filters=srch.SearchFilters(
                    entity_types=[srch.ENTITY_TYPE_SOLUTION],
                    sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
                    verified_only=True,
                ),
            ),
            timeout=10,
        )
        return next((h for h in reply.hits if h.id == draft.id), None)

    hit = await eventually(found, "search to find the published solution", within=60.0)
    assert hit.verified_provider and hit.entity_type == srch.ENTITY_TYPE_SOLUTION

    # A reader saves another clean-water practice; recommendation then explains ours to them by
    # that SDG focus.
    reader = f"reader-{uuid.uuid4().hex[:8]}"
    listed = await catalog.ListSolutions(
        cat.ListSolutionsRequest(sdg=sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION), timeout=10
    )
    saved = next(s.id for s in listed.solutions if s.id != draft.id)

    async def known(call: Callable[[], Awaitable[Any]]) -> Any:
        """call()'s reply, or None while recommendation has not learned the item yet."""
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    # The worker learns the seeded catalog from its topics first: it may still be on its way.
    await eventually(
        lambda: known(
            lambda: recommendation.RecordInteraction(
                rec.RecordInteractionRequest(
                    interaction=interaction_pb2.Interaction(
                        item_id=saved, kind=interaction_pb2.INTERACTION_KIND_SAVE
                    )
                ),
                metadata=as_(reader),
                timeout=10,
            )
        ),
        "recommendation to know the saved practice",
        within=180.0,
        interval=1.0,
    )

    async def explained() -> Any:
        reply = await known(
            lambda: recommendation.ExplainRecommendation(
                rec.ExplainRecommendationRequest(user_id=reader, item_id=draft.id),
                metadata=as_(reader),
                timeout=10,
            )
        )
        reasons = {r.code: r for r in reply.recommendation.reasons} if reply else {}
        return reasons.get("sdg_focus")

    focus = await eventually(
        explained, "an explanation by the reader's SDG focus", within=180.0, interval=1.0
    )
    assert focus.ref == "6" and focus.weight > 0 and "SDG 6" in focus.text

    # Another organization posts a need: public at once, found by the region of its country.
    seeker = await verified_organization(registration, "Coastal Towns Utility Forum", "MOZ")
    seeker_member = as_("seeker-member", Role.MEMBER, org=seeker)

    # Each side follows its organization's matches: the seeker by e-mail, the provider by webhook.
    seeker_inbox = f"partnerships-{seeker}@example.org"
    provider_hook = f"/matches/{provider}"
    for who, org, topic, channel, address in (
        (
            seeker_member,
            seeker,
            sub_pb2.TOPIC_MATCHES_FOR_MY_NEEDS,
            sub_pb2.CHANNEL_EMAIL,
            seeker_inbox,
        ),
        (
            member,
            provider,
            sub_pb2.TOPIC_NEEDS_FOR_MY_SOLUTIONS,
            sub_pb2.CHANNEL_WEBHOOK,
            local_stack.http.url(provider_hook),
        ),
    ):
        await notifications.Subscribe(
            notif.SubscribeRequest(
                subscription=sub_pb2.Subscription(
                    organization_id=org,
                    channel=channel,
                    address=address,
                    topics=[topic],
                    frequency=sub_pb2.FREQUENCY_INSTANT,
                    language="en",
                )
            ),
            metadata=who,
            timeout=10,
        )
    need = (
        await once_accepted(
            lambda: catalog.PostNeed(
                cat.PostNeedRequest(
                    need=need_pb2.Need(
                        seeker_organization_id=seeker,
                        title="Household water storage for dry months",
                        problem_statement=(
                            "Wells run dry for four months; families buy water. Village water"
                            " committees want household cisterns that store the rainy season."
                        ),
                        sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
                        country="MOZ",
                        support_kinds=[need_pb2.SUPPORT_KIND_KNOWLEDGE_EXCHANGE],
                        deadline="2031-12-31",
                    )
                ),
                metadata=seeker_member,
                timeout=10,
            ),
            "the catalog to know the verified seeker",
        )
    ).need
    seen = (await catalog.GetNeed(cat.GetNeedRequest(id=need.id), timeout=10)).need
    assert seen.status == need_pb2.NEED_STATUS_OPEN
    in_africa = await catalog.ListNeeds(
        cat.ListNeedsRequest(region=geography_pb2.REGION_AFRICA, organization_id=seeker),
        timeout=10,
    )
    assert [n.id for n in in_africa.needs] == [need.id]

    # Recommendation proposes the published solution to the need; each side finds the match
    # among its organization's matches, both accept, and the partnership runs to its results.
    async def proposed() -> Any:
        listed = await recommendation.ListMatches(
            rec.ListMatchesRequest(organization_id=seeker), metadata=seeker_member, timeout=10
        )
        return next((m for m in listed.matches if m.solution_id == draft.id), None)

    match = await eventually(proposed, "a match of the need and the solution", within=120.0)
    assert match.need_id == need.id and match.status == match_pb2.MATCH_STATUS_PROPOSED
    assert match.provider_organization_id == provider and match.reasons

    # Both sides are alerted of the proposal, once each. The need may be proposed other
    # solutions too, each with its own e-mail, so wait for the one naming this match.
    def alerted() -> bool:
        mailed = any(match.id in plain_text(m) for m in local_stack.smtp.to(seeker_inbox))
        return mailed and bool(local_stack.http.at(provider_hook))

    await eventually(alerted, "both sides alerted of the match", within=120.0)
    mail = [m for m in local_stack.smtp.to(seeker_inbox) if match.id in plain_text(m)]
    hooks = [json.loads(r.body) for r in local_stack.http.at(provider_hook)]
    assert len(mail) == 1
    assert [h["item"]["id"] for h in hooks] == [match.id]  # the provider has this one solution
    assert hooks[0]["item"]["kind"] == "match"

    provider_side = await recommendation.ListMatches(
        rec.ListMatchesRequest(
            organization_id=provider, statuses=[match_pb2.MATCH_STATUS_PROPOSED]
        ),
        metadata=member,
        timeout=10,
    )
    assert match.id in {m.id for m in provider_side.matches}

    async def step(call: Any, request: Any, who: Metadata) -> Any:
        return (await call(request, metadata=who, timeout=10)).match

    half = await step(
        recommendation.AcceptMatch, rec.AcceptMatchRequest(id=match.id), seeker_member
    )
    assert half.status == match_pb2.MATCH_STATUS_SEEKER_ACCEPTED
    both = await step(recommendation.AcceptMatch, rec.AcceptMatchRequest(id=match.id), member)
    assert both.status == match_pb2.MATCH_STATUS_ACCEPTED
    for status, note, who in (
        (match_pb2.MATCH_STATUS_AGREED, "Exchange visit agreed", seeker_member),
        (match_pb2.MATCH_STATUS_IMPLEMENTED, "", member),
        (match_pb2.MATCH_STATUS_RESULTS_RECORDED, "120 household cisterns built", seeker_member),
    ):
        advanced = await step(
            recommendation.AdvanceMatch,
            rec.AdvanceMatchRequest(id=match.id, status=status, note=note),
            who,
        )
        assert advanced.status == status
    outcome = await step(recommendation.GetMatch, rec.GetMatchRequest(id=match.id), member)
    assert outcome.status == match_pb2.MATCH_STATUS_RESULTS_RECORDED
    assert outcome.history[-1].note == "120 household cisterns built"
    assert [h.organization_id for h in outcome.history[1:]] == [
        seeker,
        provider,
        seeker,
        provider,
        seeker,
    ]


@pytest.mark.timeout(600)
async def test_an_internal_system_proposes_a_solution_that_arrives_as_a_draft(
    stubs, local_stack: LocalStack
) -> None:
    registration, catalog, *_ = stubs
    org = await verified_organization(registration, "Delta Irrigation Cooperative", "EGY")
    member = as_("cooperative-member", Role.MEMBER, org=org)
    # Proposed at once: the catalog may not have learned the cooperative from registration's
    # event yet, and the proposal waits for it rather than being dead-lettered (ADR 0024).
    external_id = f"pm-{uuid.uuid4().hex[:10]}"
    body = {
        "externalId": external_id,
        "revision": 1,
        "solution": {
            "title": "Drip irrigation kits shared by farmer groups",
            "summary": "Groups of ten farms share drip kits and a repair fund.",
            "organizationId": org,
            "sdgs": ["SDG_ZERO_HUNGER"],
            "implementingCountries": ["EGY"],
            "modality": "COOPERATION_MODALITY_SOUTH_SOUTH",
            "period": {"startDate": "2025-01-01"},
            "language": "en",
        },
    }
    # The stack's ingress takes proposals on its vhost as the guest user.
    amqp_url = local_stack.config.amqp_url
    with Connection(amqp_url, transport_options={"confirm_publish": True}) as connection:
        connection.Producer().publish(
            json.dumps(body).encode(),
            exchange=Exchange("ssg.ingress", "topic", durable=True, no_declare=True),
            routing_key="solution.proposed",
            content_type="application/json",
            content_encoding="binary",
            user_id="guest",
            message_id=f"{external_id}-r1",
            delivery_mode=2,
        )

    async def drafted() -> Any:
        listed = await catalog.ListSolutions(
            cat.ListSolutionsRequest(
                organization_id=org, status=solution_pb2.SOLUTION_STATUS_DRAFT
            ),
            metadata=member,
            timeout=10,
        )
        return next((s for s in listed.solutions if s.provenance.external_id == external_id), None)

    draft = await eventually(drafted, "the proposal to arrive as a draft", within=120.0)
    assert draft.status == solution_pb2.SOLUTION_STATUS_DRAFT
    assert draft.provenance.source == provenance_pb2.RECORD_SOURCE_INGRESS
    assert draft.provenance.producer == "guest"
    assert draft.title == "Drip irrigation kits shared by farmer groups"
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await catalog.GetSolution(cat.GetSolutionRequest(id=draft.id), timeout=10)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND  # never published by the bridge
