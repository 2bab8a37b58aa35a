"""The gRPC servicer: translate requests into service calls and results into replies, nothing
else. Validation, authorization and errors live in the service and domain layers; the platform
interceptor maps domain errors to status codes."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from ssg.contracts.common.v1 import geography_pb2, paging_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ssg.platform.grpc.interceptors import current_identity
from ssg.recommendation import mapping
from ssg.recommendation.domain.matching import NeedSpec
from ssg.recommendation.service import RecommendationService

Context: TypeAlias = grpc.aio.ServicerContext


def _region(value: int) -> str:
    if value == geography_pb2.REGION_UNSPECIFIED or value not in geography_pb2.Region.values():
        return ""
    return geography_pb2.Region.Name(value).removeprefix("REGION_")  # type: ignore[arg-type]


def _need(d: pb.NeedDescription) -> NeedSpec:
    return NeedSpec(
        title=d.title,
        problem=d.problem_statement,
        sdgs=tuple(int(g) for g in d.sdgs),
        targets=tuple(t.code for t in d.sdg_targets),
        country=d.country,
        seeker_organization_id=d.seeker_organization_id,
    )


class RecommendationServicer(pb_grpc.RecommendationServiceServicer):
    """ssg.recommendation.v1.RecommendationService on top of RecommendationService."""

    def __init__(self, service: RecommendationService) -> None:
        self.service = service

    async def RecordInteraction(
        self, request: pb.RecordInteractionRequest, context: Context
    ) -> pb.RecordInteractionResponse:
        """Record and publish one interaction."""
        recorded = await self.service.record_interaction(current_identity(), request.interaction)
        return pb.RecordInteractionResponse(interaction=recorded)

    async def Recommend(
        self, request: pb.RecommendRequest, context: Context
    ) -> pb.RecommendResponse:
        """Ranked items with reasons."""
        results, cold = await self.service.recommend(
            current_identity(),
            request.user_id,
            request.organization_id,
            request.page_size,
            [int(g) for g in request.filter.sdgs],
            [_region(r) for r in request.filter.regions],
            [int(k) for k in request.filter.kinds],
        )
        return pb.RecommendResponse(
            recommendations=[mapping.recommendation_to_proto(s) for s in results], cold_start=cold
        )

    async def SimilarItems(
        self, request: pb.SimilarItemsRequest, context: Context
    ) -> pb.SimilarItemsResponse:
        """Items like one item."""
        results = await self.service.similar(request.item_id, request.page_size)
        return pb.SimilarItemsResponse(items=[mapping.recommendation_to_proto(s) for s in results])

    async def ExplainRecommendation(
        self, request: pb.ExplainRecommendationRequest, context: Context
    ) -> pb.ExplainRecommendationResponse:
        """One item with every reason."""
        scored = await self.service.explain(
            current_identity(), request.user_id, request.organization_id, request.item_id
        )
        return pb.ExplainRecommendationResponse(
            recommendation=mapping.recommendation_to_proto(scored)
        )

    async def MatchNeed(
        self, request: pb.MatchNeedRequest, context: Context
    ) -> pb.MatchNeedResponse:
        """Ranked solutions and providers for a need."""
        results = await self.service.match_need(
            request.need_id,
            _need(request.need) if request.HasField("need") else None,
            request.page_size,
            current_identity(),
        )
        return pb.MatchNeedResponse(matches=[mapping.solution_match_to_proto(m) for m in results])

    async def GetMatch(self, request: pb.GetMatchRequest, context: Context) -> pb.GetMatchResponse:
        """One match."""
        match = await self.service.get_match(current_identity(), request.id)
        return pb.GetMatchResponse(match=mapping.match_to_proto(match))

    async def ListMatches(
        self, request: pb.ListMatchesRequest, context: Context
    ) -> pb.ListMatchesResponse:
        """A page of an organization's matches."""
        page = await self.service.list_matches(
            current_identity(),
            request.organization_id,
            list(request.statuses),
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListMatchesResponse(
            matches=[mapping.match_to_proto(m) for m in page.items],
            page=paging_pb2.PageResponse(next_page_token=page.next_page_token),
        )

    async def AcceptMatch(
        self, request: pb.AcceptMatchRequest, context: Context
    ) -> pb.AcceptMatchResponse:
        """The caller's side accepts."""
        match = await self.service.accept_match(current_identity(), request.id)
        return pb.AcceptMatchResponse(match=mapping.match_to_proto(match))

    async def DeclineMatch(
        self, request: pb.DeclineMatchRequest, context: Context
    ) -> pb.DeclineMatchResponse:
        """The caller's side declines."""
        match = await self.service.decline_match(current_identity(), request.id, request.reason)
        return pb.DeclineMatchResponse(match=mapping.match_to_proto(match))

    async def AdvanceMatch(
        self, request: pb.AdvanceMatchRequest, context: Context
    ) -> pb.AdvanceMatchResponse:
        """The match moves one step on."""
        match = await self.service.advance_match(
            current_identity(), request.id, request.status, request.note
        )
        return pb.AdvanceMatchResponse(match=mapping.match_to_proto(match))

    async def SuggestSdgs(
        self, request: pb.SuggestSdgsRequest, context: Context
    ) -> pb.SuggestSdgsResponse:
        """SDG and target suggestions for a text."""
        found = await self.service.suggest_sdgs(request.text, request.max_suggestions)
        return pb.SuggestSdgsResponse(
            suggestions=[mapping.sdg_suggestion_to_proto(s) for s in found]
        )
