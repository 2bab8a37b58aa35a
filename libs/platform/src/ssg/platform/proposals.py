"""Records internal systems propose through the ingress bridge, as their owning services take
them in (ADR 0022).

A proposal names a record by (kind, producer, external id) and carries the producer's revision.
The owning service keeps one ``ProposalLink`` per name, written in the same transaction as the
record it created, so a redelivered or replayed proposal finds the link and changes nothing,
and a newer revision updates the record only while nobody of the owning side has acted on it.
``decide`` is that rule; ``link_doc``/``link_from_doc`` are the stored form, and ``get_link``,
``insert_link`` and ``save_link`` read and write the ``proposal_links`` collection inside a caller's transaction.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from pymongo.client_session import ClientSession
from pymongo.database import Database

LINKS = "proposal_links"
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PRODUCER = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
MAX_REVISION = 2**63 - 1


class InvalidProposal(ValueError):
    """A proposal that no retry can make acceptable; the message says why."""


class UnknownReference(InvalidProposal):
    """A proposal that is acceptable but for naming a record this service has not heard of: its
    event may still be on its way, so the proposal is retried for a while before it is refused."""


class Decision(enum.StrEnum):
    """What one delivery of a proposal does to the record it names."""

    CREATE = "create"
    UPDATE = "update"
    # A revision at most the one already applied: a redelivery, a replay or out of order.
    STALE = "stale"
    # The owning side acted on the record (submitted, verified...): it is theirs now.
    CLAIMED = "claimed"


@dataclass(frozen=True)
class Proposal:
    """Who proposes which record, at which revision."""

    kind: str
    producer: str
    external_id: str
    revision: int

    @property
    def key(self) -> str:
        """The link's id: one record per kind, producer and external id."""
        return f"{self.kind}:{self.producer}:{self.external_id}"

    @property
    def submitter(self) -> str:
        """The subject recorded as the record's author: the producing system."""
        return f"ingress:{self.producer}"


@dataclass(frozen=True)
class ProposalLink:
    """The record a proposal created and the newest revision applied to it."""

    key: str
    kind: str
    producer: str
    external_id: str
    entity_id: str
    revision: int
    created_at: datetime
    updated_at: datetime
    # The newest revision that arrived after the owning side acted on the record (0 = none).
    ignored_revision: int = 0


def proposal(kind: str, producer: str, external_id: str, revision: int) -> Proposal:
    """A checked Proposal; InvalidProposal names the field that is wrong."""
    if not PRODUCER.match(producer):
        raise InvalidProposal(f"submission.producer: not a producer name: {producer[:140]!r}")
    if not EXTERNAL_ID.match(external_id):
        raise InvalidProposal(
            "proposal.external_id: must be 1 to 128 characters of [A-Za-z0-9._:-], "
            f"got {external_id[:140]!r}"
        )
    if revision > MAX_REVISION:
        raise InvalidProposal(f"proposal.revision: at most {MAX_REVISION}")
    # The contract says an omitted revision is 1.
    return Proposal(kind, producer, external_id, revision or 1)


def decide(link: ProposalLink | None, revision: int, editable: bool) -> Decision:
    """The rule: create when new; apply a newer revision while the record is editable."""
    if link is None:
        return Decision.CREATE
    if revision <= link.revision:
        return Decision.STALE
    return Decision.UPDATE if editable else Decision.CLAIMED


@dataclass(frozen=True)
class Taken:
    """What one delivery of a proposal did, and to which record ('' when it made none)."""

    decision: Decision
    record_id: str
    changed: bool = False


def settled(
    link: ProposalLink | None,
    decision: Decision,
    revision: int,
    now: datetime,
    save: Callable[[ProposalLink], None],
) -> Taken | None:
    """The outcome of a delivery that leaves the record as it is (STALE writes nothing, CLAIMED
    records the ignored revision through save); None when the record is to be written."""
    if link is None or decision not in (Decision.STALE, Decision.CLAIMED):
        return None
    if decision is Decision.CLAIMED:
        save(advanced(link, decision, revision, now))
    return Taken(decision, link.entity_id)


def new_link(p: Proposal, entity_id: str, now: datetime) -> ProposalLink:
    """The link of a record just created from p."""
    return ProposalLink(p.key, p.kind, p.producer, p.external_id, entity_id, p.revision, now, now)


def advanced(link: ProposalLink, decision: Decision, revision: int, now: datetime) -> ProposalLink:
    """The link after an UPDATE (revision applied) or a CLAIMED (revision ignored, recorded)."""
    if decision is Decision.UPDATE:
        return replace(link, revision=revision, updated_at=now)
    if decision is Decision.CLAIMED:
        return replace(link, ignored_revision=max(link.ignored_revision, revision), updated_at=now)
    return link


def link_doc(link: ProposalLink) -> dict[str, Any]:
    """The stored document (``_id`` = the key)."""
    doc = asdict(link)
    doc["_id"] = doc.pop("key")
    return doc


def link_from_doc(doc: dict[str, Any]) -> ProposalLink:
    """The link a stored document holds."""
    data = {k: v for k, v in doc.items() if k != "_id"}
    return ProposalLink(key=doc["_id"], **data)


def get_link(
    db: Database[Any], key: str, session: ClientSession | None = None
) -> ProposalLink | None:
    """The link stored under key, or None."""
    doc = db[LINKS].find_one({"_id": key}, session=session)
    return link_from_doc(doc) if doc else None


def insert_link(
    db: Database[Any], link: ProposalLink, session: ClientSession | None = None
) -> None:
    """Store a new link; a concurrent first delivery of the same proposal fails on ``_id``."""
    db[LINKS].insert_one(link_doc(link), session=session)


def save_link(db: Database[Any], link: ProposalLink, session: ClientSession | None = None) -> None:
    """Replace a stored link."""
    db[LINKS].replace_one({"_id": link.key}, link_doc(link), session=session)
