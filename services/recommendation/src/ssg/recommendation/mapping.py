"""Domain objects to protobuf messages and back (one place for every conversion)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.recommendation.v1 import interaction_pb2, match_pb2, reason_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as svc
from ssg.recommendation.domain.matches import Match, MatchStatus
from ssg.recommendation.domain.matching import SolutionMatch
from ssg.recommendation.domain.model import InteractionKind, ItemKind, Reason, Scored
from ssg.recommendation.domain.suggest import SdgSuggestion


def timestamp(at: datetime) -> Timestamp:
    """A protobuf Timestamp of an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def item_kind_to_proto(kind: ItemKind) -> interaction_pb2.ItemKind.ValueType:
    """ItemKind enum value of a domain kind."""
    return interaction_pb2.ItemKind.Value(f"ITEM_KIND_{kind.value}")


def item_kind_from_proto(value: int) -> ItemKind:
    """Domain kind of an ItemKind enum value; ValueError for UNSPECIFIED/unknown."""
    name = interaction_pb2.ItemKind.Name(value).removeprefix("ITEM_KIND_")  # type: ignore[arg-type]
    return ItemKind(name)


def interaction_kind_from_proto(value: int) -> InteractionKind:
    """Domain kind of an InteractionKind enum value; ValueError for UNSPECIFIED/unknown."""
    name = interaction_pb2.InteractionKind.Name(value).removeprefix("INTERACTION_KIND_")  # type: ignore[arg-type]
    return InteractionKind(name)


def interaction_kind_to_proto(kind: InteractionKind) -> interaction_pb2.InteractionKind.ValueType:
    """InteractionKind enum value of a domain kind."""
    return interaction_pb2.InteractionKind.Value(f"INTERACTION_KIND_{kind.value}")


def match_status_to_proto(status: MatchStatus) -> match_pb2.MatchStatus.ValueType:
    """MatchStatus enum value of a domain status."""
    return match_pb2.MatchStatus.Value(f"MATCH_STATUS_{status.value}")


def match_status_from_proto(value: int) -> MatchStatus:
    """Domain status of a MatchStatus enum value; ValueError for UNSPECIFIED/unknown."""
    name = match_pb2.MatchStatus.Name(value).removeprefix("MATCH_STATUS_")  # type: ignore[arg-type]
    return MatchStatus(name)


def reason_to_proto(r: Reason) -> reason_pb2.Reason:
    """A Reason message."""
    return reason_pb2.Reason(code=r.code, text=r.text, weight=r.weight, ref=r.ref)


def recommendation_to_proto(s: Scored) -> svc.Recommendation:
    """A Recommendation message of a scored item."""
    return svc.Recommendation(
        item_id=s.item.id,
        kind=item_kind_to_proto(s.item.kind),
        title=s.item.title,
        score=s.score,
        reasons=[reason_to_proto(r) for r in s.reasons],
    )


def solution_match_to_proto(m: SolutionMatch) -> svc.SolutionMatch:
    """A SolutionMatch message."""
    return svc.SolutionMatch(
        solution_id=m.scored.item.id,
        title=m.scored.item.title,
        provider_organization_id=m.provider.id,
        provider_name=m.provider.name,
        provider_verified=m.provider.verified,
        score=m.scored.score,
        reasons=[reason_to_proto(r) for r in m.scored.reasons],
        experts=[
            svc.MatchedExpert(
                expert_id=e.expert.id,
                display_name=e.expert.name,
                affiliation_organization_id=e.expert.organization_id,
                score=e.score,
                reasons=[reason_to_proto(r) for r in e.reasons],
            )
            for e in m.experts
        ],
    )


def match_to_proto(m: Match) -> match_pb2.Match:
    """A Match message."""
    return match_pb2.Match(
        id=m.id,
        need_id=m.need_id,
        solution_id=m.solution_id,
        seeker_organization_id=m.seeker_organization_id,
        provider_organization_id=m.provider_organization_id,
        status=match_status_to_proto(m.status),
        score=m.score,
        reasons=[reason_to_proto(r) for r in m.reasons],
        history=[
            match_pb2.MatchStep(
                status=match_status_to_proto(s.status),
                actor=s.actor,
                organization_id=s.organization_id,
                note=s.note,
                time=timestamp(s.time),
            )
            for s in m.history
        ],
        instance=m.instance,
        version=m.version,
        create_time=timestamp(m.create_time),
        update_time=timestamp(m.update_time),
    )


def sdg_suggestion_to_proto(s: SdgSuggestion) -> svc.SdgSuggestion:
    """An SdgSuggestion message (the Sdg enum value is the goal number)."""
    return svc.SdgSuggestion(
        sdg=sdg_pb2.Sdg.ValueType(s.sdg),
        confidence=s.confidence,
        targets=[
            svc.TargetSuggestion(target=sdg_pb2.SdgTarget(code=t.code), confidence=t.confidence)
            for t in s.targets
        ],
    )
