"""Items, organizations and matches as MongoDB documents and back."""

from __future__ import annotations

from typing import Any

from ssg.recommendation.domain.experts import Expert
from ssg.recommendation.domain.matches import Match, MatchStatus, Step
from ssg.recommendation.domain.model import Item, ItemKind, Organization, Reason

Doc = dict[str, Any]


def item_doc(item: Item) -> Doc:
    """The stored form of an item (aggregate_version is added by apply_if_newer)."""
    return {
        "kind": item.kind.value,
        "title": item.title,
        "text": item.text,
        "organization_id": item.organization_id,
        "sdgs": list(item.sdgs),
        "targets": list(item.targets),
        "countries": list(item.countries),
        "regions": list(item.regions),
        "language": item.language,
        "modality": item.modality,
        "published_at": item.published_at,
        "active": item.active,
        "verified": item.verified,
        "country": item.country,
        "instance": item.instance,
    }


def item_from_doc(doc: Doc) -> Item:
    """An item from its stored form."""
    return Item(
        id=doc["_id"],
        kind=ItemKind(doc["kind"]),
        title=doc["title"],
        text=doc["text"],
        organization_id=doc.get("organization_id", ""),
        sdgs=tuple(doc.get("sdgs", ())),
        targets=tuple(doc.get("targets", ())),
        countries=tuple(doc.get("countries", ())),
        regions=tuple(doc.get("regions", ())),
        language=doc.get("language", ""),
        modality=doc.get("modality", ""),
        published_at=doc.get("published_at"),
        active=doc.get("active", True),
        verified=doc.get("verified", False),
        country=doc.get("country", ""),
        instance=doc.get("instance", ""),
        version=doc.get("aggregate_version", 0),
    )


def organization_doc(org: Organization) -> Doc:
    """The stored form of an organization."""
    return {
        "name": org.name,
        "verified": org.verified,
        "country": org.country,
        "regions": list(org.regions),
        "languages": list(org.languages),
    }


def organization_from_doc(doc: Doc) -> Organization:
    """An organization from its stored form."""
    return Organization(
        id=doc["_id"],
        name=doc.get("name", ""),
        verified=doc.get("verified", False),
        country=doc.get("country", ""),
        regions=tuple(doc.get("regions", ())),
        languages=tuple(doc.get("languages", ())),
        version=doc.get("aggregate_version", 0),
    )


def reason_doc(r: Reason) -> Doc:
    """A reason as a sub-document."""
    return {"code": r.code, "text": r.text, "weight": r.weight, "ref": r.ref}


def match_doc(m: Match) -> Doc:
    """The stored form of a match."""
    return {
        "_id": m.id,
        "need_id": m.need_id,
        "solution_id": m.solution_id,
        "seeker_organization_id": m.seeker_organization_id,
        "provider_organization_id": m.provider_organization_id,
        "status": m.status.value,
        "score": m.score,
        "reasons": [reason_doc(r) for r in m.reasons],
        "history": [
            {
                "status": s.status.value,
                "actor": s.actor,
                "organization_id": s.organization_id,
                "note": s.note,
                "time": s.time,
            }
            for s in m.history
        ],
        "instance": m.instance,
        "version": m.version,
        "create_time": m.create_time,
        "update_time": m.update_time,
        "seeker_accepted": m.seeker_accepted,
        "provider_accepted": m.provider_accepted,
    }


def match_from_doc(doc: Doc) -> Match:
    """A match from its stored form."""
    return Match(
        id=doc["_id"],
        need_id=doc["need_id"],
        solution_id=doc["solution_id"],
        seeker_organization_id=doc["seeker_organization_id"],
        provider_organization_id=doc["provider_organization_id"],
        status=MatchStatus(doc["status"]),
        score=doc["score"],
        reasons=tuple(Reason(**r) for r in doc.get("reasons", ())),
        history=tuple(
            Step(MatchStatus(s["status"]), s["actor"], s["organization_id"], s["note"], s["time"])
            for s in doc.get("history", ())
        ),
        instance=doc.get("instance", ""),
        version=doc["version"],
        create_time=doc["create_time"],
        update_time=doc["update_time"],
        seeker_accepted=doc.get("seeker_accepted", False),
        provider_accepted=doc.get("provider_accepted", False),
    )


def expert_doc(expert: Expert) -> Doc:
    """The stored form of an expert."""
    return {
        "name": expert.name,
        "organization_id": expert.organization_id,
        "expertise": list(expert.expertise),
        "sdgs": list(expert.sdgs),
        "languages": list(expert.languages),
        "countries": list(expert.countries),
        "public": expert.public,
        "erased": False,
    }


def expert_from_doc(doc: Doc) -> Expert:
    """An expert from its stored form."""
    return Expert(
        id=doc["_id"],
        name=doc.get("name", ""),
        organization_id=doc.get("organization_id", ""),
        expertise=tuple(doc.get("expertise", ())),
        sdgs=tuple(doc.get("sdgs", ())),
        languages=tuple(doc.get("languages", ())),
        countries=tuple(doc.get("countries", ())),
        public=doc.get("public", False),
        version=doc.get("aggregate_version", 0),
    )
