"""The gRPC servicer: translate requests into service calls and results into replies, nothing
else. Authorization, validation and errors live in the service and domain layers; the platform
interceptor maps domain errors to status codes."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from ssg.catalog import mapping
from ssg.catalog.service import CatalogService, Filters, ImportRow
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.contracts.catalog.v1 import (
    funding_pb2,
    knowledge_product_pb2,
    need_pb2,
    review_pb2,
    solution_pb2,
)
from ssg.contracts.common.v1 import geography_pb2, paging_pb2
from ssg.platform.grpc.interceptors import current_identity

Context: TypeAlias = grpc.aio.ServicerContext

_REGION = geography_pb2.Region.DESCRIPTOR
_MODALITY = solution_pb2.CooperationModality.DESCRIPTOR
_SOLUTION_STATUS = solution_pb2.SolutionStatus.DESCRIPTOR
_KNOWLEDGE_STATUS = knowledge_product_pb2.KnowledgeProductStatus.DESCRIPTOR
_KNOWLEDGE_TYPE = knowledge_product_pb2.KnowledgeProductType.DESCRIPTOR
_NEED_STATUS = need_pb2.NeedStatus.DESCRIPTOR
_SUPPORT = need_pb2.SupportKind.DESCRIPTOR
_FUNDING_STATUS = funding_pb2.FundingStatus.DESCRIPTOR
_OUTCOME = pb.ImportOutcome.DESCRIPTOR
_REVIEW_OUTCOME = review_pb2.ReviewOutcome.DESCRIPTOR


def _page(token: str) -> paging_pb2.PageResponse:
    return paging_pb2.PageResponse(next_page_token=token)


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    """ssg.catalog.v1.CatalogService on top of CatalogService."""

    def __init__(self, service: CatalogService) -> None:
        self.service = service

    # -- solutions ------------------------------------------------------------------------------

    async def CreateSolution(
        self, request: pb.CreateSolutionRequest, context: Context
    ) -> pb.CreateSolutionResponse:
        """Create a DRAFT solution."""
        s = await self.service.create_solution(
            current_identity(),
            request.solution.organization_id,
            mapping.solution_content(request.solution),
        )
        return pb.CreateSolutionResponse(solution=mapping.solution_to_proto(s))

    async def UpdateSolution(
        self, request: pb.UpdateSolutionRequest, context: Context
    ) -> pb.UpdateSolutionResponse:
        """Apply the masked fields at the given version."""
        s = await self.service.update_solution(
            current_identity(),
            request.solution.id,
            request.solution.version,
            mapping.solution_content(request.solution),
            list(request.update_mask.paths),
        )
        return pb.UpdateSolutionResponse(solution=mapping.solution_to_proto(s))

    async def SubmitSolution(
        self, request: pb.SubmitSolutionRequest, context: Context
    ) -> pb.SubmitSolutionResponse:
        """Send a solution to the reviewers."""
        s = await self.service.submit_solution(current_identity(), request.id, request.version)
        return pb.SubmitSolutionResponse(solution=mapping.solution_to_proto(s))

    async def StartSolutionReview(
        self, request: pb.StartSolutionReviewRequest, context: Context
    ) -> pb.StartSolutionReviewResponse:
        """Take up a submitted solution."""
        s = await self.service.start_review(current_identity(), request.id, request.version)
        return pb.StartSolutionReviewResponse(solution=mapping.solution_to_proto(s))

    async def ReviewSolution(
        self, request: pb.ReviewSolutionRequest, context: Context
    ) -> pb.ReviewSolutionResponse:
        """Record a review."""
        review, s = await self.service.review_solution(
            current_identity(),
            request.id,
            request.version,
            mapping.review_scores(request.review),
            mapping.enum_name(_REVIEW_OUTCOME, request.review.outcome),
            request.review.comment,
        )
        return pb.ReviewSolutionResponse(
            review=mapping.review_to_proto(review), solution=mapping.solution_to_proto(s)
        )

    async def PublishSolution(
        self, request: pb.PublishSolutionRequest, context: Context
    ) -> pb.PublishSolutionResponse:
        """Publish an approved solution."""
        s = await self.service.publish_solution(current_identity(), request.id, request.version)
        return pb.PublishSolutionResponse(solution=mapping.solution_to_proto(s))

    async def ArchiveSolution(
        self, request: pb.ArchiveSolutionRequest, context: Context
    ) -> pb.ArchiveSolutionResponse:
        """Withdraw a published solution."""
        s = await self.service.archive_solution(
            current_identity(), request.id, request.version, request.reason
        )
        return pb.ArchiveSolutionResponse(solution=mapping.solution_to_proto(s))

    async def ConfirmSolution(
        self, request: pb.ConfirmSolutionRequest, context: Context
    ) -> pb.ConfirmSolutionResponse:
        """Confirm a published solution is current."""
        s = await self.service.confirm_solution(current_identity(), request.id, request.version)
        return pb.ConfirmSolutionResponse(solution=mapping.solution_to_proto(s))

    async def GetSolution(
        self, request: pb.GetSolutionRequest, context: Context
    ) -> pb.GetSolutionResponse:
        """One solution (with reviews for its staff)."""
        view = await self.service.get_solution(current_identity(), request.id)
        return pb.GetSolutionResponse(
            solution=mapping.solution_to_proto(view.solution),
            reviews=[mapping.review_to_proto(r) for r in view.reviews],
        )

    async def ListSolutions(
        self, request: pb.ListSolutionsRequest, context: Context
    ) -> pb.ListSolutionsResponse:
        """A page of solutions."""
        filters = Filters(
            sdg=request.sdg,
            sdg_target=request.sdg_target,
            country=request.country,
            region=mapping.enum_name(_REGION, request.region),
            modality=mapping.enum_name(_MODALITY, request.modality),
            organization_id=request.organization_id,
            status=mapping.enum_name(_SOLUTION_STATUS, request.status),
            updated_since=mapping.timestamp_or_none(request, "updated_since"),
            stale_only=request.stale_only,
        )
        page = await self.service.list_solutions(
            current_identity(), filters, request.page.page_size, request.page.page_token
        )
        return pb.ListSolutionsResponse(
            solutions=[mapping.solution_to_proto(s) for s in page.items],
            page=_page(page.next_page_token),
        )

    async def ImportSolutions(
        self, request: pb.ImportSolutionsRequest, context: Context
    ) -> pb.ImportSolutionsResponse:
        """Import one batch of a collection."""
        rows = [
            ImportRow(
                external_id=row.external_id,
                organization_id=row.solution.organization_id,
                content=mapping.solution_content(row.solution, f"rows[{i}].solution"),
            )
            for i, row in enumerate(request.rows)
        ]
        report = await self.service.import_solutions(
            current_identity(),
            rows,
            publish=request.publish,
            all_or_nothing=request.all_or_nothing,
            dry_run=request.dry_run,
        )
        return pb.ImportSolutionsResponse(
            results=[
                pb.ImportRowResult(
                    index=r.index,
                    external_id=r.external_id,
                    outcome=mapping.enum_number(_OUTCOME, r.outcome),  # type: ignore[arg-type]
                    solution_id=r.solution_id,
                    violations=[
                        pb.ImportViolation(field=f, description=d) for f, d in r.violations
                    ],
                )
                for r in report.results
            ],
            created_count=report.count("CREATED"),
            existing_count=report.count("EXISTING"),
            rejected_count=report.count("REJECTED"),
        )

    # -- knowledge products ---------------------------------------------------------------------

    async def CreateKnowledgeProduct(
        self, request: pb.CreateKnowledgeProductRequest, context: Context
    ) -> pb.CreateKnowledgeProductResponse:
        """Create a DRAFT knowledge product."""
        k = await self.service.create_knowledge(
            current_identity(),
            request.knowledge_product.publishing_organization_id,
            mapping.knowledge_content(request.knowledge_product),
        )
        return pb.CreateKnowledgeProductResponse(knowledge_product=mapping.knowledge_to_proto(k))

    async def UpdateKnowledgeProduct(
        self, request: pb.UpdateKnowledgeProductRequest, context: Context
    ) -> pb.UpdateKnowledgeProductResponse:
        """Edit a knowledge product."""
        k = await self.service.update_knowledge(
            current_identity(),
            request.knowledge_product.id,
            request.knowledge_product.version,
            mapping.knowledge_content(request.knowledge_product),
            list(request.update_mask.paths),
        )
        return pb.UpdateKnowledgeProductResponse(knowledge_product=mapping.knowledge_to_proto(k))

    async def PublishKnowledgeProduct(
        self, request: pb.PublishKnowledgeProductRequest, context: Context
    ) -> pb.PublishKnowledgeProductResponse:
        """Publish a knowledge product."""
        k = await self.service.publish_knowledge(current_identity(), request.id, request.version)
        return pb.PublishKnowledgeProductResponse(knowledge_product=mapping.knowledge_to_proto(k))

    async def ArchiveKnowledgeProduct(
        self, request: pb.ArchiveKnowledgeProductRequest, context: Context
    ) -> pb.ArchiveKnowledgeProductResponse:
        """Archive a knowledge product."""
        k = await self.service.archive_knowledge(current_identity(), request.id, request.version)
        return pb.ArchiveKnowledgeProductResponse(knowledge_product=mapping.knowledge_to_proto(k))

    async def GetKnowledgeProduct(
        self, request: pb.GetKnowledgeProductRequest, context: Context
    ) -> pb.GetKnowledgeProductResponse:
        """One knowledge product."""
        k = await self.service.get_knowledge(current_identity(), request.id)
        return pb.GetKnowledgeProductResponse(knowledge_product=mapping.knowledge_to_proto(k))

    async def ListKnowledgeProducts(
        self, request: pb.ListKnowledgeProductsRequest, context: Context
    ) -> pb.ListKnowledgeProductsResponse:
        """A page of knowledge products."""
        filters = Filters(
            sdg=request.sdg,
            type=mapping.enum_name(_KNOWLEDGE_TYPE, request.type),
            organization_id=request.organization_id,
            status=mapping.enum_name(_KNOWLEDGE_STATUS, request.status),
            updated_since=mapping.timestamp_or_none(request, "updated_since"),
        )
        page = await self.service.list_knowledge(
            current_identity(), filters, request.page.page_size, request.page.page_token
        )
        return pb.ListKnowledgeProductsResponse(
            knowledge_products=[mapping.knowledge_to_proto(k) for k in page.items],
            page=_page(page.next_page_token),
        )

    # -- needs ----------------------------------------------------------------------------------

    async def PostNeed(self, request: pb.PostNeedRequest, context: Context) -> pb.PostNeedResponse:
        """Post an OPEN need."""
        n = await self.service.post_need(
            current_identity(),
            request.need.seeker_organization_id,
            mapping.need_content(request.need),
        )
        return pb.PostNeedResponse(need=mapping.need_to_proto(n))

    async def UpdateNeed(
        self, request: pb.UpdateNeedRequest, context: Context
    ) -> pb.UpdateNeedResponse:
        """Edit a need or move it forward."""
        n = await self.service.update_need(
            current_identity(),
            request.need.id,
            request.need.version,
            mapping.need_content(request.need),
            mapping.enum_name(_NEED_STATUS, request.need.status),
            list(request.update_mask.paths),
        )
        return pb.UpdateNeedResponse(need=mapping.need_to_proto(n))

    async def CloseNeed(
        self, request: pb.CloseNeedRequest, context: Context
    ) -> pb.CloseNeedResponse:
        """Close a need."""
        n = await self.service.close_need(
            current_identity(), request.id, request.version, request.reason
        )
        return pb.CloseNeedResponse(need=mapping.need_to_proto(n))

    async def GetNeed(self, request: pb.GetNeedRequest, context: Context) -> pb.GetNeedResponse:
        """One need."""
        n = await self.service.get_need(current_identity(), request.id)
        return pb.GetNeedResponse(need=mapping.need_to_proto(n))

    async def ListNeeds(
        self, request: pb.ListNeedsRequest, context: Context
    ) -> pb.ListNeedsResponse:
        """A page of needs."""
        filters = Filters(
            sdg=request.sdg,
            country=request.country,
            region=mapping.enum_name(_REGION, request.region),
            support_kind=mapping.enum_name(_SUPPORT, request.support_kind),
            organization_id=request.organization_id,
            status=mapping.enum_name(_NEED_STATUS, request.status),
            updated_since=mapping.timestamp_or_none(request, "updated_since"),
        )
        page = await self.service.list_needs(
            current_identity(), filters, request.page.page_size, request.page.page_token
        )
        return pb.ListNeedsResponse(
            needs=[mapping.need_to_proto(n) for n in page.items], page=_page(page.next_page_token)
        )

    # -- funding opportunities ------------------------------------------------------------------

    async def CreateFundingOpportunity(
        self, request: pb.CreateFundingOpportunityRequest, context: Context
    ) -> pb.CreateFundingOpportunityResponse:
        """Create a DRAFT funding opportunity."""
        f = await self.service.create_funding(
            current_identity(),
            request.funding_opportunity.funder_organization_id,
            mapping.funding_content(request.funding_opportunity),
        )
        return pb.CreateFundingOpportunityResponse(funding_opportunity=mapping.funding_to_proto(f))

    async def UpdateFundingOpportunity(
        self, request: pb.UpdateFundingOpportunityRequest, context: Context
    ) -> pb.UpdateFundingOpportunityResponse:
        """Edit a funding opportunity."""
        f = await self.service.update_funding(
            current_identity(),
            request.funding_opportunity.id,
            request.funding_opportunity.version,
            mapping.funding_content(request.funding_opportunity),
            list(request.update_mask.paths),
        )
        return pb.UpdateFundingOpportunityResponse(funding_opportunity=mapping.funding_to_proto(f))

    async def PublishFundingOpportunity(
        self, request: pb.PublishFundingOpportunityRequest, context: Context
    ) -> pb.PublishFundingOpportunityResponse:
        """Open a funding opportunity."""
        f = await self.service.publish_funding(current_identity(), request.id, request.version)
        return pb.PublishFundingOpportunityResponse(funding_opportunity=mapping.funding_to_proto(f))

    async def CloseFundingOpportunity(
        self, request: pb.CloseFundingOpportunityRequest, context: Context
    ) -> pb.CloseFundingOpportunityResponse:
        """Close a funding opportunity early."""
        f = await self.service.close_funding(
            current_identity(), request.id, request.version, request.reason
        )
        return pb.CloseFundingOpportunityResponse(funding_opportunity=mapping.funding_to_proto(f))

    async def GetFundingOpportunity(
        self, request: pb.GetFundingOpportunityRequest, context: Context
    ) -> pb.GetFundingOpportunityResponse:
        """One funding opportunity."""
        f = await self.service.get_funding(current_identity(), request.id)
        return pb.GetFundingOpportunityResponse(funding_opportunity=mapping.funding_to_proto(f))

    async def ListFundingOpportunities(
        self, request: pb.ListFundingOpportunitiesRequest, context: Context
    ) -> pb.ListFundingOpportunitiesResponse:
        """A page of funding opportunities."""
        filters = Filters(
            sdg=request.sdg,
            country=request.country,
            organization_id=request.organization_id,
            status=mapping.enum_name(_FUNDING_STATUS, request.status),
            updated_since=mapping.timestamp_or_none(request, "updated_since"),
        )
        page = await self.service.list_funding(
            current_identity(), filters, request.page.page_size, request.page.page_token
        )
        return pb.ListFundingOpportunitiesResponse(
            funding_opportunities=[mapping.funding_to_proto(f) for f in page.items],
            page=_page(page.next_page_token),
        )
