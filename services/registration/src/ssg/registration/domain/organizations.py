"""The organization lifecycle: each transition as a pure function returning the new state and
the audit entry that records it (who, when, why).

    PENDING -> VERIFIED | REJECTED
    VERIFIED -> SUSPENDED -> VERIFIED
    VERIFIED -> VERIFIED (re-confirmation, renews the verification period)
    PENDING | VERIFIED | SUSPENDED -> MERGED (into another open organization)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ssg.platform.auth.tokens import Identity
from ssg.platform.errors import FailedPrecondition, ValidationError
from ssg.registration.domain.model import (
    EDITABLE_ORGANIZATION_FIELDS,
    OPEN_STATUSES,
    AuditEntry,
    DuplicateCandidate,
    Organization,
    OrganizationProfile,
)
from ssg.registration.domain.model import OrganizationStatus as S
from ssg.registration.domain.validation import echo

D = TypeVar("D", bound=Any)
SYSTEM_ACTOR = "system"
DEFAULT_VERIFICATION_PERIOD = timedelta(days=730)  # 24 months


class InvalidTransition(FailedPrecondition):
    """The organization's status does not allow the requested change."""

    def __init__(self, org: Organization, action: str) -> None:
        super().__init__(f"cannot {action} organization {org.id}: it is {org.status.lower()}")
        self.status = org.status
        self.action = action


@dataclass(frozen=True)
class Change:
    """The state after a transition and the audit entry recording it."""

    organization: Organization
    audit: AuditEntry


def _audit(
    before: Organization | None,
    after: Organization,
    action: str,
    actor: Identity | None,
    at: datetime,
    reason: str = "",
    evidence_note: str = "",
) -> AuditEntry:
    return AuditEntry(
        organization_id=after.id,
        action=action,
        actor=actor.subject if actor else SYSTEM_ACTOR,
        actor_roles=tuple(sorted(str(r) for r in actor.roles)) if actor else (),
        from_status=before.status if before else None,
        to_status=after.status,
        version=after.version,
        at=at,
        reason=reason,
        evidence_note=evidence_note,
    )


def register(
    org_id: str,
    profile: OrganizationProfile,
    instance: str,
    actor: Identity,
    now: datetime,
    duplicates: tuple[DuplicateCandidate, ...] = (),
) -> Change:
    """A new PENDING organization (version 1) registered by actor."""
    org = Organization(
        id=org_id,
        profile=profile,
        instance=instance,
        status=S.PENDING,
        version=1,
        created_at=now,
        updated_at=now,
        possible_duplicates=duplicates,
    )
    return Change(org, _audit(None, org, "registered", actor, now))


def _bump(org: Organization, now: datetime, **changes: object) -> Organization:
    return replace(org, version=org.version + 1, updated_at=now, **changes)  # type: ignore[arg-type]


def changed_fields(before: OrganizationProfile, after: OrganizationProfile) -> tuple[str, ...]:
    """Names of the profile fields that differ, in contract order."""
    return tuple(
        name
        for name in EDITABLE_ORGANIZATION_FIELDS
        if getattr(before, name) != getattr(after, name)
    )


def merge_draft(current: D, incoming: D, mask: tuple[str, ...], editable: tuple[str, ...]) -> D:
    """current with the masked fields taken from incoming (an empty mask takes every editable
    field); ValidationError naming update_mask when it lists a field that is not editable, or
    more paths than there are editable fields (checked first: the mask is caller input)."""
    if len(mask) > len(editable):
        raise ValidationError.single(
            "update_mask", f"must hold at most {len(editable)} paths, got {len(mask)}"
        )
    unknown = [f for f in mask if f not in editable]
    if unknown:
        raise ValidationError.single(
            "update_mask",
            f"not editable: {', '.join(echo(f) for f in unknown)}; editable: {', '.join(editable)}",
        )
    fields = mask or editable
    return replace(current, **{name: getattr(incoming, name) for name in fields})


def update(
    org: Organization, profile: OrganizationProfile, actor: Identity, now: datetime
) -> tuple[Change, tuple[str, ...]] | None:
    """The organization with a new profile, or None when nothing changed."""
    if org.status not in OPEN_STATUSES:
        raise InvalidTransition(org, "update")
    changed = changed_fields(org.profile, profile)
    if not changed:
        return None
    after = _bump(org, now, profile=profile)
    return Change(
        after, _audit(org, after, "updated", actor, now, "changed: " + ", ".join(changed))
    ), changed


def verify(
    org: Organization,
    actor: Identity,
    now: datetime,
    period: timedelta = DEFAULT_VERIFICATION_PERIOD,
    reason: str = "",
    evidence_note: str = "",
) -> Change:
    """Verify a pending or suspended organization, or re-confirm a verified one."""
    if org.status not in (S.PENDING, S.SUSPENDED, S.VERIFIED):
        raise InvalidTransition(org, "verify")
    action = "reconfirmed" if org.status is S.VERIFIED else "verified"
    after = _bump(
        org,
        now,
        status=S.VERIFIED,
        verified_at=now,
        verification_expires_at=now + period,
        reconfirmation_required=False,
        status_reason="",
    )
    return Change(after, _audit(org, after, action, actor, now, reason, evidence_note))


def reject(
    org: Organization, actor: Identity, now: datetime, reason: str, evidence_note: str = ""
) -> Change:
    """Refuse a pending organization (terminal)."""
    if org.status is not S.PENDING:
        raise InvalidTransition(org, "reject")
    after = _bump(org, now, status=S.REJECTED, status_reason=reason)
    return Change(after, _audit(org, after, "rejected", actor, now, reason, evidence_note))


def suspend(
    org: Organization, actor: Identity, now: datetime, reason: str, evidence_note: str = ""
) -> Change:
    """Withdraw the verification of a verified organization for now."""
    if org.status is not S.VERIFIED:
        raise InvalidTransition(org, "suspend")
    after = _bump(org, now, status=S.SUSPENDED, status_reason=reason)
    return Change(after, _audit(org, after, "suspended", actor, now, reason, evidence_note))


def verification_due(org: Organization, now: datetime) -> bool:
    """True when a verified organization's verification has lapsed and is not yet flagged."""
    return (
        org.status is S.VERIFIED
        and not org.reconfirmation_required
        and org.verification_expires_at is not None
        and org.verification_expires_at <= now
    )


def expire(org: Organization, now: datetime) -> Change:
    """Flag a lapsed verification for re-confirmation (the organization stays verified)."""
    if not verification_due(org, now):
        raise InvalidTransition(org, "expire the verification of")
    after = _bump(org, now, reconfirmation_required=True)
    return Change(after, _audit(org, after, "verification_expired", None, now))


def merge(
    source: Organization, target: Organization, actor: Identity, now: datetime, reason: str = ""
) -> Change:
    """Fold source into target: source becomes MERGED and redirects to target."""
    if source.id == target.id:
        raise ValidationError.single("target_id", "must differ from source_id")
    if source.status not in OPEN_STATUSES:
        raise InvalidTransition(source, "merge")
    if target.status not in OPEN_STATUSES:
        raise FailedPrecondition(
            f"cannot merge into organization {target.id}: it is {target.status.lower()}"
        )
    after = _bump(source, now, status=S.MERGED, merged_into=target.id)
    note = f"merged into {target.id}" + (f": {reason}" if reason else "")
    return Change(after, _audit(source, after, "merged", actor, now, note))
