"""The use cases on the real store (a fresh MongoDB database each): events written with their
state, failures writing nothing, idempotency, members, the expiry sweep shared by replicas,
paging."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pymongo
import pytest

from ssg.contracts.registration.v1 import events_pb2
from ssg.platform.auth.tokens import ANONYMOUS, DEV_SECRET, Identity, Role
from ssg.platform.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationError,
    VersionConflict,
)
from ssg.platform.events.envelope import unpack_payload
from ssg.platform.settings import load_settings
from ssg.registration.bootstrap import build_service
from ssg.registration.domain.model import OrganizationStatus
from ssg.registration.domain.validation import ExpertDraft, OrganizationDraft
from ssg.registration.events.publisher import EXPERT_TOPIC, ORGANIZATION_TOPIC
from ssg.registration.service import (
    MAX_PARENT_DEPTH,
    OrganizationFilters,
    RegistrationService,
    utc_now,
)
from ssg.registration.settings import RegistrationSettings
from ssg.registration.store.mongo import MongoStore
from ssg.testing.fixtures import outbox_events

ALICE = Identity("alice")
OPS = Identity("ops", frozenset({Role.PUBLIC, Role.OPERATOR}), instance="global")
REVIEWER = Identity("rev", frozenset({Role.PUBLIC, Role.REVIEWER}), instance="global")


@pytest.fixture(params=["asyncio"])
def make(request, mongo_client, read_client, fresh_database):
    """A factory of services on one fresh database (pass a store to share it: replicas); Gets
    read through the asyncio read client, as served, or ("threads") the sync client."""
    reads = read_client[fresh_database.name] if request.param == "asyncio" else None
    fresh = MongoStore(mongo_client, fresh_database, reads)
    fresh.ensure_indexes()

    def make(store: MongoStore | None = None) -> tuple[RegistrationService, MongoStore]:
        store = store or fresh
        settings = load_settings(RegistrationSettings, jwt_secret=DEV_SECRET, instance="global")
        return build_service(settings, store), store

    return make


def draft(name: str = "Andes Water Forum", **fields) -> OrganizationDraft:
    return OrganizationDraft(name=name, type="NGO", headquarters_country="PER", **fields)


def events(store: MongoStore):
    return outbox_events(store.db)


def event_types(store: MongoStore) -> list[str]:
    return [env.event_type for _, env in events(store)]


async def test_register_writes_state_audit_admin_and_one_event(make):
    service, store = make()
    result = await service.register_organization(ALICE, "r1", draft())
    org = result.organization
    assert org.status is OrganizationStatus.PENDING
    assert org.instance == "global"
    [(topic, env)] = events(store)
    assert topic == ORGANIZATION_TOPIC
    assert (env.event_type, env.aggregate_id, env.aggregate_version) == (
        "registration.OrganizationRegistered",
        org.id,
        1,
    )
    payload = unpack_payload(env, events_pb2.OrganizationRegistered)
    assert payload.organization.name == "Andes Water Forum"
    assert [a.action for a in store.audit_of(org.id)] == ["registered"]
    page = await service.list_members(
        Identity("alice", frozenset({Role.MEMBER}), organization_id=org.id), org.id, 0, ""
    )
    assert [(m.user_id, m.role.value) for m in page.items] == [("alice", "ADMIN")]


async def test_a_failing_command_writes_nothing(make):
    service, store = make()
    with pytest.raises(ValidationError):
        await service.register_organization(ALICE, "r1", draft(parent_organization_id="missing"))
    assert events(store) == [] and store.db.audit.count_documents({}) == 0
    with pytest.raises(Unauthenticated):
        await service.register_organization(ANONYMOUS, "r1", draft())
    assert events(store) == []


async def test_replayed_request_returns_the_first_result(make):
    service, store = make()
    first = await service.register_organization(ALICE, "r1", draft())
    again = await service.register_organization(ALICE, "r1", draft())
    assert again.organization.id == first.organization.id
    assert len(events(store)) == 1
    with pytest.raises(AlreadyExists):
        await service.register_organization(ALICE, "r1", draft("Another Forum"))


class Commands(pymongo.monitoring.CommandListener):
    """The names and collections of the commands a client sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        self.sent.append(f"{event.command_name} {target if isinstance(target, str) else ''}")

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_registration_is_two_reads_and_one_write_command(make, mongodb_server):
    _, shared = make()
    commands = Commands()
    client: pymongo.MongoClient = pymongo.MongoClient(
        mongodb_server.uri(shared.db.name), tz_aware=True, event_listeners=[commands]
    )
    try:
        client.admin.command("ping")  # the topology knows the server's wire version
        service, store = make(MongoStore(client, client[shared.db.name]))
        commands.sent.clear()
        await service.register_organization(
            ALICE, "r1", draft(website="https://andes-water.example.org")
        )
        # The duplicate search (name keys, website domain), then organization, audit entry,
        # first admin, event and idempotency record in one bulkWrite; no lookup of the new
        # request id (its record's unique _id refuses a used one).
        assert commands.sent == [
            "find organizations",
            "find organizations",
            "bulkWrite ",
            "commitTransaction ",
        ]
        org_id = store.db.requests.find_one({"_id": "organization:alice:r1"})["entity_id"]
        assert store.db.organizations.count_documents({"_id": org_id}) == 1
        assert store.db.audit.count_documents({"org_id": org_id}) == 1
        assert store.db.members.count_documents({"org_id": org_id, "user_id": "alice"}) == 1
        assert len(events(store)) == 1
        # A retry of the same request: the first run's write is refused, the second replays.
        commands.sent.clear()
        again = await service.register_organization(
            ALICE, "r1", draft(website="https://andes-water.example.org")
        )
        assert again.organization.id == org_id
        assert "find requests" in commands.sent
        assert len(events(store)) == 1
    finally:
        client.close()


async def test_update_with_mask_checks_version_and_skips_no_ops(make):
    service, store = make()
    org = (await service.register_organization(ALICE, "", draft())).organization
    owner = Identity("alice", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id=org.id)
    updated = await service.update_organization(
        owner, org.id, 1, OrganizationDraft(sdgs=[6]), ["sdgs"]
    )
    assert updated.version == 2 and updated.profile.sdgs == (6,)
    assert updated.profile.name == org.profile.name
    same = await service.update_organization(
        owner, org.id, 2, OrganizationDraft(sdgs=[6]), ["sdgs"]
    )
    assert same.version == 2
    assert event_types(store)[-1] == "registration.OrganizationUpdated"
    assert len(events(store)) == 2
    with pytest.raises(VersionConflict):
        await service.update_organization(owner, org.id, 1, OrganizationDraft(sdgs=[7]), ["sdgs"])
    with pytest.raises(ValidationError):
        await service.update_organization(owner, org.id, 0, OrganizationDraft(), [])


async def test_review_flow_and_events(make):
    service, store = make()
    org = (await service.register_organization(ALICE, "", draft())).organization
    with pytest.raises(ValidationError):
        await service.reject_organization(REVIEWER, org.id, 0, "", "")
    verified = await service.verify_organization(REVIEWER, org.id, 1, "", "registry")
    suspended = await service.suspend_organization(
        REVIEWER, org.id, verified.version, "fraud report", ""
    )
    assert suspended.status_reason == "fraud report"
    with pytest.raises(FailedPrecondition):
        await service.reject_organization(REVIEWER, org.id, 0, "late", "")
    assert event_types(store) == [
        "registration.OrganizationRegistered",
        "registration.OrganizationVerified",
        "registration.OrganizationSuspended",
    ]
    view = await service.get_organization(REVIEWER, org.id)
    assert [a.action for a in view.audit] == ["registered", "verified", "suspended"]


async def test_members_admin_rules(make):
    service, _ = make()
    org = (await service.register_organization(ALICE, "", draft())).organization
    admin = Identity("alice", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id=org.id)
    bob = Identity("bob", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id=org.id)
    await service.add_member(admin, org.id, "bob", "MEMBER", "Bob")
    with pytest.raises(PermissionDenied):
        await service.add_member(bob, org.id, "carol", "MEMBER", "")
    with pytest.raises(AlreadyExists):
        await service.add_member(admin, org.id, "bob", "ADMIN", "")
    with pytest.raises(FailedPrecondition):
        await service.remove_member(admin, org.id, "alice")  # the last admin
    await service.add_member(admin, org.id, "dora", "ADMIN", "")
    await service.remove_member(admin, org.id, "alice")
    await service.remove_member(bob, org.id, "bob")  # leaving is always allowed
    page = await service.list_members(OPS, org.id, 0, "")
    assert [m.user_id for m in page.items] == ["dora"]


async def test_two_replicas_sweeping_at_once_emit_one_event_per_organization(make):
    first, store = make()
    org = (await first.register_organization(ALICE, "", draft())).organization
    await first.verify_organization(OPS, org.id, 0, "", "")
    replicas = [make(store)[0] for _ in range(2)]
    for replica in replicas:
        replica.clock = lambda: utc_now() + timedelta(days=731)
    flagged = await asyncio.gather(*(r.expire_verifications() for r in replicas))
    assert sum(flagged) == 1
    assert event_types(store).count("registration.VerificationExpired") == 1
    assert (await first.get_organization(OPS, org.id)).organization.reconfirmation_required


@pytest.mark.parametrize("make", ["asyncio", "threads"], indirect=True)
async def test_redirects_follow_chained_merges(make):
    service, _ = make()
    ids = [
        (await service.register_organization(OPS, "", draft(f"Forum {i}"))).organization.id
        for i in range(3)
    ]
    await service.merge_organizations(OPS, ids[0], ids[1], "")
    await service.merge_organizations(OPS, ids[1], ids[2], "")
    view = await service.get_organization(OPS, ids[0])
    assert view.organization.id == ids[2]
    assert view.redirected_from == ids[0]
    with pytest.raises(NotFound):
        await service.get_organization(OPS, "nope")


async def test_pages_do_not_overlap_and_tokens_are_bound_to_the_query(make):
    service, _ = make()
    for i in range(5):
        org = (await service.register_organization(OPS, "", draft(f"Forum {i}"))).organization
        await service.verify_organization(OPS, org.id, 0, "", "")
    first = await service.list_organizations(ANONYMOUS, OrganizationFilters(), 2, "")
    second = await service.list_organizations(
        ANONYMOUS, OrganizationFilters(), 2, first.next_page_token
    )
    third = await service.list_organizations(
        ANONYMOUS, OrganizationFilters(), 2, second.next_page_token
    )
    names = [o.profile.name for page in (first, second, third) for o in page.items]
    assert names == [f"Forum {i}" for i in range(5)]
    assert third.next_page_token == ""
    with pytest.raises(ValidationError) as exc:
        await service.list_organizations(
            ANONYMOUS, OrganizationFilters(country="PER"), 2, first.next_page_token
        )
    assert exc.value.violations[0].field == "page.page_token"
    with pytest.raises(ValidationError):
        await service.list_organizations(ANONYMOUS, OrganizationFilters(), 101, "")


async def test_expert_lifecycle_events(make):
    service, store = make()
    owner = Identity("kofi")
    e = await service.register_expert(
        owner, "x1", ExpertDraft(display_name="Kofi", visibility="PUBLIC")
    )
    assert (
        await service.register_expert(
            owner, "x1", ExpertDraft(display_name="Kofi", visibility="PUBLIC")
        )
    ).id == e.id
    e2 = await service.update_expert(
        owner, e.id, 1, ExpertDraft(visibility="HIDDEN"), ["visibility"]
    )
    with pytest.raises(NotFound):
        await service.get_expert(ANONYMOUS, e.id)
    await service.erase_expert(owner, e.id)
    expert_events = [(t, env.event_type, env.aggregate_version) for t, env in events(store)]
    assert expert_events == [
        (EXPERT_TOPIC, "registration.ExpertRegistered", 1),
        (EXPERT_TOPIC, "registration.ExpertUpdated", 2),
        (EXPERT_TOPIC, "registration.ExpertErased", e2.version + 1),
    ]
    with pytest.raises(NotFound):
        await service.get_expert(OPS, e.id)


async def test_parents_need_membership_and_cannot_make_cycles(make):
    service, _ = make()
    carol = Identity("carol")
    parent = (await service.register_organization(ALICE, "", draft("Parent Entity"))).organization
    # While the parent is pending a stranger does not even learn that it exists...
    with pytest.raises(ValidationError, match="no organization"):
        await service.register_organization(
            carol, "", draft("Squatter Office", parent_organization_id=parent.id)
        )
    # ...and once it is public, may still not attach a new organization under it.
    await service.verify_organization(OPS, parent.id, 0, "", "")
    with pytest.raises(PermissionDenied):
        await service.register_organization(
            carol, "", draft("Squatter Office", parent_organization_id=parent.id)
        )
    # Its members (per Member record, no token claim needed) and reviewers may.
    child = (
        await service.register_organization(
            ALICE, "", draft("Country Office", parent_organization_id=parent.id)
        )
    ).organization
    grandchild = (
        await service.register_organization(
            REVIEWER, "", draft("Field Office", parent_organization_id=child.id)
        )
    ).organization
    # parent -> child -> grandchild -> parent would be a cycle.
    with pytest.raises(ValidationError) as info:
        await service.update_organization(
            OPS,
            parent.id,
            parent.version + 1,
            draft("Parent Entity", parent_organization_id=grandchild.id),
            ["parent_organization_id"],
        )
    assert "cycle" in str(info.value)
    assert info.value.violations[0].field == "organization.parent_organization_id"


async def test_parent_chains_are_bounded(make):
    service, _ = make()
    parent_id = ""
    for level in range(MAX_PARENT_DEPTH + 1):
        parent_id = (
            await service.register_organization(
                OPS, "", draft(f"Level {level}", parent_organization_id=parent_id)
            )
        ).organization.id
    top = (await service.register_organization(OPS, "", draft("Top"))).organization
    root = await service.get_organization(OPS, parent_id)  # the deepest one
    assert root.organization.profile.parent_organization_id
    with pytest.raises(ValidationError, match="at most"):
        await service.update_organization(
            OPS, top.id, top.version, draft("Top", parent_organization_id=parent_id), []
        )


async def test_the_registrant_sees_and_edits_their_pending_organization(make):
    service, _ = make()
    org = (await service.register_organization(ALICE, "", draft())).organization
    view = await service.get_organization(ALICE, org.id)  # no member role, no org claim
    assert view.organization.id == org.id and view.audit
    updated = await service.update_organization(
        ALICE, org.id, org.version, draft(acronym="AWF"), ["acronym"]
    )
    assert updated.profile.acronym == "AWF"
    await service.add_member(ALICE, org.id, "bob", "MEMBER", "")
    # A token claiming the organization without a Member record is nobody.
    forger = Identity("eve", frozenset({Role.PUBLIC, Role.MEMBER}), organization_id=org.id)
    with pytest.raises(NotFound):
        await service.get_organization(forger, org.id)
    with pytest.raises(NotFound):
        await service.update_organization(
            forger, org.id, updated.version, draft(acronym="X"), ["acronym"]
        )


async def test_operator_tokens_of_another_instance_are_not_operators_here(make):
    service, _ = make()  # instance "global"
    org = (await service.register_organization(ALICE, "", draft())).organization
    for instance in ("africa", ""):
        foreign = Identity("ops", frozenset({Role.PUBLIC, Role.OPERATOR}), instance=instance)
        with pytest.raises(NotFound):
            await service.verify_organization(foreign, org.id, 0, "", "")
    assert (await service.verify_organization(OPS, org.id, 0, "", "")).status.value == "VERIFIED"
