"""Who may do what in the catalog.

Membership comes from the token: role ``member`` with the organization in claim ``org``
(the catalog keeps no member list; registration publishes none). Merged organizations
redirect: a member of the survivor acts for the records of the merged one. Reviewers and
operators act only in their own instance. Whoever may not see a record gets NotFound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus
from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.errors import FailedPrecondition, NotFound, PermissionDenied, Unauthenticated

Resolve = Callable[[str], str]
"""Maps an organization id to the id it redirects to (itself when not merged)."""


def is_operator(actor: Identity, instance: str) -> bool:
    """An operator of this instance."""
    return Role.OPERATOR in actor.roles and actor.instance == instance


def is_reviewer(actor: Identity, instance: str) -> bool:
    """A reviewer (or operator) of this instance."""
    return actor.instance == instance and bool(actor.roles & {Role.REVIEWER, Role.OPERATOR})


def acts_for(actor: Identity, org_id: str, resolve: Resolve) -> bool:
    """A member whose token names org_id (or the organization it was merged into)."""
    if Role.MEMBER not in actor.roles or not actor.organization_id or not org_id:
        return False
    return resolve(actor.organization_id) == resolve(org_id)


def require_signed_in(actor: Identity) -> None:
    """Unauthenticated for an anonymous caller."""
    if not actor.authenticated:
        raise Unauthenticated("this command needs a bearer token")


@dataclass(frozen=True)
class Access:
    """What a caller is to one record: its owner (member or operator), a reviewer, or neither."""

    owner: bool
    reviewer: bool

    @property
    def staff(self) -> bool:
        """May see the record whatever its status."""
        return self.owner or self.reviewer


def access(actor: Identity, org_id: str, instance: str, resolve: Resolve) -> Access:
    """The caller's relation to a record of org_id in instance."""
    operator = is_operator(actor, instance)
    return Access(
        owner=operator or acts_for(actor, org_id, resolve),
        reviewer=is_reviewer(actor, instance),
    )


def require_visible(found: bool, public: bool, who: Access, kind: str, record_id: str) -> None:
    """NotFound unless the record exists and is public or the caller is its staff."""
    if not found or not (public or who.staff):
        raise NotFound(f"{kind} {record_id} not found")


def require_owner(actor: Identity, who: Access, what: str) -> None:
    """PermissionDenied (or Unauthenticated) unless the caller acts for the record's organization."""
    require_signed_in(actor)
    if not who.owner:
        raise PermissionDenied(f"only members of its organization may {what}")


def require_reviewer(actor: Identity, who: Access, what: str) -> None:
    """PermissionDenied unless the caller reviews in the record's instance."""
    require_signed_in(actor)
    if not who.reviewer:
        raise PermissionDenied(f"only reviewers of its instance may {what}")


def require_owner_or_reviewer(actor: Identity, who: Access, what: str) -> None:
    """PermissionDenied unless the caller is the record's owner or one of its reviewers."""
    require_signed_in(actor)
    if not who.staff:
        raise PermissionDenied(f"only its organization or reviewers may {what}")


def require_may_create(actor: Identity, org_id: str, instance: str, resolve: Resolve) -> None:
    """Creating a record for org_id: its members and operators of this instance."""
    require_signed_in(actor)
    if not (is_operator(actor, instance) or acts_for(actor, org_id, resolve)):
        raise PermissionDenied(f"only members of organization {org_id} may create its records")


def require_verified(org: OrganizationRef | None, org_id: str) -> OrganizationRef:
    """FailedPrecondition unless the organization is known and VERIFIED."""
    if org is None:
        raise FailedPrecondition(f"organization {org_id} is not known to the catalog")
    if org.status is not OrganizationStatus.VERIFIED:
        raise FailedPrecondition(
            f"organization {org.id} is {org.status}: only verified organizations may submit"
        )
    return org
