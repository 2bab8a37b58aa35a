"""ListMatches through real gRPC on a real MongoDB: an organization's members page through its
matches on either side, newest first, filtered by status; strangers and bad requests are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from ssg.contracts.common.v1 import paging_pb2
from ssg.contracts.recommendation.v1 import match_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.platform.auth.tokens import Identity, Role
from ssg.recommendation.domain import matches
from ssg.testing.status import field_violations

pytestmark = pytest.mark.timeout(120)
T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def parties(served):
    """Org A seeks in two matches and provides in one; org B is the other side. Ids, newest first."""
    a, b = f"org-a-{uuid.uuid4().hex[:6]}", f"org-b-{uuid.uuid4().hex[:6]}"
    rows = [
        (f"need-{a}-1", "sol-1", a, b),
        (f"need-{b}", "sol-2", b, a),
        (f"need-{a}-2", "sol-3", a, b),
    ]
    ids = []
    for minutes, (need, solution, seeker, provider) in enumerate(rows):
        match = matches.propose(
            need, solution, seeker, provider, 0.8, (), "africa", T0 + timedelta(minutes=minutes)
        )
        served.store.insert_match_if_absent(match)
        ids.append(match.id)
    accepted = matches.accept(
        served.store.get_match(ids[0]),
        Identity("s", frozenset({Role.MEMBER}), organization_id=a),
        T0,
    )
    served.store.save_match(accepted)
    return a, b, ids[::-1]


async def test_members_page_through_their_organizations_matches_newest_first(served, parties, auth):
    a, b, newest_first = parties
    member = auth("ana", Role.MEMBER, org=a)
    first = await served.stub.ListMatches(
        pb.ListMatchesRequest(organization_id=a, page=paging_pb2.PageRequest(page_size=2)),
        metadata=member,
        timeout=10,
    )
    assert [m.id for m in first.matches] == newest_first[:2] and first.page.next_page_token
    rest = await served.stub.ListMatches(
        pb.ListMatchesRequest(
            organization_id=a,
            page=paging_pb2.PageRequest(page_size=2, page_token=first.page.next_page_token),
        ),
        metadata=member,
        timeout=10,
    )
    assert [m.id for m in rest.matches] == newest_first[2:] and not rest.page.next_page_token

    both_sides = await served.stub.ListMatches(
        pb.ListMatchesRequest(organization_id=b),
        metadata=auth("bo", Role.MEMBER, org=b),
        timeout=10,
    )
    assert [m.id for m in both_sides.matches] == newest_first

    accepted = await served.stub.ListMatches(
        pb.ListMatchesRequest(organization_id=a, statuses=[match_pb2.MATCH_STATUS_SEEKER_ACCEPTED]),
        metadata=member,
        timeout=10,
    )
    assert [m.id for m in accepted.matches] == [newest_first[-1]]
    assert accepted.matches[0].status == match_pb2.MATCH_STATUS_SEEKER_ACCEPTED

    operator = await served.stub.ListMatches(
        pb.ListMatchesRequest(organization_id=a), metadata=auth("op", Role.OPERATOR), timeout=10
    )
    assert len(operator.matches) == 3


async def test_strangers_anonymous_callers_and_bad_requests_are_refused(served, parties, auth):
    a, _, _ = parties

    async def error(request: pb.ListMatchesRequest, metadata=()) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await served.stub.ListMatches(request, metadata=metadata, timeout=10)
        return raised.value

    stranger = auth("tom", Role.MEMBER, org="org-other")
    assert (
        await error(pb.ListMatchesRequest(organization_id=a), stranger)
    ).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await error(pb.ListMatchesRequest(organization_id=a))
    ).code() == grpc.StatusCode.UNAUTHENTICATED
    member = auth("ana", Role.MEMBER, org=a)
    bad = await error(
        pb.ListMatchesRequest(
            organization_id="",
            statuses=[match_pb2.MATCH_STATUS_UNSPECIFIED, match_pb2.MatchStatus.ValueType(99)],
            page=paging_pb2.PageRequest(page_size=-1),
        ),
        member,
    )
    assert field_violations(bad) == {
        "organization_id",
        "statuses[0]",
        "statuses[1]",
        "page.page_size",
    }
    forged = await error(
        pb.ListMatchesRequest(organization_id=a, page=paging_pb2.PageRequest(page_token="x.y")),
        member,
    )
    assert field_violations(forged) == {"page.page_token"}
