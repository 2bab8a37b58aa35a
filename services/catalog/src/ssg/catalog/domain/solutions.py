"""The review workflow of solutions and their freshness.

DRAFT -> SUBMITTED -> IN_REVIEW -> PUBLISHED | CHANGES_REQUESTED | REJECTED;
CHANGES_REQUESTED -> SUBMITTED; PUBLISHED -> ARCHIVED. A reviewer's APPROVE leaves the
solution IN_REVIEW with the approving review recorded; PublishSolution then needs it, and any
later edit of the content withdraws it (the approval was for the content the reviewer read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

from ssg.catalog.domain.model import (
    CriterionScore,
    Provenance,
    Review,
    ReviewOutcome,
    Solution,
    SolutionContent,
    SolutionStatus,
    Source,
)
from ssg.platform.errors import FailedPrecondition, ValidationError

# Solutions not confirmed for this long are flagged stale (24 months).
STALE_AFTER = timedelta(days=730)
# A review passes when every criterion is scored (1-5) and the sum reaches this (of 30).
DEFAULT_PASS_THRESHOLD = 18
EDITABLE = frozenset(
    {SolutionStatus.DRAFT, SolutionStatus.CHANGES_REQUESTED, SolutionStatus.PUBLISHED}
)
CONTENT_FIELDS = tuple(f.name for f in fields(SolutionContent))


class InvalidTransition(FailedPrecondition):
    """The solution's status does not allow the command."""

    def __init__(self, solution: Solution, command: str) -> None:
        super().__init__(f"cannot {command} solution {solution.id}: it is {solution.status}")


def create(
    solution_id: str,
    organization_id: str,
    content: SolutionContent,
    submitted_by: str,
    instance: str,
    now: datetime,
    *,
    source: Source = Source.MANUAL,
    external_id: str = "",
    producer: str = "",
) -> Solution:
    """A new DRAFT."""
    return Solution(
        id=solution_id,
        organization_id=organization_id,
        content=content,
        provenance=Provenance(
            submitted_by=submitted_by,
            vouching_organization_id=organization_id,
            source=source,
            external_id=external_id,
            producer=producer,
        ),
        instance=instance,
        status=SolutionStatus.DRAFT,
        version=1,
        create_time=now,
        update_time=now,
    )


def changed_fields(before: object, after: object, names: Sequence[str]) -> tuple[str, ...]:
    """Names of the fields whose values differ."""
    return tuple(n for n in names if getattr(before, n) != getattr(after, n))


def update(
    solution: Solution, content: SolutionContent, now: datetime
) -> tuple[Solution, tuple[str, ...]] | None:
    """The edited solution and the changed fields; None when nothing changed."""
    if solution.status not in EDITABLE:
        raise InvalidTransition(solution, "edit")
    changed = changed_fields(solution.content, content, CONTENT_FIELDS)
    if not changed:
        return None
    published = solution.status is SolutionStatus.PUBLISHED
    return (
        replace(
            solution,
            content=content,
            version=solution.version + 1,
            update_time=now,
            # An owner editing a published solution is vouching that it is current.
            confirm_time=now if published else solution.confirm_time,
            stale=False if published else solution.stale,
            approved_review_id="",
        ),
        changed,
    )


def _move(solution: Solution, status: SolutionStatus, now: datetime, **changes: Any) -> Solution:
    return replace(
        solution, status=status, version=solution.version + 1, update_time=now, **changes
    )


def submit(solution: Solution, submitted_by: str, now: datetime) -> Solution:
    """DRAFT or CHANGES_REQUESTED -> SUBMITTED."""
    if solution.status not in (SolutionStatus.DRAFT, SolutionStatus.CHANGES_REQUESTED):
        raise InvalidTransition(solution, "submit")
    provenance = replace(solution.provenance, submitted_by=submitted_by, submit_time=now)
    return _move(solution, SolutionStatus.SUBMITTED, now, provenance=provenance)


def start_review(solution: Solution, now: datetime) -> Solution:
    """SUBMITTED -> IN_REVIEW."""
    if solution.status is not SolutionStatus.SUBMITTED:
        raise InvalidTransition(solution, "start reviewing")
    return _move(solution, SolutionStatus.IN_REVIEW, now)


def score(scores: Sequence[CriterionScore], threshold: int) -> tuple[int, bool]:
    """Total of a complete, validated checklist and whether it passes."""
    total = sum(s.score for s in scores)
    return total, total >= threshold


def review(
    solution: Solution,
    review_id: str,
    scores: tuple[CriterionScore, ...],
    outcome: ReviewOutcome,
    comment: str,
    reviewer: str,
    now: datetime,
    threshold: int = DEFAULT_PASS_THRESHOLD,
) -> tuple[Solution, Review]:
    """Record a review of an IN_REVIEW solution; APPROVE needs a passing score."""
    if solution.status is not SolutionStatus.IN_REVIEW:
        raise InvalidTransition(solution, "review")
    total, passed = score(scores, threshold)
    if outcome is ReviewOutcome.APPROVE and not passed:
        raise ValidationError.single(
            "review.outcome", f"APPROVE needs a total score of at least {threshold}, got {total}"
        )
    recorded = Review(
        id=review_id,
        solution_id=solution.id,
        solution_version=solution.version,
        scores=scores,
        outcome=outcome,
        comment=comment,
        reviewer=reviewer,
        create_time=now,
        total_score=total,
        passed=passed,
    )
    provenance = replace(solution.provenance, reviewed_by=reviewer, review_time=now)
    if outcome is ReviewOutcome.APPROVE:
        after = replace(
            solution,
            version=solution.version + 1,
            update_time=now,
            provenance=provenance,
            approved_review_id=review_id,
        )
    else:
        status = (
            SolutionStatus.REJECTED
            if outcome is ReviewOutcome.REJECT
            else SolutionStatus.CHANGES_REQUESTED
        )
        after = _move(solution, status, now, provenance=provenance, approved_review_id="")
    return after, recorded


def publish(solution: Solution, now: datetime) -> Solution:
    """IN_REVIEW with an approving review -> PUBLISHED (confirmed as of now)."""
    if solution.status is not SolutionStatus.IN_REVIEW:
        raise InvalidTransition(solution, "publish")
    if not solution.approved_review_id:
        raise FailedPrecondition(f"solution {solution.id} has no passing review to publish on")
    return _move(
        solution, SolutionStatus.PUBLISHED, now, publish_time=now, confirm_time=now, stale=False
    )


def publish_imported(solution: Solution, reviewer: str, now: datetime) -> Solution:
    """An imported solution published at once: its curator reviewed the collection."""
    provenance = replace(solution.provenance, reviewed_by=reviewer, review_time=now)
    return replace(
        solution,
        status=SolutionStatus.PUBLISHED,
        provenance=provenance,
        publish_time=now,
        confirm_time=now,
    )


def archive(solution: Solution, now: datetime) -> Solution:
    """PUBLISHED -> ARCHIVED."""
    if solution.status is not SolutionStatus.PUBLISHED:
        raise InvalidTransition(solution, "archive")
    return _move(solution, SolutionStatus.ARCHIVED, now)


def confirm(solution: Solution, now: datetime) -> Solution:
    """Its owners say a PUBLISHED solution is current: fresh for another STALE_AFTER."""
    if solution.status is not SolutionStatus.PUBLISHED:
        raise InvalidTransition(solution, "confirm")
    return replace(
        solution, version=solution.version + 1, update_time=now, confirm_time=now, stale=False
    )


def stale_due(solution: Solution, now: datetime, after: timedelta = STALE_AFTER) -> bool:
    """True for a published, not yet flagged solution unconfirmed for longer than after."""
    confirmed = solution.confirm_time or solution.publish_time
    return (
        solution.status is SolutionStatus.PUBLISHED
        and not solution.stale
        and confirmed is not None
        and confirmed <= now - after
    )


def mark_stale(solution: Solution, now: datetime) -> Solution:
    """Flag a solution stale (its owners are asked to confirm it)."""
    return replace(solution, stale=True, version=solution.version + 1, update_time=now)
