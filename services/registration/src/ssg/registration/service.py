"""The use cases: each command validates its input, checks who may do it, applies the domain
rule and writes the new state, its audit entry and its event in one atomic unit.

The sync driver runs off the event loop (``run_sync``); every unit may run more than once
(a transaction retried after a write conflict), so the functions passed to ``atomically`` only
read and write through their Transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from ssg.contracts.registration.v1 import events_pb2 as ev
from ssg.platform.auth.tokens import Identity
from ssg.platform.clock import new_id, utc_now
from ssg.platform.errors import (
    AlreadyExists,
    NotFound,
    ValidationError,
    VersionConflict,
    Violations,
)
from ssg.platform.mongo import run_sync
from ssg.platform.paging import Page, PageCodec, next_page, page_request
from ssg.registration.domain import experts as expert_rules
from ssg.registration.domain import members as member_rules
from ssg.registration.domain import organizations as org_rules
from ssg.registration.domain.authorization import (
    Action,
    authorize_expert,
    authorize_organization,
    bound_to_instance,
    can_see_organization,
    expert_scopes,
    is_member_of,
    is_staff_for,
    needs_membership,
    needs_membership_to_view,
    organization_scopes,
    require_authenticated,
    require_visible_expert,
    require_visible_organization,
)
from ssg.registration.domain.duplicates import (
    POOL_LIMIT,
    find_duplicates,
    query_keys,
    website_domain,
)
from ssg.registration.domain.model import (
    EDITABLE_EXPERT_FIELDS,
    EDITABLE_ORGANIZATION_FIELDS,
    AuditEntry,
    DuplicateCandidate,
    Expert,
    Member,
    Organization,
    OrganizationProfile,
    RequestRecord,
)
from ssg.registration.domain.validation import (
    NAME_MAX,
    ExpertDraft,
    OrganizationDraft,
    check_country,
    check_id,
    check_request_id,
    check_text,
    expert_draft_of,
    is_language,
    organization_draft_of,
    require_id,
    validate_expert,
    validate_member_role,
    validate_note,
    validate_organization,
    validate_user_id,
)
from ssg.registration.events.publisher import Event, EventFactory
from ssg.registration.store.ports import (
    Cursor,
    ExpertQuery,
    OrganizationQuery,
    Store,
    Transaction,
    expert_sort_key,
    organization_sort_key,
)

T = TypeVar("T")
MAX_REDIRECTS = 5  # a merged organization may itself have been merged later
# How deep organizations may nest (e.g. entity > regional office > country office > project):
# the bound also keeps the cycle check a bounded walk.
MAX_PARENT_DEPTH = 8
PARENT_FIELD = "organization.parent_organization_id"


@dataclass(frozen=True)
class Registered:
    """What RegisterOrganization returns."""

    organization: Organization
    possible_duplicates: tuple[DuplicateCandidate, ...]


@dataclass(frozen=True)
class OrganizationView:
    """What GetOrganization returns; audit and duplicates only for the organization's staff."""

    organization: Organization
    redirected_from: str = ""
    audit: tuple[AuditEntry, ...] = ()
    possible_duplicates: tuple[DuplicateCandidate, ...] = ()


@dataclass(frozen=True)
class OrganizationFilters:
    """ListOrganizations filters as domain names ('' / 0 / False = any)."""

    type: str = ""
    country: str = ""
    region: str = ""
    sdg: int = 0
    status: str = ""
    reconfirmation_required: bool = False


@dataclass(frozen=True)
class ExpertFilters:
    """ListExperts filters ('' / 0 = any)."""

    sdg: int = 0
    country: str = ""
    language: str = ""
    affiliation_organization_id: str = ""


def _fingerprint(value: object) -> str:
    """A stable digest of a validated input, to tell a retry from a different request."""
    body = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()


def _org_cursor(org: Organization) -> Cursor:
    return organization_sort_key(org), org.id


def _expert_cursor(expert: Expert) -> Cursor:
    return expert_sort_key(expert), expert.id


def _member_cursor(member: Member) -> Cursor:
    # Members are listed by user id alone (unique within an organization).
    return "", member.user_id


def _review_notes(
    org_id: str, reason: str, evidence_note: str, *, required: bool
) -> tuple[str, str]:
    """Checked (reason, evidence note) of a review command on org_id."""
    v = Violations()
    check_id(v, "id", org_id)
    reason = validate_note(v, "reason", reason, required=required)
    evidence_note = validate_note(v, "evidence_note", evidence_note, required=False)
    v.raise_if_any()
    return reason, evidence_note


class RegistrationService:
    """Every command and query of the registration service."""

    def __init__(
        self,
        store: Store,
        events: EventFactory,
        *,
        instance: str,
        pages: PageCodec,
        verification_period: timedelta = org_rules.DEFAULT_VERIFICATION_PERIOD,
        clock: Callable[[], datetime] = utc_now,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self.store = store
        self.events = events
        self.instance = instance
        self.pages = pages
        self.verification_period = verification_period
        self.clock = clock
        self.ids = ids

    async def _atomically(self, fn: Callable[[Transaction], T]) -> T:
        return await run_sync(self.store.atomically, fn)

    def _here(self, actor: Identity) -> Identity:
        """The caller as this instance sees it (operator tokens of other instances are not
        operators here); every public method starts with it."""
        return bound_to_instance(actor, self.instance)

    # -- organizations: commands ----------------------------------------------------------------

    async def register_organization(
        self, actor: Identity, request_id: str, draft: OrganizationDraft
    ) -> Registered:
        """Register a PENDING organization (the caller becomes its first admin); idempotent on
        the caller's request_id."""
        actor = self._here(actor)
        require_authenticated(actor)
        v = Violations()
        check_request_id(v, "request_id", request_id)
        try:
            profile = validate_organization(draft)
        except ValidationError as exc:
            raise ValidationError([*v.items, *exc.violations]) from None
        v.raise_if_any()
        key = f"organization:{actor.subject}:{request_id}" if request_id else ""
        fingerprint = _fingerprint(asdict(profile))
        runs = 0

        def unit(tx: Transaction) -> Registered:
            nonlocal runs
            runs += 1
            # A request id is new but for retries, so the first run does not look it up: the
            # unique _id of the idempotency record written below refuses a used one, and the
            # store runs the unit again (DuplicateKeyError), which then finds the first request.
            if key and runs > 1:
                earlier = tx.get_request(key)
                if earlier is not None:
                    first = self._replay(earlier, fingerprint, "organization", tx.get_organization)
                    return Registered(first, earlier.duplicates)
            self._check_parent(tx, actor, profile, None)
            now = self.clock()
            pool = tx.duplicate_pool(
                profile.headquarters_country,
                query_keys(profile),
                website_domain(profile.website),
                POOL_LIMIT,
            )
            duplicates = find_duplicates(profile, pool)
            change = org_rules.register(self.ids(), profile, self.instance, actor, now, duplicates)
            org = change.organization
            tx.insert_organization(org)
            tx.add_audit(change.audit)
            tx.insert_member(member_rules.first_admin(org, actor, now))
            self._emit(tx, self.events.organization(ev.OrganizationRegistered, org))
            if key:
                tx.insert_request(
                    RequestRecord(key, "organization", fingerprint, org.id, now, duplicates)
                )
            return Registered(org, duplicates)

        return await self._atomically(unit)

    @staticmethod
    def _replay(
        earlier: RequestRecord, fingerprint: str, what: str, load: Callable[[str], T | None]
    ) -> T:
        """The entity an earlier idempotent command created, if this retry is the same request;
        AlreadyExists when the request id was used for something else."""
        if earlier.fingerprint != fingerprint:
            raise AlreadyExists(
                f"request_id was already used for a different {what}; use a new request_id"
            )
        entity = load(earlier.entity_id)
        if entity is None:  # only if an operator deleted it by hand
            raise NotFound(f"{what} {earlier.entity_id} no longer exists")
        return entity

    def _check_parent(
        self,
        tx: Transaction,
        actor: Identity,
        profile: OrganizationProfile,
        org: Organization | None,
    ) -> None:
        """Refuse a newly declared parent (of a new organization, or of org) that the caller
        may not attach to, or that would close a cycle or nest too deep.

        Declaring a parent makes a claim about the parent ("we are its country office"), so
        only its members, reviewers of its instance and operators may. An unchanged parent
        was checked when it was declared and is not checked again (its declarer may since
        have left the parent)."""
        parent_id = profile.parent_organization_id
        if not parent_id or (org is not None and parent_id == org.profile.parent_organization_id):
            return
        own_id = org.id if org is not None else ""
        if parent_id == own_id:
            raise ValidationError.single(PARENT_FIELD, "must not be the organization itself")
        parent = tx.get_organization(parent_id)
        membership = (
            tx.get_member(parent_id, actor.subject)
            if parent is not None and needs_membership(actor, parent)
            else None
        )
        if parent is None or not can_see_organization(actor, parent, membership):
            raise ValidationError.single(PARENT_FIELD, f"no organization {parent_id}")
        authorize_organization(actor, Action.DECLARE_PARENT, parent, membership)
        ancestor: Organization | None = parent
        for _ in range(MAX_PARENT_DEPTH):
            if ancestor is None:
                return
            if own_id:
                # Re-parenting A under B while B is re-parented under A: each unit reads the
                # other's document; writing every ancestor read makes one of them conflict.
                tx.touch_organization(ancestor.id)
            next_id = ancestor.profile.parent_organization_id
            if not next_id:
                return
            if next_id == own_id:
                raise ValidationError.single(
                    PARENT_FIELD, f"would make a cycle: {parent_id} is below this organization"
                )
            ancestor = tx.get_organization(next_id)
        raise ValidationError.single(
            PARENT_FIELD, f"organizations nest at most {MAX_PARENT_DEPTH} levels deep"
        )

    @staticmethod
    def _emit(tx: Transaction, event: Event) -> None:
        tx.add_event(event.topic, event.envelope)

    async def update_organization(
        self,
        actor: Identity,
        org_id: str,
        version: int,
        draft: OrganizationDraft,
        mask: Sequence[str],
    ) -> Organization:
        """Apply the masked fields of draft; VersionConflict unless version is current."""
        actor = self._here(actor)
        v = Violations()
        check_id(v, "organization.id", org_id)
        v.check(version > 0, "organization.version", "is required (the version last read)")
        v.raise_if_any()

        def unit(tx: Transaction) -> Organization:
            org, membership = self._load_for(tx, actor, org_id)
            authorize_organization(actor, Action.UPDATE_ORGANIZATION, org, membership)
            if org.version != version:
                raise VersionConflict(
                    f"organization {org_id} is at version {org.version}, not {version}; re-read it"
                )
            merged = org_rules.merge_draft(
                organization_draft_of(org.profile),
                draft,
                tuple(mask),
                EDITABLE_ORGANIZATION_FIELDS,
            )
            profile = validate_organization(merged)
            self._check_parent(tx, actor, profile, org)
            outcome = org_rules.update(org, profile, actor, self.clock())
            if outcome is None:
                return org  # nothing changed: no new version, no event
            change, changed = outcome
            tx.save_organization(change.organization, org.version)
            tx.add_audit(change.audit)
            self._emit(tx, self.events.organization_updated(change.organization, changed))
            return change.organization

        return await self._atomically(unit)

    @staticmethod
    def _load_for(
        tx: Transaction, actor: Identity, org_id: str
    ) -> tuple[Organization, Member | None]:
        """The organization a command addresses and the caller's Member record in it (read in
        the command's own transaction); NotFound also when the caller may not see it."""
        org = tx.get_organization(org_id)
        membership = (
            tx.get_member(org_id, actor.subject)
            if org is not None and needs_membership(actor, org)
            else None
        )
        return require_visible_organization(actor, org, org_id, membership), membership

    async def _review(
        self,
        actor: Identity,
        org_id: str,
        version: int,
        apply: Callable[[Organization, datetime], org_rules.Change],
        kind: type[ev.OrganizationVerified | ev.OrganizationRejected | ev.OrganizationSuspended],
    ) -> Organization:
        actor = self._here(actor)

        def unit(tx: Transaction) -> Organization:
            org, membership = self._load_for(tx, actor, org_id)
            authorize_organization(actor, Action.REVIEW_ORGANIZATION, org, membership)
            if version and org.version != version:
                raise VersionConflict(
                    f"organization {org_id} is at version {org.version}, not {version}; re-read it"
                )
            change = apply(org, self.clock())
            tx.save_organization(change.organization, org.version)
            tx.add_audit(change.audit)
            self._emit(tx, self.events.organization(kind, change.organization))
            return change.organization

        return await self._atomically(unit)

    async def verify_organization(
        self, actor: Identity, org_id: str, version: int, reason: str, evidence_note: str
    ) -> Organization:
        """Verify (or re-confirm) an organization: reviewers of its instance and operators."""
        reason, evidence_note = _review_notes(org_id, reason, evidence_note, required=False)
        return await self._review(
            actor,
            org_id,
            version,
            lambda org, now: org_rules.verify(
                org, actor, now, self.verification_period, reason, evidence_note
            ),
            ev.OrganizationVerified,
        )

    async def reject_organization(
        self, actor: Identity, org_id: str, version: int, reason: str, evidence_note: str
    ) -> Organization:
        """Refuse a pending organization, with a reason."""
        reason, evidence_note = _review_notes(org_id, reason, evidence_note, required=True)
        return await self._review(
            actor,
            org_id,
            version,
            lambda org, now: org_rules.reject(org, actor, now, reason, evidence_note),
            ev.OrganizationRejected,
        )

    async def suspend_organization(
        self, actor: Identity, org_id: str, version: int, reason: str, evidence_note: str
    ) -> Organization:
        """Suspend a verified organization, with a reason."""
        reason, evidence_note = _review_notes(org_id, reason, evidence_note, required=True)
        return await self._review(
            actor,
            org_id,
            version,
            lambda org, now: org_rules.suspend(org, actor, now, reason, evidence_note),
            ev.OrganizationSuspended,
        )

    async def merge_organizations(
        self, actor: Identity, source_id: str, target_id: str, reason: str
    ) -> tuple[Organization, Organization]:
        """Fold source into target (its members move over); returns (source, target)."""
        actor = self._here(actor)
        v = Violations()
        check_id(v, "source_id", source_id)
        check_id(v, "target_id", target_id)
        reason = validate_note(v, "reason", reason, required=False)
        v.raise_if_any()

        def unit(tx: Transaction) -> tuple[Organization, Organization]:
            source, source_membership = self._load_for(tx, actor, source_id)
            target, target_membership = self._load_for(tx, actor, target_id)
            authorize_organization(actor, Action.MERGE_ORGANIZATIONS, source, source_membership)
            authorize_organization(actor, Action.MERGE_ORGANIZATIONS, target, target_membership)
            change = org_rules.merge(source, target, actor, self.clock(), reason)
            tx.save_organization(change.organization, source.version)
            # The target is only read (its status, its members), yet "A into B" and "B into C"
            # must not both commit: writing B here makes the two units conflict, and the
            # retried one sees B merged (refused) or A's members already in B (moved on).
            tx.touch_organization(target.id)
            tx.add_audit(change.audit)
            source_members = tx.members_of(source.id)
            for member in member_rules.merged_memberships(
                source_members, tx.members_of(target.id), target.id
            ):
                tx.insert_member(member)
            for member in source_members:
                tx.delete_member(source.id, member.user_id)
            self._emit(tx, self.events.organization(ev.OrganizationMerged, change.organization))
            return change.organization, target

        return await self._atomically(unit)

    async def expire_verification(self, org_id: str) -> bool:
        """Flag one lapsed verification and emit VerificationExpired; False if it was not due
        (any more). Safe with several replicas: only the unit that changes it emits."""

        def unit(tx: Transaction) -> bool:
            org = tx.get_organization(org_id)
            now = self.clock()
            if org is None or not org_rules.verification_due(org, now):
                return False
            change = org_rules.expire(org, now)
            tx.save_organization(change.organization, org.version)
            tx.add_audit(change.audit)
            self._emit(tx, self.events.organization(ev.VerificationExpired, change.organization))
            return True

        return await self._atomically(unit)

    async def expire_verifications(self, limit: int = 100) -> int:
        """One sweep: flag up to limit lapsed verifications; return how many this call flagged."""
        due = await run_sync(self.store.verification_due, self.clock(), limit)
        flagged = 0
        for org in due:
            try:
                flagged += await self.expire_verification(org.id)
            except VersionConflict:
                continue  # another replica (or a reviewer) changed it first
        return flagged

    # -- organizations: queries -----------------------------------------------------------------

    async def get_organization(self, actor: Identity, org_id: str) -> OrganizationView:
        """One organization the caller may see, following merge redirects."""
        actor = self._here(actor)
        require_id(org_id)
        org = await self.store.read_organization(org_id)
        redirected_from = ""
        hops = 0
        while org is not None and org.merged_into and hops < MAX_REDIRECTS:
            redirected_from = org_id
            org = await self.store.read_organization(org.merged_into)
            hops += 1
        # Every Get would otherwise pay a second read for a record that changes nothing for most
        # callers of a verified organization.
        membership = (
            await run_sync(self.store.get_member, org.id, actor.subject)
            if org is not None and needs_membership_to_view(actor, org)
            else None
        )
        org = require_visible_organization(actor, org, org_id, membership)
        if not is_staff_for(actor, org, membership):
            return OrganizationView(org, redirected_from)
        audit = await run_sync(self.store.audit_of, org.id)
        return OrganizationView(org, redirected_from, tuple(audit), org.possible_duplicates)

    async def list_organizations(
        self, actor: Identity, filters: OrganizationFilters, size: int, token: str
    ) -> Page[Organization]:
        """A page of the organizations the caller may see, by name."""
        actor = self._here(actor)
        v = Violations()
        if filters.country:
            check_country(v, "country", filters.country, required=False)
        for name, value in (
            ("type", filters.type),
            ("region", filters.region),
            ("status", filters.status),
        ):
            if value.startswith("#"):
                v.add(name, f"unknown value {value[1:]}")
        if filters.sdg and not 1 <= filters.sdg <= 17:
            v.add("sdg", f"SDG must be 1 to 17, got {filters.sdg}")
        query = OrganizationQuery(
            scopes=organization_scopes(actor),
            type=filters.type,
            country=filters.country,
            region=filters.region,
            sdg=filters.sdg,
            status=filters.status,
            reconfirmation_required=filters.reconfirmation_required,
        )
        limit, after = page_request(self.pages, v, size, token, repr(query))
        items = await run_sync(self.store.list_organizations, query, after, limit + 1)
        return next_page(self.pages, items, limit, _org_cursor, repr(query))

    # -- members --------------------------------------------------------------------------------

    async def add_member(
        self, actor: Identity, org_id: str, user_id: str, role: str, display_name: str
    ) -> Member:
        """Add a person to an organization: its admins and operators only."""
        actor = self._here(actor)
        v = Violations()
        check_id(v, "organization_id", org_id)
        v.raise_if_any()
        user_id = validate_user_id(user_id)
        member_role = validate_member_role(role)
        v = Violations()
        display_name = check_text(v, "display_name", display_name, maximum=NAME_MAX)
        v.raise_if_any()

        def unit(tx: Transaction) -> Member:
            org, membership = self._load_for(tx, actor, org_id)
            authorize_organization(actor, Action.MANAGE_MEMBERS, org, membership)
            # Serializes membership changes of org (see remove_member) and keeps an addition
            # from landing in an organization that a concurrent merge is emptying.
            tx.touch_organization(org.id)
            now = self.clock()
            member = member_rules.add_member(
                org, tx.get_member(org.id, user_id), user_id, member_role, actor, now, display_name
            )
            tx.insert_member(member)
            tx.add_audit(
                AuditEntry(
                    org.id,
                    "member_added",
                    actor.subject,
                    tuple(sorted(str(r) for r in actor.roles)),
                    org.status,
                    org.status,
                    org.version,
                    now,
                    reason=f"{user_id} as {member_role.lower()}",
                )
            )
            return member

        return await self._atomically(unit)

    async def remove_member(self, actor: Identity, org_id: str, user_id: str) -> None:
        """Remove a person (admins, operators, or the person themselves); never the last admin."""
        actor = self._here(actor)
        v = Violations()
        check_id(v, "organization_id", org_id)
        v.raise_if_any()
        user_id = validate_user_id(user_id)

        def unit(tx: Transaction) -> None:
            org, membership = self._load_for(tx, actor, org_id)
            leaving = is_member_of(actor, org, membership) and actor.subject == user_id
            if not leaving:
                authorize_organization(actor, Action.MANAGE_MEMBERS, org, membership)
            # Two admins removing each other each delete a different document and read the
            # other's: without a common write both commit and no admin is left (write skew).
            # Writing the organization makes them conflict; the retry sees the last admin.
            tx.touch_organization(org.id)
            target = member_rules.check_removal(
                org, tx.get_member(org.id, user_id), tx.members_of(org.id), user_id
            )
            tx.delete_member(org.id, target.user_id)
            tx.add_audit(
                AuditEntry(
                    org.id,
                    "member_removed",
                    actor.subject,
                    tuple(sorted(str(r) for r in actor.roles)),
                    org.status,
                    org.status,
                    org.version,
                    self.clock(),
                    reason=user_id,
                )
            )

        await self._atomically(unit)

    async def list_members(
        self, actor: Identity, org_id: str, size: int, token: str
    ) -> Page[Member]:
        """A page of an organization's members by user id (its members, reviewers, operators)."""
        actor = self._here(actor)
        require_id(org_id, "organization_id")
        org = await run_sync(self.store.get_organization, org_id)
        membership = (
            await run_sync(self.store.get_member, org_id, actor.subject)
            if org is not None and needs_membership(actor, org)
            else None
        )
        org = require_visible_organization(actor, org, org_id, membership)
        authorize_organization(actor, Action.LIST_MEMBERS, org, membership)
        fingerprint = f"members:{org_id}"
        limit, after = page_request(self.pages, Violations(), size, token, fingerprint)
        items = await run_sync(
            self.store.list_members, org_id, after[1] if after else None, limit + 1
        )
        return next_page(self.pages, items, limit, _member_cursor, fingerprint)

    # -- experts --------------------------------------------------------------------------------

    async def register_expert(self, actor: Identity, request_id: str, draft: ExpertDraft) -> Expert:
        """Create a profile owned by the caller; idempotent on the caller's request_id."""
        actor = self._here(actor)
        require_authenticated(actor)
        v = Violations()
        check_request_id(v, "request_id", request_id)
        try:
            profile = validate_expert(draft)
        except ValidationError as exc:
            raise ValidationError([*v.items, *exc.violations]) from None
        v.raise_if_any()
        key = f"expert:{actor.subject}:{request_id}" if request_id else ""
        fingerprint = _fingerprint(asdict(profile))

        def unit(tx: Transaction) -> Expert:
            if key:
                earlier = tx.get_request(key)
                if earlier is not None:
                    return self._replay(earlier, fingerprint, "expert", tx.get_expert)
            self._check_affiliation(tx, profile.affiliation_organization_id)
            now = self.clock()
            expert = expert_rules.register(self.ids(), profile, self.instance, actor, now)
            tx.insert_expert(expert)
            self._emit(tx, self.events.expert_registered(expert))
            if key:
                tx.insert_request(RequestRecord(key, "expert", fingerprint, expert.id, now))
            return expert

        return await self._atomically(unit)

    @staticmethod
    def _check_affiliation(tx: Transaction, org_id: str) -> None:
        if org_id and tx.get_organization(org_id) is None:
            raise ValidationError.single(
                "expert.affiliation_organization_id", f"no organization {org_id}"
            )

    async def update_expert(
        self, actor: Identity, expert_id: str, version: int, draft: ExpertDraft, mask: Sequence[str]
    ) -> Expert:
        """Apply the masked fields of draft; VersionConflict unless version is current."""
        actor = self._here(actor)
        v = Violations()
        check_id(v, "expert.id", expert_id)
        v.check(version > 0, "expert.version", "is required (the version last read)")
        v.raise_if_any()

        def unit(tx: Transaction) -> Expert:
            expert = require_visible_expert(actor, tx.get_expert(expert_id), expert_id)
            authorize_expert(actor, Action.UPDATE_EXPERT, expert)
            if expert.version != version:
                raise VersionConflict(
                    f"expert {expert_id} is at version {expert.version}, not {version}; re-read it"
                )
            merged = org_rules.merge_draft(
                expert_draft_of(expert.profile), draft, tuple(mask), EDITABLE_EXPERT_FIELDS
            )
            profile = validate_expert(merged)
            if profile.affiliation_organization_id != expert.profile.affiliation_organization_id:
                self._check_affiliation(tx, profile.affiliation_organization_id)
            updated = expert_rules.update(expert, profile, self.clock())
            if updated is None:
                return expert
            tx.save_expert(updated, expert.version)
            self._emit(tx, self.events.expert_updated(updated))
            return updated

        return await self._atomically(unit)

    async def erase_expert(self, actor: Identity, expert_id: str) -> None:
        """Remove a profile for good (its owner or operators) and emit ExpertErased."""
        actor = self._here(actor)
        require_id(expert_id)

        def unit(tx: Transaction) -> None:
            expert = require_visible_expert(actor, tx.get_expert(expert_id), expert_id)
            authorize_expert(actor, Action.ERASE_EXPERT, expert)
            tx.delete_expert(expert.id)
            self._emit(tx, self.events.expert_erased(expert, self.clock()))

        await self._atomically(unit)

    async def get_expert(self, actor: Identity, expert_id: str) -> Expert:
        """One profile the caller may see."""
        actor = self._here(actor)
        require_id(expert_id)
        expert = await run_sync(self.store.get_expert, expert_id)
        return require_visible_expert(actor, expert, expert_id)

    async def list_experts(
        self, actor: Identity, filters: ExpertFilters, size: int, token: str
    ) -> Page[Expert]:
        """A page of the profiles the caller may see, by display name."""
        actor = self._here(actor)
        v = Violations()
        if filters.country:
            check_country(v, "country", filters.country, required=False)
        if filters.language and not is_language(filters.language):
            v.add("language", f"{filters.language[:8]!r} is not an ISO 639-1 language code")
        if filters.sdg and not 1 <= filters.sdg <= 17:
            v.add("sdg", f"SDG must be 1 to 17, got {filters.sdg}")
        check_id(
            v, "affiliation_organization_id", filters.affiliation_organization_id, required=False
        )
        query = ExpertQuery(
            scopes=expert_scopes(actor),
            sdg=filters.sdg,
            country=filters.country,
            language=filters.language,
            affiliation_organization_id=filters.affiliation_organization_id,
        )
        limit, after = page_request(self.pages, v, size, token, repr(query))
        items = await run_sync(self.store.list_experts, query, after, limit + 1)
        return next_page(self.pages, items, limit, _expert_cursor, repr(query))
