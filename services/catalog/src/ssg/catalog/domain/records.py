"""Lifecycles of knowledge products (DRAFT -> PUBLISHED -> ARCHIVED), needs (OPEN -> MATCHED ->
IN_PROGRESS -> CLOSED) and funding opportunities (DRAFT -> OPEN -> CLOSED, by hand or by
itself once its deadline passed)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime

from ssg.catalog.domain.model import (
    FundingContent,
    FundingOpportunity,
    FundingStatus,
    KnowledgeContent,
    KnowledgeProduct,
    KnowledgeStatus,
    Need,
    NeedContent,
    NeedStatus,
)
from ssg.catalog.domain.solutions import changed_fields
from ssg.platform.errors import FailedPrecondition

KNOWLEDGE_FIELDS = tuple(f.name for f in fields(KnowledgeContent))
NEED_FIELDS = tuple(f.name for f in fields(NeedContent))
FUNDING_FIELDS = tuple(f.name for f in fields(FundingContent))
# Needs only move forward; CLOSED is reached through close_need.
_NEED_ORDER = (NeedStatus.OPEN, NeedStatus.MATCHED, NeedStatus.IN_PROGRESS)
DEADLINE_REASON = "deadline"


def _refuse(kind: str, record_id: str, status: str, command: str) -> FailedPrecondition:
    return FailedPrecondition(f"cannot {command} {kind} {record_id}: it is {status}")


def update_knowledge(
    product: KnowledgeProduct, content: KnowledgeContent, now: datetime
) -> tuple[KnowledgeProduct, tuple[str, ...]] | None:
    """Edited product and changed fields (None when unchanged); archived ones are frozen."""
    if product.status is KnowledgeStatus.ARCHIVED:
        raise _refuse("knowledge product", product.id, product.status, "edit")
    changed = changed_fields(product.content, content, KNOWLEDGE_FIELDS)
    if not changed:
        return None
    return replace(product, content=content, version=product.version + 1, update_time=now), changed


def publish_knowledge(product: KnowledgeProduct, now: datetime) -> KnowledgeProduct:
    """DRAFT -> PUBLISHED."""
    if product.status is not KnowledgeStatus.DRAFT:
        raise _refuse("knowledge product", product.id, product.status, "publish")
    return replace(
        product,
        status=KnowledgeStatus.PUBLISHED,
        version=product.version + 1,
        update_time=now,
        publish_time=now,
    )


def archive_knowledge(product: KnowledgeProduct, now: datetime) -> KnowledgeProduct:
    """PUBLISHED -> ARCHIVED."""
    if product.status is not KnowledgeStatus.PUBLISHED:
        raise _refuse("knowledge product", product.id, product.status, "archive")
    return replace(
        product, status=KnowledgeStatus.ARCHIVED, version=product.version + 1, update_time=now
    )


def update_need(
    need: Need, content: NeedContent, status: NeedStatus | None, now: datetime
) -> tuple[Need, tuple[str, ...]] | None:
    """Edited need (status may only move forward) and changed fields; None when unchanged."""
    if need.status is NeedStatus.CLOSED:
        raise _refuse("need", need.id, need.status, "edit")
    changed = list(changed_fields(need.content, content, NEED_FIELDS))
    new_status = need.status
    if status is not None and status is not need.status:
        if status is NeedStatus.CLOSED:
            raise FailedPrecondition("close a need with CloseNeed")
        if _NEED_ORDER.index(status) < _NEED_ORDER.index(need.status):
            raise FailedPrecondition(f"a need moves forward only: {need.status} -> {status}")
        new_status = status
        changed.append("status")
    if not changed:
        return None
    return (
        replace(
            need, content=content, status=new_status, version=need.version + 1, update_time=now
        ),
        tuple(changed),
    )


def close_need(need: Need, reason: str, now: datetime) -> Need:
    """Any open state -> CLOSED."""
    if need.status is NeedStatus.CLOSED:
        raise _refuse("need", need.id, need.status, "close")
    return replace(
        need,
        status=NeedStatus.CLOSED,
        close_reason=reason,
        version=need.version + 1,
        update_time=now,
    )


def update_funding(
    funding: FundingOpportunity, content: FundingContent, now: datetime
) -> tuple[FundingOpportunity, tuple[str, ...]] | None:
    """Edited opportunity and changed fields; closed ones are frozen."""
    if funding.status is FundingStatus.CLOSED:
        raise _refuse("funding opportunity", funding.id, funding.status, "edit")
    changed = changed_fields(funding.content, content, FUNDING_FIELDS)
    if not changed:
        return None
    return replace(funding, content=content, version=funding.version + 1, update_time=now), changed


def publish_funding(funding: FundingOpportunity, now: datetime) -> FundingOpportunity:
    """DRAFT -> OPEN, while the deadline is ahead."""
    if funding.status is not FundingStatus.DRAFT:
        raise _refuse("funding opportunity", funding.id, funding.status, "publish")
    deadline = funding.content.deadline
    if deadline is None or deadline <= now:
        raise FailedPrecondition(f"funding opportunity {funding.id} is past its deadline")
    return replace(funding, status=FundingStatus.OPEN, version=funding.version + 1, update_time=now)


def close_funding(funding: FundingOpportunity, reason: str, now: datetime) -> FundingOpportunity:
    """OPEN -> CLOSED."""
    if funding.status is not FundingStatus.OPEN:
        raise _refuse("funding opportunity", funding.id, funding.status, "close")
    return replace(
        funding,
        status=FundingStatus.CLOSED,
        version=funding.version + 1,
        update_time=now,
        close_time=now,
        close_reason=reason,
    )


def funding_expired(funding: FundingOpportunity, now: datetime) -> bool:
    """True for an OPEN opportunity whose deadline has passed."""
    deadline = funding.content.deadline
    return funding.status is FundingStatus.OPEN and deadline is not None and deadline <= now
