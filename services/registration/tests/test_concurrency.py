"""Invariants that must hold under concurrent commands, on the real MongoDB: units that read
state hanging off an organization (its members, its merge target, its parent chain) and each
write a different document must still conflict, or both commit on stale reads (write skew)."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import field_mask_pb2

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.registration.v1 import organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.platform.auth.tokens import Role

ROUNDS = 10
ADMIN = organization_pb2.MEMBER_ROLE_ADMIN


def org_message(name: str, **fields) -> organization_pb2.Organization:
    return organization_pb2.Organization(
        name=name, type=ot.ORGANIZATION_TYPE_NGO, headquarters_country="GHA", **fields
    )


async def outcome(call) -> grpc.StatusCode:
    try:
        await call
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        return error.code()


async def register(
    served, auth, name: str, subject: str, **fields
) -> organization_pb2.Organization:
    response = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(organization=org_message(name, **fields)),
        metadata=auth(subject),
        timeout=10,
    )
    return response.organization


async def test_two_admins_removing_each_other_leave_one_admin(served, auth, suffix):
    for round_ in range(ROUNDS):
        a, b = f"ana-{suffix}-{round_}", f"ben-{suffix}-{round_}"
        org = await register(served, auth, f"Skew Org {suffix} {round_}", a)
        as_a = auth(a, Role.MEMBER, org=org.id)
        as_b = auth(b, Role.MEMBER, org=org.id)
        await served.stub.AddMember(
            pb.AddMemberRequest(organization_id=org.id, user_id=b, role=ADMIN),
            metadata=as_a,
            timeout=10,
        )
        codes = await asyncio.gather(
            outcome(
                served.stub.RemoveMember(
                    pb.RemoveMemberRequest(organization_id=org.id, user_id=b),
                    metadata=as_a,
                    timeout=60,
                )
            ),
            outcome(
                served.stub.RemoveMember(
                    pb.RemoveMemberRequest(organization_id=org.id, user_id=a),
                    metadata=as_b,
                    timeout=60,
                )
            ),
        )
        # The loser either retried and met the last-admin rule, or found itself removed.
        assert sorted(c.name for c in codes) in (
            ["FAILED_PRECONDITION", "OK"],
            ["OK", "PERMISSION_DENIED"],
            ["NOT_FOUND", "OK"],
        ), f"round {round_}: {codes}"
        admins = served.db.members.count_documents({"org_id": org.id, "role": "ADMIN"})
        assert admins == 1, f"round {round_}: {admins} admins left"


async def test_chained_merges_never_strand_members_in_a_merged_organization(served, auth, suffix):
    reviewer = auth("rev", Role.REVIEWER)
    for round_ in range(ROUNDS):
        tag = f"{suffix} {round_}"
        a = await register(served, auth, f"Chain A {tag}", f"a-{suffix}-{round_}")
        b = await register(served, auth, f"Chain B {tag}", f"b-{suffix}-{round_}")
        c = await register(served, auth, f"Chain C {tag}", f"c-{suffix}-{round_}")
        codes = await asyncio.gather(
            outcome(
                served.stub.MergeOrganizations(
                    pb.MergeOrganizationsRequest(source_id=a.id, target_id=b.id),
                    metadata=reviewer,
                    timeout=60,
                )
            ),
            outcome(
                served.stub.MergeOrganizations(
                    pb.MergeOrganizationsRequest(source_id=b.id, target_id=c.id),
                    metadata=reviewer,
                    timeout=60,
                )
            ),
        )
        assert grpc.StatusCode.OK in codes, f"round {round_}: {codes}"
        merged = [
            doc["_id"]
            for doc in served.db.organizations.find(
                {"_id": {"$in": [a.id, b.id, c.id]}, "status": "MERGED"}
            )
        ]
        stranded = served.db.members.count_documents({"org_id": {"$in": merged}})
        assert stranded == 0, f"round {round_}: {stranded} members left in merged {merged}"
        # Every registrant still belongs to an open organization.
        assert served.db.members.count_documents({"org_id": {"$in": [a.id, b.id, c.id]}}) == 3, (
            f"round {round_}"
        )


async def test_concurrent_reparenting_cannot_make_a_cycle(served, auth, suffix):
    ops = auth("ops", Role.OPERATOR)
    for round_ in range(ROUNDS):
        a = await register(served, auth, f"Loop A {suffix} {round_}", "ops")
        b = await register(served, auth, f"Loop B {suffix} {round_}", "ops")

        def reparent(child: organization_pb2.Organization, parent_id: str):
            return served.stub.UpdateOrganization(
                pb.UpdateOrganizationRequest(
                    organization=organization_pb2.Organization(
                        id=child.id, version=child.version, parent_organization_id=parent_id
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["parent_organization_id"]),
                ),
                metadata=ops,
                timeout=60,
            )

        codes = await asyncio.gather(outcome(reparent(a, b.id)), outcome(reparent(b, a.id)))
        assert grpc.StatusCode.OK in codes, f"round {round_}: {codes}"
        parents = {
            doc["_id"]: doc["parent_id"]
            for doc in served.db.organizations.find({"_id": {"$in": [a.id, b.id]}})
        }
        assert not (parents[a.id] == b.id and parents[b.id] == a.id), f"round {round_}: cycle"
