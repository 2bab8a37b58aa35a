"""The authorization matrix, each role x each command, through the real gRPC server with dev
tokens: O = OK, U = UNAUTHENTICATED, D = PERMISSION_DENIED, N = NOT_FOUND (the caller may not
even learn that the entity exists).

Membership comes from Member records, not from the token: 'registrant' is the organization's
first admin with a plain token (no role, no org claim) and acts as its admin; 'forged' holds a
member token naming the organization but has no Member record and acts as a stranger.
Operators and reviewers act only in their own instance: the service runs as instance
'africa', 'other_reviewer' and 'foreign_operator' hold tokens of 'asia-pacific'."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.platform.auth.tokens import Role

ROLES = (
    "anonymous",
    "public",
    "owner",
    "member",
    "admin",
    "registrant",
    "forged",
    "other_member",
    "reviewer",
    "other_reviewer",
    "operator",
    "foreign_operator",
)
CODES = {
    "O": grpc.StatusCode.OK,
    "U": grpc.StatusCode.UNAUTHENTICATED,
    "D": grpc.StatusCode.PERMISSION_DENIED,
    "N": grpc.StatusCode.NOT_FOUND,
}


@dataclass
class World:
    """Entities a case acts on: organization (status chosen per case), another verified one,
    an expert owned by 'owner'; plain member 'mem' and admin 'adm' of the organization."""

    org_id: str
    other_org_id: str
    expert_id: str
    expert_version: int
    org_version: int


def org_msg(name: str) -> organization_pb2.Organization:
    return organization_pb2.Organization(
        name=name, type=ot.ORGANIZATION_TYPE_NGO, headquarters_country="SEN"
    )


def metadata_for(role: str, world: World, auth) -> tuple:
    return {
        "anonymous": (),
        "public": auth("pat"),
        "owner": auth("owner"),
        "member": auth("mem", Role.MEMBER, org=world.org_id),
        "admin": auth("adm", Role.MEMBER, org=world.org_id),
        "registrant": auth("adm"),
        "forged": auth("forger", Role.MEMBER, org=world.org_id),
        "other_member": auth("oth", Role.MEMBER, org=world.other_org_id),
        "reviewer": auth("rev", Role.REVIEWER),
        "other_reviewer": auth("rev2", Role.REVIEWER, instance="asia-pacific"),
        "operator": auth("ops", Role.OPERATOR),
        "foreign_operator": auth("ops2", Role.OPERATOR, instance="asia-pacific"),
    }[role]


async def make_world(
    stub, auth, org_status: str, visibility: expert_pb2.ExpertVisibility.ValueType
) -> World:
    ops = auth("ops", Role.OPERATOR)
    tag = uuid.uuid4().hex[:8]
    org = (
        await stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(organization=org_msg(f"Matrix Org {tag}")),
            metadata=auth("adm"),
            timeout=10,
        )
    ).organization
    await stub.AddMember(
        pb.AddMemberRequest(
            organization_id=org.id, user_id="mem", role=organization_pb2.MEMBER_ROLE_MEMBER
        ),
        metadata=ops,
        timeout=10,
    )
    if org_status == "verified":
        org = (
            await stub.VerifyOrganization(
                pb.VerifyOrganizationRequest(id=org.id), metadata=ops, timeout=10
            )
        ).organization
    other = (
        await stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(organization=org_msg(f"Matrix Other {tag}")),
            metadata=ops,
            timeout=10,
        )
    ).organization
    await stub.VerifyOrganization(
        pb.VerifyOrganizationRequest(id=other.id), metadata=ops, timeout=10
    )
    expert = (
        await stub.RegisterExpert(
            pb.RegisterExpertRequest(
                expert=expert_pb2.Expert(display_name=f"Matrix Expert {tag}", visibility=visibility)
            ),
            metadata=auth("owner"),
            timeout=10,
        )
    ).expert
    return World(org.id, other.id, expert.id, expert.version, org.version)


Call = Callable[[Any, World, tuple], Awaitable[object]]


def _update_org(stub, w: World, md):
    return stub.UpdateOrganization(
        pb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(
                id=w.org_id, version=w.org_version, acronym="MX"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["acronym"]),
        ),
        metadata=md,
        timeout=10,
    )


def _update_expert(stub, w: World, md):
    return stub.UpdateExpert(
        pb.UpdateExpertRequest(
            expert=expert_pb2.Expert(id=w.expert_id, version=w.expert_version, affiliation="X"),
            update_mask=field_mask_pb2.FieldMask(paths=["affiliation"]),
        ),
        metadata=md,
        timeout=10,
    )


PUBLIC_EXPERT = expert_pb2.EXPERT_VISIBILITY_PUBLIC
MEMBERS_EXPERT = expert_pb2.EXPERT_VISIBILITY_MEMBERS_ONLY
HIDDEN_EXPERT = expert_pb2.EXPERT_VISIBILITY_HIDDEN

# command, organization status, expert visibility, the call, expected code per role in ROLES order
#                                     anon pub own mem adm reg frg oth rev orv ops fop
MATRIX: list[tuple[str, str, expert_pb2.ExpertVisibility.ValueType, Call, str]] = [
    ("RegisterOrganization", "pending", PUBLIC_EXPERT,
     lambda s, w, md: s.RegisterOrganization(
         pb.RegisterOrganizationRequest(organization=org_msg(f"New {uuid.uuid4().hex}")),
         metadata=md, timeout=10),                                  "UOOOOOOOOOOO"),
    ("GetOrganization(pending)", "pending", PUBLIC_EXPERT,
     lambda s, w, md: s.GetOrganization(pb.GetOrganizationRequest(id=w.org_id), metadata=md, timeout=10),
                                                                    "NNNOOONNONON"),
    ("GetOrganization(verified)", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.GetOrganization(pb.GetOrganizationRequest(id=w.org_id), metadata=md, timeout=10),
                                                                    "OOOOOOOOOOOO"),
    ("ListOrganizations", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.ListOrganizations(pb.ListOrganizationsRequest(), metadata=md, timeout=10),
                                                                    "OOOOOOOOOOOO"),
    ("UpdateOrganization", "verified", PUBLIC_EXPERT, _update_org,  "UDDOOODDODOD"),
    ("VerifyOrganization", "pending", PUBLIC_EXPERT,
     lambda s, w, md: s.VerifyOrganization(pb.VerifyOrganizationRequest(id=w.org_id), metadata=md, timeout=10),
                                                                    "NNNDDDNNONON"),
    ("RejectOrganization", "pending", PUBLIC_EXPERT,
     lambda s, w, md: s.RejectOrganization(
         pb.RejectOrganizationRequest(id=w.org_id, reason="no"), metadata=md, timeout=10),
                                                                    "NNNDDDNNONON"),
    ("SuspendOrganization", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.SuspendOrganization(
         pb.SuspendOrganizationRequest(id=w.org_id, reason="why"), metadata=md, timeout=10),
                                                                    "UDDDDDDDODOD"),
    ("MergeOrganizations", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.MergeOrganizations(
         pb.MergeOrganizationsRequest(source_id=w.org_id, target_id=w.other_org_id),
         metadata=md, timeout=10),                                  "UDDDDDDDODOD"),
    ("AddMember", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.AddMember(
         pb.AddMemberRequest(organization_id=w.org_id, user_id="newbie",
                             role=organization_pb2.MEMBER_ROLE_MEMBER), metadata=md, timeout=10),
                                                                    "UDDDOODDDDOD"),
    ("RemoveMember", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.RemoveMember(
         pb.RemoveMemberRequest(organization_id=w.org_id, user_id="mem"), metadata=md, timeout=10),
     # "mem" may remove itself (leave); nobody else but admins and operators.
                                                                    "UDDOOODDDDOD"),
    ("ListMembers", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.ListMembers(pb.ListMembersRequest(organization_id=w.org_id), metadata=md, timeout=10),
                                                                    "UDDOOODDODOD"),
    ("RegisterExpert", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.RegisterExpert(
         pb.RegisterExpertRequest(expert=expert_pb2.Expert(
             display_name="Someone", visibility=PUBLIC_EXPERT)), metadata=md, timeout=10),
                                                                    "UOOOOOOOOOOO"),
    ("UpdateExpert", "verified", PUBLIC_EXPERT, _update_expert,     "UDODDDDDODOD"),
    ("EraseExpert", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.EraseExpert(pb.EraseExpertRequest(id=w.expert_id), metadata=md, timeout=10),
                                                                    "UDODDDDDDDOD"),
    ("GetExpert(public)", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.GetExpert(pb.GetExpertRequest(id=w.expert_id), metadata=md, timeout=10),
                                                                    "OOOOOOOOOOOO"),
    ("GetExpert(members-only)", "verified", MEMBERS_EXPERT,
     lambda s, w, md: s.GetExpert(pb.GetExpertRequest(id=w.expert_id), metadata=md, timeout=10),
                                                                    "NNOOONOOOOON"),
    ("GetExpert(hidden)", "verified", HIDDEN_EXPERT,
     lambda s, w, md: s.GetExpert(pb.GetExpertRequest(id=w.expert_id), metadata=md, timeout=10),
                                                                    "NNONNNNNONON"),
    ("ListExperts", "verified", PUBLIC_EXPERT,
     lambda s, w, md: s.ListExperts(pb.ListExpertsRequest(), metadata=md, timeout=10),
                                                                    "OOOOOOOOOOOO"),
]  # fmt: skip

CASES = [
    pytest.param(command, status, visibility, call, role, CODES[codes[i]], id=f"{command}-{role}")
    for command, status, visibility, call, codes in MATRIX
    for i, role in enumerate(ROLES)
]


def test_the_matrix_covers_every_rpc():
    served_rpcs = set(pb.DESCRIPTOR.services_by_name["RegistrationService"].methods_by_name)
    assert {command.split("(")[0] for command, *_ in MATRIX} == served_rpcs


@pytest.mark.parametrize(("command", "status", "visibility", "call", "role", "expected"), CASES)
async def test_authorization(served, auth, command, status, visibility, call, role, expected):
    world = await make_world(served.stub, auth, status, visibility)
    try:
        await call(served.stub, world, metadata_for(role, world, auth))
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        code = error.code()
    assert code is expected, f"{command} as {role}: {code.name}, expected {expected.name}"
