"""Proposed records: the drafts the catalog makes of what internal systems propose (ADR 0022).

A proposal becomes a DRAFT of the organization it names, never anything public: its members see
it among their drafts and submit it through the normal review flow. While it is still a draft a
newer revision of the proposal replaces its content; once the organization moved it on it is
theirs, and later revisions are only recorded on the proposal link.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from ssg.catalog.domain import records as record_rules
from ssg.catalog.domain import solutions as solution_rules
from ssg.catalog.domain.model import (
    FundingContent,
    FundingOpportunity,
    FundingStatus,
    KnowledgeContent,
    KnowledgeProduct,
    KnowledgeStatus,
    Provenance,
    Solution,
    SolutionContent,
    Source,
)
from ssg.platform.proposals import Proposal

R = TypeVar("R", Solution, KnowledgeProduct, FundingOpportunity)
Revised = tuple[R, tuple[str, ...]] | None


def provenance(p: Proposal, organization_id: str) -> Provenance:
    """Where a proposed record came from: the producing system and its id of the record."""
    return Provenance(
        submitted_by=p.submitter,
        vouching_organization_id=organization_id,
        source=Source.INGRESS,
        external_id=p.external_id,
        producer=p.producer,
    )


def draft_solution(
    solution_id: str,
    p: Proposal,
    organization_id: str,
    content: SolutionContent,
    instance: str,
    now: datetime,
) -> Solution:
    """A DRAFT solution of organization_id made from p."""
    return solution_rules.create(
        solution_id,
        organization_id,
        content,
        p.submitter,
        instance,
        now,
        source=Source.INGRESS,
        external_id=p.external_id,
        producer=p.producer,
    )


def draft_knowledge(
    product_id: str,
    p: Proposal,
    organization_id: str,
    content: KnowledgeContent,
    instance: str,
    now: datetime,
) -> KnowledgeProduct:
    """A DRAFT knowledge product of organization_id made from p."""
    return KnowledgeProduct(
        id=product_id,
        publishing_organization_id=organization_id,
        content=content,
        provenance=provenance(p, organization_id),
        instance=instance,
        status=KnowledgeStatus.DRAFT,
        version=1,
        create_time=now,
        update_time=now,
    )


def draft_funding(
    funding_id: str,
    p: Proposal,
    organization_id: str,
    content: FundingContent,
    instance: str,
    now: datetime,
) -> FundingOpportunity:
    """A DRAFT funding opportunity of organization_id made from p."""
    return FundingOpportunity(
        id=funding_id,
        funder_organization_id=organization_id,
        content=content,
        provenance=provenance(p, organization_id),
        instance=instance,
        status=FundingStatus.DRAFT,
        version=1,
        create_time=now,
        update_time=now,
    )


def still_proposed(record: Solution | KnowledgeProduct | FundingOpportunity) -> bool:
    """Whether a newer revision may still replace the record: nobody moved it past DRAFT."""
    return str(record.status) == "DRAFT"


def revise_solution(s: Solution, content: SolutionContent, now: datetime) -> Revised[Solution]:
    """The draft with a newer revision's content (None when the content is the same)."""
    return solution_rules.update(s, content, now)


def revise_knowledge(
    k: KnowledgeProduct, content: KnowledgeContent, now: datetime
) -> Revised[KnowledgeProduct]:
    """The draft with a newer revision's content (None when the content is the same)."""
    return record_rules.update_knowledge(k, content, now)


def revise_funding(
    f: FundingOpportunity, content: FundingContent, now: datetime
) -> Revised[FundingOpportunity]:
    """The draft with a newer revision's content (None when the content is the same)."""
    return record_rules.update_funding(f, content, now)
