"""Who may do what: pure functions of the caller's identity and the entity concerned.

* anonymous and public callers see verified organizations and public experts only;
* any signed-in caller may register an organization or an expert profile;
* members of an organization are the people with a Member record in it (the token's ``org``
  claim and ``member`` role are not trusted for this: a token can name any organization, and
  a registrant has a record but no claim yet); they see and edit only their own organization,
  and only its admins (a Member record with role ADMIN) manage its members;
* reviewers verify, reject, suspend, merge and edit organizations of their own instance only;
* operators of this service's instance may do everything (``bound_to_instance``).

The caller's Member record is an argument (``membership``): the service looks it up inside
the same transaction as the change it authorizes, so both see one snapshot.

A caller who may not see an entity gets NotFound rather than PermissionDenied, so that ids of
unverified organizations and hidden experts do not leak.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.errors import NotFound, PermissionDenied, Unauthenticated
from ssg.registration.domain.model import (
    Expert,
    ExpertVisibility,
    Member,
    MemberRole,
    Organization,
    OrganizationStatus,
)


class Action(StrEnum):
    """Every command the service accepts, as the authorization table names them."""

    REGISTER_ORGANIZATION = "register_organization"
    UPDATE_ORGANIZATION = "update_organization"
    REVIEW_ORGANIZATION = "review_organization"  # verify, reject, suspend
    MERGE_ORGANIZATIONS = "merge_organizations"
    MANAGE_MEMBERS = "manage_members"
    LIST_MEMBERS = "list_members"
    DECLARE_PARENT = "declare_parent"  # name an organization as the parent of another
    REGISTER_EXPERT = "register_expert"
    UPDATE_EXPERT = "update_expert"
    ERASE_EXPERT = "erase_expert"


def is_authenticated(actor: Identity) -> bool:
    """True when the caller presented a valid token."""
    return actor.authenticated


def is_operator(actor: Identity) -> bool:
    """True for an operator of the platform."""
    return Role.OPERATOR in actor.roles


def is_reviewer_of(actor: Identity, instance: str) -> bool:
    """True for a reviewer of the given instance."""
    return Role.REVIEWER in actor.roles and bool(actor.instance) and actor.instance == instance


def bound_to_instance(actor: Identity, instance: str) -> Identity:
    """actor as the service of instance sees it: an operator token issued for another
    instance (or for none) carries no operator power here, like a reviewer's."""
    if Role.OPERATOR in actor.roles and actor.instance != instance:
        return replace(actor, roles=actor.roles - {Role.OPERATOR})
    return actor


def is_member_of(actor: Identity, org: Organization, membership: Member | None) -> bool:
    """True when membership is actor's own Member record in org (the record, not the token,
    makes someone a member)."""
    return (
        is_authenticated(actor)
        and membership is not None
        and membership.organization_id == org.id
        and membership.user_id == actor.subject
    )


def is_admin_of(actor: Identity, org: Organization, membership: Member | None) -> bool:
    """True when actor's Member record in org has the ADMIN role."""
    return (
        is_member_of(actor, org, membership)
        and membership is not None
        and (membership.role is MemberRole.ADMIN)
    )


def needs_membership(actor: Identity, org: Organization) -> bool:
    """True when only a Member record can tell whether actor is staff of org: a signed-in
    caller who is neither operator nor reviewer of its instance (saves a read otherwise)."""
    return (
        is_authenticated(actor)
        and not is_operator(actor)
        and not is_reviewer_of(actor, org.instance)
    )


def needs_membership_to_view(actor: Identity, org: Organization) -> bool:
    """Whether reading org for actor needs its Member record: a verified organization is open
    to everyone, so its record only matters for the staff extras, and is read when the token
    names this organization (the record still decides); otherwise as needs_membership."""
    if not needs_membership(actor, org):
        return False
    return org.status is not OrganizationStatus.VERIFIED or actor.organization_id == org.id


def is_staff_for(actor: Identity, org: Organization, membership: Member | None = None) -> bool:
    """Operators, reviewers of the organization's instance and its own members."""
    return (
        is_operator(actor)
        or is_reviewer_of(actor, org.instance)
        or is_member_of(actor, org, membership)
    )


def require_authenticated(actor: Identity) -> None:
    """Unauthenticated unless the caller presented a valid token."""
    if not is_authenticated(actor):
        raise Unauthenticated("this call needs a bearer token")


def can_see_organization(
    actor: Identity, org: Organization, membership: Member | None = None
) -> bool:
    """Verified organizations are public; others only to their staff (see is_staff_for)."""
    return org.status is OrganizationStatus.VERIFIED or is_staff_for(actor, org, membership)


def require_visible_organization(
    actor: Identity, org: Organization | None, org_id: str, membership: Member | None = None
) -> Organization:
    """org if the caller may see it; NotFound otherwise (also when it does not exist)."""
    if org is None or not can_see_organization(actor, org, membership):
        raise NotFound(f"organization {org_id} not found")
    return org


def authorize_organization(
    actor: Identity, action: Action, org: Organization, membership: Member | None = None
) -> None:
    """PermissionDenied unless actor may perform action on org (membership: actor's Member
    record in org, or None)."""
    require_authenticated(actor)
    if is_operator(actor):
        return
    reviewer = is_reviewer_of(actor, org.instance)
    member = is_member_of(actor, org, membership)
    allowed = {
        Action.UPDATE_ORGANIZATION: reviewer or member,
        Action.REVIEW_ORGANIZATION: reviewer,
        Action.MERGE_ORGANIZATIONS: reviewer,
        Action.MANAGE_MEMBERS: is_admin_of(actor, org, membership),
        Action.LIST_MEMBERS: reviewer or member,
        Action.DECLARE_PARENT: reviewer or member,
    }.get(action, False)
    if not allowed:
        raise PermissionDenied(_denial(action, org))


def _denial(action: Action, org: Organization) -> str:
    who = {
        Action.UPDATE_ORGANIZATION: "its members, reviewers of its instance or operators",
        Action.REVIEW_ORGANIZATION: f"reviewers of instance {org.instance} or operators",
        Action.MERGE_ORGANIZATIONS: f"reviewers of instance {org.instance} or operators",
        Action.MANAGE_MEMBERS: "its admins or operators",
        Action.LIST_MEMBERS: "its members, reviewers of its instance or operators",
        Action.DECLARE_PARENT: "its members, reviewers of its instance or operators",
    }.get(action, "operators")
    if action is Action.DECLARE_PARENT:
        return f"naming organization {org.id} as parent is for {who}"
    return f"{action.replace('_', ' ')} of organization {org.id} is for {who}"


def can_see_expert(actor: Identity, expert: Expert) -> bool:
    """Public profiles to anyone; members-only to signed-in members and staff; hidden ones to
    their owner, reviewers of their instance and operators."""
    if is_operator(actor) or (is_authenticated(actor) and actor.subject == expert.owner):
        return True
    visibility = expert.profile.visibility
    if visibility is ExpertVisibility.PUBLIC:
        return True
    if visibility is ExpertVisibility.MEMBERS_ONLY:
        return bool(actor.roles & {Role.MEMBER, Role.REVIEWER})
    return is_reviewer_of(actor, expert.instance)


def require_visible_expert(actor: Identity, expert: Expert | None, expert_id: str) -> Expert:
    """expert if the caller may see it; NotFound otherwise."""
    if expert is None or not can_see_expert(actor, expert):
        raise NotFound(f"expert {expert_id} not found")
    return expert


def authorize_expert(actor: Identity, action: Action, expert: Expert) -> None:
    """PermissionDenied unless actor may update or erase expert."""
    require_authenticated(actor)
    if is_operator(actor) or actor.subject == expert.owner:
        return
    if action is Action.UPDATE_EXPERT and is_reviewer_of(actor, expert.instance):
        return
    who = "its owner, reviewers of its instance or operators"
    if action is Action.ERASE_EXPERT:
        who = "its owner or operators"
    raise PermissionDenied(f"{action.replace('_', ' ')} of expert {expert.id} is for {who}")


@dataclass(frozen=True)
class Scope:
    """One clause of what a caller may list: these statuses (or visibilities), optionally only
    in one instance or owned by one subject. A caller's view is the union of its clauses."""

    values: frozenset[str]
    instance: str = ""
    owner: str = ""


ALL_ORG_STATUSES = frozenset(s.value for s in OrganizationStatus)


def organization_scopes(actor: Identity) -> tuple[Scope, ...]:
    """What organizations actor may list (see can_see_organization)."""
    if is_operator(actor):
        return (Scope(ALL_ORG_STATUSES),)
    scopes = [Scope(frozenset({OrganizationStatus.VERIFIED.value}))]
    if Role.REVIEWER in actor.roles and actor.instance:
        scopes.append(Scope(ALL_ORG_STATUSES, instance=actor.instance))
    return tuple(scopes)


ALL_VISIBILITIES = frozenset(v.value for v in ExpertVisibility)


def expert_scopes(actor: Identity) -> tuple[Scope, ...]:
    """What expert profiles actor may list (see can_see_expert)."""
    if is_operator(actor):
        return (Scope(ALL_VISIBILITIES),)
    visible = {ExpertVisibility.PUBLIC.value}
    if actor.roles & {Role.MEMBER, Role.REVIEWER}:
        visible.add(ExpertVisibility.MEMBERS_ONLY.value)
    scopes = [Scope(frozenset(visible))]
    if Role.REVIEWER in actor.roles and actor.instance:
        scopes.append(Scope(ALL_VISIBILITIES, instance=actor.instance))
    if is_authenticated(actor):
        scopes.append(Scope(ALL_VISIBILITIES, owner=actor.subject))
    return tuple(scopes)
