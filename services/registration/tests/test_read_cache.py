"""GetOrganization through the read cache (ADR 0014), on the real gRPC stack and MongoDB: the
writer reads its own writes at once, other writers' changes show within the staleness bound,
and suspended, merged or deleted organizations are never answered from memory."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf import field_mask_pb2

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.registration.v1 import organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.platform.auth.tokens import Role
from ssg.platform.readcache import MISS

OPERATOR = ("ops", Role.OPERATOR)


@pytest.fixture
async def cached(served):
    """The served app once its organization cache is current."""
    cache = served.app.store.cache
    assert cache is not None, "the read cache is on by default"
    started = time.monotonic()
    while not cache.current:
        assert time.monotonic() - started < 10, "the cache feed never confirmed the cache"
        await asyncio.sleep(0.02)
    return served


async def register(
    served, auth, name: str, *, verified: bool = True
) -> organization_pb2.Organization:
    """A new organization of the test's instance, verified unless asked otherwise."""
    created = await served.stub.RegisterOrganization(
        pb.RegisterOrganizationRequest(
            organization=organization_pb2.Organization(
                name=name,
                type=ot.ORGANIZATION_TYPE_NGO,
                headquarters_country="KEN",
                sdgs=[sdg_pb2.SDG_QUALITY_EDUCATION],
                languages=["en"],
                website=f"https://{name.lower().replace(' ', '-')}.example.org",
                contact_email="info@example.org",
            )
        ),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    if not verified:
        return created.organization
    done = await served.stub.VerifyOrganization(
        pb.VerifyOrganizationRequest(id=created.organization.id),
        metadata=auth("rev", Role.REVIEWER),
        timeout=10,
    )
    return done.organization


async def get(served, org_id: str, metadata=()) -> pb.GetOrganizationResponse:
    return await served.stub.GetOrganization(
        pb.GetOrganizationRequest(id=org_id), metadata=metadata, timeout=10
    )


async def hold(served, org_id: str) -> None:
    """Get until the cache holds org_id: a fill that raced the stream's news of the writes
    that made it keeps nothing, so the first Gets after a write may all read."""
    started = time.monotonic()
    while served.app.store.cache.get(org_id) is MISS:
        assert time.monotonic() - started < 5, f"{org_id} never held"
        await get(served, org_id)
        await asyncio.sleep(0.02)


async def test_a_second_get_is_answered_from_memory(cached, auth, suffix):
    org = await register(cached, auth, f"Cached Once {suffix}")
    await hold(cached, org.id)
    held = cached.app.store.cache.get(org.id)
    assert held is not MISS and held.profile.name == org.name
    again = await get(cached, org.id)
    assert again.organization.name == org.name


async def test_the_writer_reads_its_update_at_once(cached, auth, suffix):
    org = await register(cached, auth, f"Before Rename {suffix}")
    await hold(cached, org.id)
    renamed = await cached.stub.UpdateOrganization(
        pb.UpdateOrganizationRequest(
            organization=organization_pb2.Organization(
                id=org.id, version=org.version, name=f"After Rename {suffix}"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=auth(*OPERATOR),
        timeout=10,
    )
    seen = await get(cached, org.id)
    assert seen.organization.name == f"After Rename {suffix}"
    assert seen.organization.version == renamed.organization.version


async def test_a_suspended_organization_is_hidden_from_the_public_at_once(cached, auth, suffix):
    org = await register(cached, auth, f"To Suspend {suffix}")
    assert (await get(cached, org.id)).organization.id == org.id  # the public sees it
    await hold(cached, org.id)
    await cached.stub.SuspendOrganization(
        pb.SuspendOrganizationRequest(id=org.id, reason="fraud report"),
        metadata=auth("rev", Role.REVIEWER),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await get(cached, org.id)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_merged_organization_redirects_at_once(cached, auth, suffix):
    source = await register(cached, auth, f"Merge Source {suffix}")
    target = await register(cached, auth, f"Merge Target {suffix}")
    await hold(cached, source.id)
    await cached.stub.MergeOrganizations(
        pb.MergeOrganizationsRequest(source_id=source.id, target_id=target.id, reason="same"),
        metadata=auth("rev", Role.REVIEWER),
        timeout=10,
    )
    seen = await get(cached, source.id)
    assert (seen.organization.id, seen.redirected_from_id) == (target.id, source.id)


async def wait_until_seen(cached, org_id: str, predicate, within: float, metadata) -> float:
    """Seconds until a GetOrganization (or its error) satisfies predicate."""
    started = time.monotonic()
    while True:
        try:
            answer: object = await get(cached, org_id, metadata)
        except grpc.aio.AioRpcError as error:
            answer = error
        if predicate(answer):
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"not seen within {within} s: {answer}"
        await asyncio.sleep(0.02)


async def test_another_writers_change_is_seen_within_the_staleness_bound(cached, auth, suffix):
    org = await register(cached, auth, f"Elsewhere {suffix}")
    await hold(cached, org.id)
    # What another replica (or an operator by hand) writes: this process never hears of it
    # except through the change stream.
    cached.db.organizations.update_one(
        {"_id": org.id}, {"$set": {"name": f"Renamed Elsewhere {suffix}"}, "$inc": {"version": 1}}
    )
    bound = cached.app.settings.read_cache_max_staleness_seconds
    took = await wait_until_seen(
        cached,
        org.id,
        lambda a: (
            isinstance(a, pb.GetOrganizationResponse)
            and a.organization.name == f"Renamed Elsewhere {suffix}"
        ),
        bound + 1,
        auth(*OPERATOR),
    )
    assert took <= bound + 1


async def test_a_deleted_organization_is_not_found_within_the_staleness_bound(cached, auth, suffix):
    org = await register(cached, auth, f"Deleted By Hand {suffix}")
    await hold(cached, org.id)
    cached.db.organizations.delete_one({"_id": org.id})
    bound = cached.app.settings.read_cache_max_staleness_seconds
    await wait_until_seen(
        cached,
        org.id,
        lambda a: isinstance(a, grpc.aio.AioRpcError) and a.code() is grpc.StatusCode.NOT_FOUND,
        bound + 1,
        auth(*OPERATOR),
    )
    assert cached.app.store.cache.get(org.id) is MISS
