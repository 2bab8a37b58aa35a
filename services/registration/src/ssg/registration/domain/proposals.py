"""Proposed organizations and expert profiles (ADR 0023): who acts for a proposal, and how long
a newer revision of it may still change what it made.

A proposed organization is registered PENDING like any other and waits for a reviewer; a newer
revision updates it only while it is still PENDING (a reviewer's decision makes it theirs). An
expert profile from a roster is owned by the producing system, so newer revisions keep updating
it as long as that system owns it.
"""

from __future__ import annotations

from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.proposals import Proposal
from ssg.registration.domain.model import Expert, Organization, OrganizationStatus


def acting_for(p: Proposal) -> Identity:
    """The identity a proposal's changes are recorded under (audit actor, expert owner)."""
    return Identity(subject=p.submitter, roles=frozenset({Role.PUBLIC}))


def organization_still_proposed(org: Organization) -> bool:
    """Whether a newer revision may still change the organization: no reviewer decided yet."""
    return org.status is OrganizationStatus.PENDING


def expert_still_proposed(expert: Expert, p: Proposal) -> bool:
    """Whether a newer revision may still change the profile: the producer still owns it."""
    return expert.owner == p.submitter
