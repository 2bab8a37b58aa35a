"""Expert profiles: creation and partial updates (erasure needs no rule beyond authorization)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ssg.platform.auth.tokens import Identity
from ssg.registration.domain.model import Expert, ExpertProfile


def register(
    expert_id: str, profile: ExpertProfile, instance: str, actor: Identity, now: datetime
) -> Expert:
    """A new expert profile (version 1) owned by the caller."""
    return Expert(expert_id, profile, actor.subject, instance, 1, now, now)


def update(expert: Expert, profile: ExpertProfile, now: datetime) -> Expert | None:
    """The expert with a new profile and version, or None when nothing changed."""
    if profile == expert.profile:
        return None
    return replace(expert, profile=profile, version=expert.version + 1, updated_at=now)
