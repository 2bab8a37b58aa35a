"""The registration API through the real gRPC stack on a real MongoDB: validation, idempotency,
optimistic concurrency, merges, erasure and what is (not) written."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.common.v1 import paging_pb2, sdg_pb2
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.platform.auth.tokens import Role
from ssg.registration.domain.duplicates import POOL_LIMIT, query_keys
from ssg.registration.domain.model import Organization, OrganizationProfile, OrganizationType
from ssg.registration.domain.model import OrganizationStatus as S
from ssg.registration.service import utc_now
from ssg.registration.store.mongo import organization_doc

OPERATOR = ("ops", Role.OPERATOR)


def org_message(name: str = "Valid Name", **fields) -> organization_pb2.Organization:
    values = {
        "name": name,
        "type": ot.ORGANIZATION_TYPE_NGO,
        "headquarters_country": "KEN",
        "sdgs": [sdg_pb2.SDG_QUALITY_EDUCATION],
        "languages": ["en", "sw"],
        "website": "https://example.org",
        "contact_email": "info@example.org",
        **fields,
    }
    return organization_pb2.Organization(**values)


def violations(error: grpc.aio.AioRpcError) -> set[str]:
    """Field names of the google.rpc.BadRequest detail of an INVALID_ARGUMENT error."""
    status = rpc_status.from_call(error)
    assert status is not None, error
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return {v.field for v in bad.field_violations}


def counts(db) -> tuple[int, int, int]:
    return (
        db.organizations.count_documents({}),
        db.outbox.count_documents({}),
        db.requests.count_documents({}),
    )


BAD_INPUTS = [
    pytest.param(
        {"headquarters_country": "XXX"}, "organization.headquarters_country", id="country"
    ),
    pytest.param(
        {"headquarters_country": "ken"}, "organization.headquarters_country", id="country-case"
    ),
    pytest.param(
        {"operating_countries": ["KEN", "ZZZ"]},
        "organization.operating_countries[1]",
        id="countries",
    ),
    pytest.param({"contact_email": "not-an-email"}, "organization.contact_email", id="email"),
    pytest.param({"contact_email": "a@b"}, "organization.contact_email", id="email-no-tld"),
    pytest.param({"website": "ftp://example.org"}, "organization.website", id="url-scheme"),
    pytest.param({"website": "https://exa mple.org"}, "organization.website", id="url-space"),
    pytest.param({"website": "not a url"}, "organization.website", id="url-garbage"),
    pytest.param({"sdgs": [18]}, "organization.sdgs[0]", id="sdg-18"),
    pytest.param({"name": ""}, "organization.name", id="empty-name"),
    pytest.param({"name": "   "}, "organization.name", id="blank-name"),
    pytest.param({"name": "x" * 201}, "organization.name", id="long-name"),
    pytest.param({"description": "d" * 5001}, "organization.description", id="description-5001"),
    pytest.param(
        {"description": "d" * 1_000_000}, "organization.description", id="description-1MB"
    ),
    pytest.param({"languages": ["english"]}, "organization.languages[0]", id="language"),
    pytest.param({"type": 0}, "organization.type", id="type-unset"),
    pytest.param({"type": 99}, "organization.type", id="type-unknown"),
    pytest.param({"regions": [42]}, "organization.regions[0]", id="region-unknown"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_INPUTS)
async def test_bad_input_is_invalid_argument_naming_the_field_and_writes_nothing(
    served, auth, fields, field
):
    before = counts(served.db)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(
                request_id="bad-" + field.replace("[", "-").replace("]", ""),
                organization=org_message(**{"name": "Valid Name", **fields}),
            ),
            metadata=auth(*OPERATOR),
            timeout=10,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(info.value)
    assert field in info.value.details()
    assert counts(served.db) == before


async def test_every_violation_is_reported_at_once(served, auth):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(
                organization=org_message(
                    "", headquarters_country="XXX", contact_email="x", website="mailto:x", sdgs=[18]
                )
            ),
            metadata=auth(*OPERATOR),
            timeout=10,
        )
    assert violations(info.value) == {
        "organization.name",
        "organization.headquarters_country",
        "organization.contact_email",
        "organization.website",
        "organization.sdgs[0]",
    }


async def test_ten_megabyte_description_is_refused_by_the_transport_and_writes_nothing(
    served, auth
):
    # Decision: the server's message limit (SSG_MAX_MESSAGE_BYTES, 4 MiB) refuses it with
    # RESOURCE_EXHAUSTED before any code of ours runs; anything under it that is still too
    # long is INVALID_ARGUMENT naming organization.description (see BAD_INPUTS).
    before = counts(served.db)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(
                request_id="ten-mb",
                organization=org_message("Huge Description", description="d" * 10_000_000),
            ),
            metadata=auth(*OPERATOR),
            timeout=20,
        )
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert counts(served.db) == before
    # The server keeps serving.
    response = await served.stub.ListOrganizations(pb.ListOrganizationsRequest(), timeout=10)
    assert response is not None


async def test_same_request_id_returns_the_first_result_and_writes_once(served, auth, suffix):
    request = pb.RegisterOrganizationRequest(
        request_id=f"req-{suffix}", organization=org_message(f"Idempotent Org {suffix}")
    )
    before = counts(served.db)
    metadata = auth(f"alice-{suffix}")
    first = await served.stub.RegisterOrganization(request, metadata=metadata, timeout=10)
    # A retry, and a burst of concurrent retries: one organization, one event, one record.
    again = await served.stub.RegisterOrganization(request, metadata=metadata, timeout=10)
    burst = await asyncio.gather(
        *(
            served.stub.RegisterOrganization(request, metadata=metadata, timeout=30)
            for _ in range(8)
        )
    )
    ids = {r.organization.id for r in (first, again, *burst)}
    assert ids == {first.organization.id}
    assert counts(served.db) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert (
        served.db.outbox.count_documents(
            {"key": first.organization.id, "event_type": "registration.OrganizationRegistered"}
        )
        == 1
    )
    # Another caller using the same request id gets an organization of its own.
    other = await served.stub.RegisterOrganization(
        request, metadata=auth(f"bob-{suffix}"), timeout=10
    )
    assert other.organization.id != first.organization.id
    # Reusing the id for a different organization is refused, not silently answered.
    changed = pb.RegisterOrganizationRequest(
        request_id=f"req-{suffix}", organization=org_message(f"Something Else {suffix}")
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.RegisterOrganization(changed, metadata=metadata, timeout=10)
    assert info.value.code() is grpc.StatusCode.ALREADY_EXISTS


async def test_concurrent_updates_of_one_version_exactly_one_wins(served, auth, suffix):
    created = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(organization=org_message(f"Contended {suffix}")),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    org = created.organization

    async def rename(i: int):
        request = pb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(
                id=org.id, version=org.version, name=f"Contended {suffix} v{i}"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
        try:
            return await served.stub.UpdateOrganization(
                request, metadata=auth(*OPERATOR), timeout=30
            )
        except grpc.aio.AioRpcError as error:
            return error

    results = await asyncio.gather(*(rename(i) for i in range(6)))
    wins = [r for r in results if isinstance(r, pb.UpdateOrganizationResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1
    assert {e.code() for e in losses} == {grpc.StatusCode.ABORTED}
    assert wins[0].organization.version == org.version + 1
    stored = await served.stub.GetOrganization(
        pb.GetOrganizationRequest(id=org.id), metadata=auth(*OPERATOR), timeout=10
    )
    assert stored.organization.name == wins[0].organization.name
    assert served.db.outbox.count_documents({"key": org.id}) == 2  # registered + one update


async def test_stale_version_is_aborted(served, auth, suffix):
    created = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(organization=org_message(f"Stale {suffix}")),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.UpdateOrganization(
            pb.UpdateOrganizationRequest(
                organization=organization_pb2.Organization(
                    id=created.organization.id, version=7, name="Anything"
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            ),
            metadata=auth(*OPERATOR),
            timeout=10,
        )
    assert info.value.code() is grpc.StatusCode.ABORTED


async def test_duplicates_are_returned_and_merge_redirects(served, auth, suffix):
    reviewer = auth("rev", Role.REVIEWER)
    first = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(
            organization=org_message(
                f"Rural Water Alliance {suffix}",
                acronym=f"RWA{suffix}",
                website=f"https://rwa-{suffix}.org",
            )
        ),
        metadata=auth("u1"),
        timeout=10,
    )
    second = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(
            organization=org_message(
                f"The Rural Water Alliance {suffix}", website=f"http://www.rwa-{suffix}.org/about"
            )
        ),
        metadata=auth("u2"),
        timeout=10,
    )
    candidates = {d.organization_id: d for d in second.possible_duplicates}
    assert first.organization.id in candidates
    assert "same website domain" in candidates[first.organization.id].reasons
    # The reviewer sees the candidates and the audit trail; the public does not see it at all.
    seen = await served.stub.GetOrganization(
        pb.GetOrganizationRequest(id=second.organization.id), metadata=reviewer, timeout=10
    )
    assert seen.possible_duplicates[0].organization_id == first.organization.id
    assert [e.action for e in seen.audit_entries] == ["registered"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.GetOrganization(
            pb.GetOrganizationRequest(id=second.organization.id), timeout=10
        )
    assert info.value.code() is grpc.StatusCode.NOT_FOUND

    merged = await served.stub.MergeOrganizations(
        pb.MergeOrganizationsRequest(
            source_id=second.organization.id, target_id=first.organization.id, reason="same body"
        ),
        metadata=reviewer,
        timeout=10,
    )
    assert merged.source.status == organization_pb2.ORGANIZATION_STATUS_MERGED
    assert merged.source.merged_into == first.organization.id
    redirected = await served.stub.GetOrganization(
        pb.GetOrganizationRequest(id=second.organization.id), metadata=reviewer, timeout=10
    )
    assert redirected.organization.id == first.organization.id
    assert redirected.redirected_from_id == second.organization.id
    # u2 (the duplicate's admin) now belongs to the survivor.
    members = await served.stub.ListMembers(
        pb.ListMembersRequest(organization_id=first.organization.id), metadata=reviewer, timeout=10
    )
    assert {m.user_id for m in members.members} == {"u1", "u2"}


async def test_erase_expert_removes_it_and_records_expert_erased(served, auth, suffix):
    owner = auth(f"expert-{suffix}")
    created = await served.stub.RegisterExpert(
        pb.RegisterExpertRequest(
            expert=expert_pb2.Expert(
                display_name=f"Dr Amina {suffix}",
                expertise_areas=["solar mini-grids"],
                sdgs=[sdg_pb2.SDG_AFFORDABLE_AND_CLEAN_ENERGY],
                visibility=expert_pb2.EXPERT_VISIBILITY_PUBLIC,
            )
        ),
        metadata=owner,
        timeout=10,
    )
    expert_id = created.expert.id
    assert (await served.stub.GetExpert(pb.GetExpertRequest(id=expert_id), timeout=10)).expert.id
    await served.stub.EraseExpert(pb.EraseExpertRequest(id=expert_id), metadata=owner, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.GetExpert(pb.GetExpertRequest(id=expert_id), metadata=owner, timeout=10)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert served.db.experts.count_documents({"_id": expert_id}) == 0
    rows = list(served.db.outbox.find({"key": expert_id}).sort("aggregate_version", 1))
    assert [r["event_type"] for r in rows] == [
        "registration.ExpertRegistered",
        "registration.ExpertErased",
    ]


async def test_list_pages_through_everything_once(served, auth, suffix):
    names = [f"Paged {suffix} {i:02d}" for i in range(7)]
    for name in names:
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(
                organization=org_message(name, headquarters_country="BRA")
            ),
            metadata=auth(*OPERATOR),
            timeout=10,
        )
    seen: list[str] = []
    token = ""
    while True:
        page = await served.stub.ListOrganizations(
            pb.ListOrganizationsRequest(
                country="BRA",
                status=organization_pb2.ORGANIZATION_STATUS_PENDING,
                page=paging_pb2.PageRequest(page_size=3, page_token=token),
            ),
            metadata=auth(*OPERATOR),
            timeout=10,
        )
        seen.extend(o.name for o in page.organizations if suffix in o.name)
        token = page.page.next_page_token
        if not token:
            break
    assert seen == names
    # Pending ones are not public.
    public = await served.stub.ListOrganizations(
        pb.ListOrganizationsRequest(country="BRA"), timeout=10
    )
    assert all(
        o.status == organization_pb2.ORGANIZATION_STATUS_VERIFIED for o in public.organizations
    )
    # A token does not cross queries.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.ListOrganizations(
            pb.ListOrganizationsRequest(
                country="KEN", page=paging_pb2.PageRequest(page_size=3, page_token="e30.abc")
            ),
            timeout=10,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_repeated_field_is_one_small_invalid_argument(served, auth):
    # 200,000 out-of-range goals used to yield one violation each: an 11 MB reply that the
    # client refused with RESOURCE_EXHAUSTED. The count is checked before any item.
    before = counts(served.db)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(
                request_id="many-sdgs", organization=org_message("Many Goals", sdgs=[18] * 200_000)
            ),
            metadata=auth(*OPERATOR),
            timeout=30,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(info.value) == {"organization.sdgs"}
    assert "at most 17" in info.value.details()
    assert len(info.value.details()) < 1000
    assert counts(served.db) == before


async def test_many_bad_items_are_reported_up_to_a_limit_and_echoes_are_cut(served, auth):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(
                organization=org_message(
                    "Bad Countries",
                    operating_countries=[f"Q{i:02d}" + "z" * 10_000 for i in range(200)],
                )
            ),
            metadata=auth(*OPERATOR),
            timeout=30,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = violations(info.value)
    assert "organization.operating_countries[0]" in fields
    assert "request" in fields  # "and N more violations not listed"
    assert len(fields) <= 51
    assert all(len(v) < 200 for v in info.value.details().split("; "))
    assert "more (see the BadRequest details)" in info.value.details()
    assert len(info.value.details()) < 10_000


async def test_oversized_update_mask_is_invalid_argument(served, auth, suffix):
    created = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(organization=org_message(f"Masked {suffix}")),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.stub.UpdateOrganization(
            pb.UpdateOrganizationRequest(
                organization=organization_pb2.Organization(
                    id=created.organization.id, version=created.organization.version
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["x" * 100] * 5_000),
            ),
            metadata=auth(*OPERATOR),
            timeout=30,
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(info.value) == {"update_mask"}
    assert len(info.value.details()) < 1000


async def test_duplicate_pool_is_prefiltered_bounded_and_projected(served, auth, suffix):
    # 300 unrelated organizations in one country: registration must not load them all.
    now = utc_now()
    profiles = [
        OrganizationProfile(
            name=f"Unrelated {i} Body {suffix}",
            type=OrganizationType.NGO,
            headquarters_country="MLI",
            description="x" * 4000,
        )
        for i in range(300)
    ]
    served.db.organizations.insert_many(
        [
            organization_doc(Organization(f"pool{suffix}{i}", p, "africa", S.PENDING, 1, now, now))
            for i, p in enumerate(profiles)
        ]
    )
    new = OrganizationProfile(
        name="Sahel Seed Savers", type=OrganizationType.NGO, headquarters_country="MLI"
    )
    pool = served.app.store.atomically(
        lambda tx: tx.duplicate_pool("MLI", query_keys(new), "", POOL_LIMIT)
    )
    assert pool == []  # no shared name key: nothing loaded
    common = OrganizationProfile(
        name=f"Unrelated Body {suffix}", type=OrganizationType.NGO, headquarters_country="MLI"
    )
    pool = served.app.store.atomically(
        lambda tx: tx.duplicate_pool("MLI", query_keys(common), "", POOL_LIMIT)
    )
    assert 0 < len(pool) <= POOL_LIMIT
    assert all(o.profile.description == "" for o in pool)  # only the matcher's fields
    # Through the API, a real duplicate in that crowded country is still found.
    first = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(
            organization=org_message("Sahel Seed Savers", headquarters_country="MLI", website="")
        ),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    second = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(
            organization=org_message(
                "The Sahel Seed Savers", headquarters_country="MLI", website=""
            )
        ),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    assert first.organization.id in {d.organization_id for d in second.possible_duplicates}
