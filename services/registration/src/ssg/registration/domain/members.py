"""Membership rules: who may be added, and that an organization always keeps an admin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ssg.platform.auth.tokens import Identity
from ssg.platform.errors import AlreadyExists, FailedPrecondition, NotFound
from ssg.registration.domain.model import OPEN_STATUSES, Member, MemberRole, Organization


def add_member(
    org: Organization,
    existing: Member | None,
    user_id: str,
    role: MemberRole,
    actor: Identity,
    now: datetime,
    display_name: str = "",
) -> Member:
    """A new membership of user_id in org; AlreadyExists if they already belong to it."""
    if org.status not in OPEN_STATUSES:
        raise FailedPrecondition(
            f"organization {org.id} is {org.status.lower()}: its members cannot change"
        )
    if existing is not None:
        raise AlreadyExists(f"{user_id} is already a member of organization {org.id}")
    return Member(org.id, user_id, role, actor.subject, now, display_name)


def first_admin(org: Organization, actor: Identity, now: datetime) -> Member:
    """The registrant becomes the organization's first admin."""
    return Member(org.id, actor.subject, MemberRole.ADMIN, actor.subject, now)


def check_removal(
    org: Organization, target: Member | None, members: Sequence[Member], user_id: str
) -> Member:
    """The membership to remove; NotFound if absent, FailedPrecondition for the last admin."""
    if target is None:
        raise NotFound(f"{user_id} is not a member of organization {org.id}")
    if target.role is MemberRole.ADMIN:
        admins = [m for m in members if m.role is MemberRole.ADMIN]
        if len(admins) <= 1:
            raise FailedPrecondition(
                f"{user_id} is the last admin of organization {org.id}: add another admin first"
            )
    return target


def merged_memberships(
    source_members: Sequence[Member], target_members: Sequence[Member], target_id: str
) -> list[Member]:
    """Memberships to create in the target of a merge: people not yet in it, roles kept."""
    present = {m.user_id for m in target_members}
    return [
        Member(target_id, m.user_id, m.role, m.added_by, m.added_at, m.display_name)
        for m in source_members
        if m.user_id not in present
    ]
