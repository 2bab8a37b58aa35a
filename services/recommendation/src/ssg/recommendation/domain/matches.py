"""The match lifecycle: proposed -> accepted by both sides -> agreed -> implemented -> results.

Only members of the seeker's or the provider's organization act on a match (operators too);
anyone else is refused. A side accepts once; the second side's acceptance makes the match
ACCEPTED. Either side may decline with a reason until the partnership is implemented.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.errors import FailedPrecondition, PermissionDenied, Violations
from ssg.recommendation.domain.model import Reason

MAX_NOTE_CHARS = 2000
SYSTEM = "system"


class MatchStatus(enum.StrEnum):
    """Where a match stands (names match ``MatchStatus`` without its prefix)."""

    PROPOSED = "PROPOSED"
    SEEKER_ACCEPTED = "SEEKER_ACCEPTED"
    PROVIDER_ACCEPTED = "PROVIDER_ACCEPTED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    IMPLEMENTED = "IMPLEMENTED"
    RESULTS_RECORDED = "RESULTS_RECORDED"
    DECLINED = "DECLINED"


class Side(enum.StrEnum):
    """Which party of a match a caller speaks for."""

    SEEKER = "SEEKER"
    PROVIDER = "PROVIDER"
    OPERATOR = "OPERATOR"


# The step AdvanceMatch may take from each status.
NEXT_STEP: dict[MatchStatus, MatchStatus] = {
    MatchStatus.ACCEPTED: MatchStatus.AGREED,
    MatchStatus.AGREED: MatchStatus.IMPLEMENTED,
    MatchStatus.IMPLEMENTED: MatchStatus.RESULTS_RECORDED,
}
DECLINABLE = frozenset(
    {
        MatchStatus.PROPOSED,
        MatchStatus.SEEKER_ACCEPTED,
        MatchStatus.PROVIDER_ACCEPTED,
        MatchStatus.ACCEPTED,
        MatchStatus.AGREED,
    }
)
# Statuses that count in a provider's track record.
SUCCESSFUL = frozenset({MatchStatus.IMPLEMENTED, MatchStatus.RESULTS_RECORDED})


@dataclass(frozen=True)
class Step:
    """One status change."""

    status: MatchStatus
    actor: str
    organization_id: str
    note: str
    time: datetime


@dataclass(frozen=True)
class Match:
    """A proposed partnership between a need's seeker and a solution's provider."""

    id: str
    need_id: str
    solution_id: str
    seeker_organization_id: str
    provider_organization_id: str
    status: MatchStatus
    score: float
    reasons: tuple[Reason, ...]
    history: tuple[Step, ...]
    instance: str
    version: int
    create_time: datetime
    update_time: datetime
    seeker_accepted: bool = field(default=False)
    provider_accepted: bool = field(default=False)


def match_id(need_id: str, solution_id: str) -> str:
    """The one id of a need-solution pair, so proposing twice finds the same match."""
    return hashlib.sha256(f"{need_id}|{solution_id}".encode()).hexdigest()[:32]


def propose(
    need_id: str,
    solution_id: str,
    seeker_organization_id: str,
    provider_organization_id: str,
    score: float,
    reasons: tuple[Reason, ...],
    instance: str,
    now: datetime,
) -> Match:
    """A new PROPOSED match (by the system)."""
    return Match(
        id=match_id(need_id, solution_id),
        need_id=need_id,
        solution_id=solution_id,
        seeker_organization_id=seeker_organization_id,
        provider_organization_id=provider_organization_id,
        status=MatchStatus.PROPOSED,
        score=score,
        reasons=reasons,
        history=(Step(MatchStatus.PROPOSED, SYSTEM, "", "", now),),
        instance=instance,
        version=1,
        create_time=now,
        update_time=now,
    )


def side_of(match: Match, who: Identity) -> Side:
    """Which side who speaks for; PermissionDenied for anyone else."""
    if Role.OPERATOR in who.roles:
        return Side.OPERATOR
    if who.authenticated and Role.MEMBER in who.roles and who.organization_id:
        if who.organization_id == match.seeker_organization_id:
            return Side.SEEKER
        if who.organization_id == match.provider_organization_id:
            return Side.PROVIDER
    raise PermissionDenied(
        "only members of the seeker's or the provider's organization may act on this match"
    )


def check_lister(who: Identity, organization_id: str) -> None:
    """Only the organization's members (and operators) list its matches."""
    if Role.OPERATOR in who.roles:
        return
    if who.authenticated and Role.MEMBER in who.roles and who.organization_id == organization_id:
        return
    raise PermissionDenied("only members of the organization may list its matches")


def _step(
    match: Match,
    status: MatchStatus,
    who: Identity,
    note: str,
    now: datetime,
    *,
    seeker_accepted: bool | None = None,
    provider_accepted: bool | None = None,
) -> Match:
    step = Step(status, who.subject, who.organization_id, note, now)
    return replace(
        match,
        status=status,
        history=(*match.history, step),
        version=match.version + 1,
        update_time=now,
        seeker_accepted=match.seeker_accepted if seeker_accepted is None else seeker_accepted,
        provider_accepted=match.provider_accepted
        if provider_accepted is None
        else provider_accepted,
    )


def accept(match: Match, who: Identity, now: datetime) -> Match:
    """The caller's side accepts; both sides together make it ACCEPTED."""
    side = side_of(match, who)
    if side is Side.OPERATOR:
        raise PermissionDenied("an operator cannot accept on behalf of a party")
    if match.status not in (
        MatchStatus.PROPOSED,
        MatchStatus.SEEKER_ACCEPTED,
        MatchStatus.PROVIDER_ACCEPTED,
    ):
        raise FailedPrecondition(f"a {match.status} match cannot be accepted")
    seeker = match.seeker_accepted or side is Side.SEEKER
    provider = match.provider_accepted or side is Side.PROVIDER
    if (seeker, provider) == (match.seeker_accepted, match.provider_accepted):
        raise FailedPrecondition(f"the {side.value.lower()} side has already accepted")
    if seeker and provider:
        status = MatchStatus.ACCEPTED
    else:
        status = MatchStatus.SEEKER_ACCEPTED if seeker else MatchStatus.PROVIDER_ACCEPTED
    return _step(match, status, who, "", now, seeker_accepted=seeker, provider_accepted=provider)


def decline(match: Match, who: Identity, reason: str, now: datetime) -> Match:
    """Either side ends the match, with a reason."""
    side_of(match, who)
    v = Violations()
    v.check(bool(reason.strip()), "reason", "required")
    v.check(len(reason) <= MAX_NOTE_CHARS, "reason", f"at most {MAX_NOTE_CHARS} characters")
    v.raise_if_any()
    if match.status not in DECLINABLE:
        raise FailedPrecondition(f"a {match.status} match cannot be declined")
    return _step(match, MatchStatus.DECLINED, who, reason.strip(), now)


def advance(match: Match, who: Identity, to: MatchStatus, note: str, now: datetime) -> Match:
    """Move an accepted match one step on (AGREED, IMPLEMENTED, RESULTS_RECORDED)."""
    side_of(match, who)
    v = Violations()
    v.check(to in NEXT_STEP.values(), "status", "must be AGREED, IMPLEMENTED or RESULTS_RECORDED")
    v.check(len(note) <= MAX_NOTE_CHARS, "note", f"at most {MAX_NOTE_CHARS} characters")
    if to is MatchStatus.RESULTS_RECORDED:
        v.check(bool(note.strip()), "note", "required: what the partnership achieved")
    v.raise_if_any()
    if NEXT_STEP.get(match.status) is not to:
        raise FailedPrecondition(f"a {match.status} match cannot move to {to}")
    return _step(match, to, who, note.strip(), now)
