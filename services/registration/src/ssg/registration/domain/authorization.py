"""Who may do what: pure functions of the caller's identity and the entity concerned.

* anonymous and public callers see verified organizations and public experts only;
* any signed-in caller may register an organization or an expert profile;
* members (role ``member`` with an ``org`` claim) edit only their own organization, and only
  its admins (a Member record with role ADMIN) manage its members;
* reviewers verify, reject, suspend, merge and edit organizations of their own instance only;
* operators may do everything.

A caller who may not see an entity gets NotFound rather than PermissionDenied, so that ids of
unverified organizations and hidden experts do not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def is_member_of(actor: Identity, organization_id: str) -> bool:
    """True for a member acting for the given organization (per their token)."""
    return Role.MEMBER in actor.roles and actor.organization_id == organization_id


def is_staff_for(actor: Identity, org: Organization) -> bool:
    """Operators, reviewers of the organization's instance and its own members."""
    return is_operator(actor) or is_reviewer_of(actor, org.instance) or is_member_of(actor, org.id)


def require_authenticated(actor: Identity) -> None:
    """Unauthenticated unless the caller presented a valid token."""
    if not is_authenticated(actor):
        raise Unauthenticated("this call needs a bearer token")


def can_see_organization(actor: Identity, org: Organization) -> bool:
    """Verified organizations are public; others only to their staff (see is_staff_for)."""
    return org.status is OrganizationStatus.VERIFIED or is_staff_for(actor, org)


def require_visible_organization(
    actor: Identity, org: Organization | None, org_id: str
) -> Organization:
    """org if the caller may see it; NotFound otherwise (also when it does not exist)."""
    if org is None or not can_see_organization(actor, org):
        raise NotFound(f"organization {org_id} not found")
    return org


def authorize_organization(
    actor: Identity, action: Action, org: Organization, admin: Member | None = None
) -> None:
    """PermissionDenied unless actor may perform action on org (admin: actor's Member record)."""
    require_authenticated(actor)
    if is_operator(actor):
        return
    reviewer = is_reviewer_of(actor, org.instance)
    member = is_member_of(actor, org.id)
    allowed = {
        Action.UPDATE_ORGANIZATION: reviewer or member,
        Action.REVIEW_ORGANIZATION: reviewer,
        Action.MERGE_ORGANIZATIONS: reviewer,
        Action.MANAGE_MEMBERS: member and admin is not None and admin.role is MemberRole.ADMIN,
        Action.LIST_MEMBERS: reviewer or member,
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
    }.get(action, "operators")
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
