"""The gRPC servicer: translate requests into service calls and results into replies, nothing
else. Authorization, validation and errors live in the service and domain layers; the platform
interceptor maps domain errors to status codes."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from ssg.contracts.common.v1 import paging_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.platform.grpc.interceptors import current_identity
from ssg.registration import mapping
from ssg.registration.service import (
    ExpertFilters,
    OrganizationFilters,
    RegistrationService,
)

Context: TypeAlias = grpc.aio.ServicerContext


def _page(token: str) -> paging_pb2.PageResponse:
    return paging_pb2.PageResponse(next_page_token=token)


class RegistrationServicer(pb_grpc.RegistrationServiceServicer):
    """ssg.registration.v1.RegistrationService on top of RegistrationService."""

    def __init__(self, service: RegistrationService) -> None:
        self.service = service

    async def RegisterOrganization(
        self, request: pb.RegisterOrganizationRequest, context: Context
    ) -> pb.RegisterOrganizationResponse:
        """Register a PENDING organization; idempotent on request_id."""
        result = await self.service.register_organization(
            current_identity(), request.request_id, mapping.organization_draft(request.organization)
        )
        return pb.RegisterOrganizationResponse(
            organization=mapping.organization_to_proto(result.organization),
            possible_duplicates=[mapping.duplicate_to_proto(d) for d in result.possible_duplicates],
        )

    async def GetOrganization(
        self, request: pb.GetOrganizationRequest, context: Context
    ) -> pb.GetOrganizationResponse:
        """One organization (merged ids redirect)."""
        view = await self.service.get_organization(current_identity(), request.id)
        return pb.GetOrganizationResponse(
            organization=mapping.organization_to_proto(view.organization),
            redirected_from_id=view.redirected_from,
            audit_entries=[mapping.audit_to_proto(e) for e in view.audit],
            possible_duplicates=[mapping.duplicate_to_proto(d) for d in view.possible_duplicates],
        )

    async def ListOrganizations(
        self, request: pb.ListOrganizationsRequest, context: Context
    ) -> pb.ListOrganizationsResponse:
        """A page of organizations the caller may see."""
        filters = OrganizationFilters(
            type=mapping.type_name(request.type),
            country=request.country,
            region=mapping.region_name(request.region),
            sdg=request.sdg,
            status=mapping.status_name(request.status),
            reconfirmation_required=request.reconfirmation_required,
        )
        page = await self.service.list_organizations(
            current_identity(), filters, request.page.page_size, request.page.page_token
        )
        return pb.ListOrganizationsResponse(
            organizations=[mapping.organization_to_proto(o) for o in page.items],
            page=_page(page.next_page_token),
        )

    async def UpdateOrganization(
        self, request: pb.UpdateOrganizationRequest, context: Context
    ) -> pb.UpdateOrganizationResponse:
        """Apply the masked fields at the given version."""
        org = await self.service.update_organization(
            current_identity(),
            request.organization.id,
            request.organization.version,
            mapping.organization_draft(request.organization),
            list(request.update_mask.paths),
        )
        return pb.UpdateOrganizationResponse(organization=mapping.organization_to_proto(org))

    async def VerifyOrganization(
        self, request: pb.VerifyOrganizationRequest, context: Context
    ) -> pb.VerifyOrganizationResponse:
        """Verify or re-confirm an organization."""
        org = await self.service.verify_organization(
            current_identity(), request.id, request.version, request.reason, request.evidence_note
        )
        return pb.VerifyOrganizationResponse(organization=mapping.organization_to_proto(org))

    async def RejectOrganization(
        self, request: pb.RejectOrganizationRequest, context: Context
    ) -> pb.RejectOrganizationResponse:
        """Refuse a pending organization."""
        org = await self.service.reject_organization(
            current_identity(), request.id, request.version, request.reason, request.evidence_note
        )
        return pb.RejectOrganizationResponse(organization=mapping.organization_to_proto(org))

    async def SuspendOrganization(
        self, request: pb.SuspendOrganizationRequest, context: Context
    ) -> pb.SuspendOrganizationResponse:
        """Suspend a verified organization."""
        org = await self.service.suspend_organization(
            current_identity(), request.id, request.version, request.reason, request.evidence_note
        )
        return pb.SuspendOrganizationResponse(organization=mapping.organization_to_proto(org))

    async def MergeOrganizations(
        self, request: pb.MergeOrganizationsRequest, context: Context
    ) -> pb.MergeOrganizationsResponse:
        """Fold a duplicate into the surviving organization."""
        source, target = await self.service.merge_organizations(
            current_identity(), request.source_id, request.target_id, request.reason
        )
        return pb.MergeOrganizationsResponse(
            source=mapping.organization_to_proto(source),
            target=mapping.organization_to_proto(target),
        )

    async def AddMember(
        self, request: pb.AddMemberRequest, context: Context
    ) -> pb.AddMemberResponse:
        """Add a person to an organization."""
        member = await self.service.add_member(
            current_identity(),
            request.organization_id,
            request.user_id,
            mapping.role_name(request.role),
            request.display_name,
        )
        return pb.AddMemberResponse(member=mapping.member_to_proto(member))

    async def RemoveMember(
        self, request: pb.RemoveMemberRequest, context: Context
    ) -> pb.RemoveMemberResponse:
        """Remove a person from an organization."""
        await self.service.remove_member(
            current_identity(), request.organization_id, request.user_id
        )
        return pb.RemoveMemberResponse()

    async def ListMembers(
        self, request: pb.ListMembersRequest, context: Context
    ) -> pb.ListMembersResponse:
        """A page of an organization's members."""
        page = await self.service.list_members(
            current_identity(),
            request.organization_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListMembersResponse(
            members=[mapping.member_to_proto(m) for m in page.items],
            page=_page(page.next_page_token),
        )

    async def RegisterExpert(
        self, request: pb.RegisterExpertRequest, context: Context
    ) -> pb.RegisterExpertResponse:
        """Create an expert profile owned by the caller."""
        expert = await self.service.register_expert(
            current_identity(), request.request_id, mapping.expert_draft(request.expert)
        )
        return pb.RegisterExpertResponse(expert=mapping.expert_to_proto(expert))

    async def UpdateExpert(
        self, request: pb.UpdateExpertRequest, context: Context
    ) -> pb.UpdateExpertResponse:
        """Apply the masked fields at the given version."""
        expert = await self.service.update_expert(
            current_identity(),
            request.expert.id,
            request.expert.version,
            mapping.expert_draft(request.expert),
            list(request.update_mask.paths),
        )
        return pb.UpdateExpertResponse(expert=mapping.expert_to_proto(expert))

    async def EraseExpert(
        self, request: pb.EraseExpertRequest, context: Context
    ) -> pb.EraseExpertResponse:
        """Remove a profile for good."""
        await self.service.erase_expert(current_identity(), request.id)
        return pb.EraseExpertResponse()

    async def GetExpert(
        self, request: pb.GetExpertRequest, context: Context
    ) -> pb.GetExpertResponse:
        """One profile the caller may see."""
        expert = await self.service.get_expert(current_identity(), request.id)
        return pb.GetExpertResponse(expert=mapping.expert_to_proto(expert))

    async def ListExperts(
        self, request: pb.ListExpertsRequest, context: Context
    ) -> pb.ListExpertsResponse:
        """A page of profiles the caller may see."""
        filters = ExpertFilters(
            sdg=request.sdg,
            country=request.country,
            language=request.language,
            affiliation_organization_id=request.affiliation_organization_id,
        )
        page = await self.service.list_experts(
            current_identity(), filters, request.page.page_size, request.page.page_token
        )
        return pb.ListExpertsResponse(
            experts=[mapping.expert_to_proto(e) for e in page.items],
            page=_page(page.next_page_token),
        )
