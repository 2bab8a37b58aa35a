"""The recommendation datastore on MongoDB (database ``recommendation``).

Collections:
  items          catalog records kept from catalog events (conditional on aggregate_version)
  organizations  provider/seeker facts kept from registration events (same)
  profiles       one per person (``user:<id>``) and organization (``org:<id>``): decayed sums of
                 feature and item weights (``domain.decay``), the strongest interaction per item
  item_stats     per item: decayed popularity, interactions, distinct people, and
                 ``changed_at`` (the ``next_seq`` of its last change: the API reads only those)
  co_items       per item ``a``: ``n.<b>`` = how many people used both a and b (both directions
                 stored), so all neighbours of an item are one read by _id
  experts        expert profiles kept from registration expert events (hidden and erased ones
                 as tombstones without personal data)
  matches        proposed partnerships and their lifecycle
  markers        ``items``: the latest stored_at of any item write (the API's reload signal)
  recommendations  one per profile key: its unfiltered list as the worker last computed it,
                 with the items' marker it was computed on and when the profile last changed
                 (``active_at``, the sweep's order; ADR 0054)
  outbox, processed_events  (``ssg.platform.events``)

Every write of an event handler goes through the consumer's transaction (``session``), together
with the processed-event mark, so a redelivered event changes no count twice.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, DeleteOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database

from ssg.platform.errors import VersionConflict
from ssg.platform.events.outbox import Outbox, next_seq
from ssg.platform.mongo import keyset_after
from ssg.platform.paging import Cursor
from ssg.recommendation.domain.decay import boosted
from ssg.recommendation.domain.experts import Expert
from ssg.recommendation.domain.matches import SUCCESSFUL, Match, MatchStatus
from ssg.recommendation.domain.model import (
    InteractionKind,
    Item,
    ItemKind,
    Organization,
    Reason,
    Scored,
)
from ssg.recommendation.domain.profile import (
    Profile,
    interaction_delta,
    organization_key,
    stronger,
    user_key,
)
from ssg.recommendation.domain.regional import home_regions
from ssg.recommendation.store.documents import (
    Doc,
    expert_doc,
    expert_from_doc,
    item_doc,
    item_from_doc,
    match_doc,
    match_from_doc,
    organization_doc,
    organization_from_doc,
)

# The two parties of a match, each with an index for listing its matches.
PARTY_FIELDS = ("seeker_organization_id", "provider_organization_id")
# Neighbours read per history item for the co-interaction signal.
NEIGHBOURS_PER_ITEM = 200


@dataclass(frozen=True)
class InteractionFacts:
    """One recorded interaction, as the worker applies it."""

    user_id: str
    organization_id: str
    item_id: str
    kind: InteractionKind
    at: datetime


# A reason as stored: code, text, weight, ref.
RawReason = tuple[str, str, float, str]


@dataclass(frozen=True)
class StoredList:
    """A profile's recommendations as the worker stored them."""

    key: str
    # The items' marker (stored_at) of the index the list was computed on.
    marker: int
    computed_at: datetime
    # (item id, score, reasons as (code, text, weight, ref)) best first: plain tuples of str
    # and float, which the garbage collector stops tracking, as an API holds many lists.
    entries: tuple[tuple[str, float, tuple[RawReason, ...]], ...]

    def reasons(self, n: int) -> tuple[Reason, ...]:
        """The reasons of the n-th entry."""
        return tuple(Reason(*r) for r in self.entries[n][2])


@dataclass(frozen=True)
class StaleList:
    """A stored list behind the items' marker, as the sweep read it (its write's condition)."""

    key: str
    marker: int
    computed_at: datetime


@dataclass(frozen=True)
class ItemSignals:
    """What the API keeps in memory of item_stats (stored, boosted sums)."""

    popularity: dict[str, float]
    people: dict[str, int]
    # Region name -> item -> popularity among organizations of that region.
    regional: dict[str, dict[str, float]]


class MongoStore:
    """The service's collections on one database."""

    def __init__(
        self,
        client: MongoClient[Doc],
        db: Database[Doc],
        *,
        profile_half_life: timedelta = timedelta(days=30),
        popularity_half_life: timedelta = timedelta(days=7),
        co_history: int = 50,
    ) -> None:
        self.client = client
        self.db = db
        self.items = db["items"]
        self.organizations = db["organizations"]
        self.profiles = db["profiles"]
        self.item_stats = db["item_stats"]
        self.co_items = db["co_items"]
        self.matches = db["matches"]
        self.experts = db["experts"]
        self.markers = db["markers"]
        self.recommendations = db["recommendations"]
        self.outbox = Outbox(db)
        self.profile_half_life = profile_half_life
        self.popularity_half_life = popularity_half_life
        self.co_history = co_history

    def ensure_indexes(self) -> None:
        """Create the indexes the queries need; safe at every start."""
        self.items.create_index([("stored_at", DESCENDING)], name="stored_at")
        self.items.create_index([("kind", ASCENDING), ("active", ASCENDING)], name="kind_active")
        self.matches.create_index([("need_id", ASCENDING)], name="need_id")
        self.matches.create_index(
            [("provider_organization_id", ASCENDING), ("status", ASCENDING)], name="provider_status"
        )
        for side in PARTY_FIELDS:
            self.matches.create_index(
                [(side, ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)],
                name=f"{side}_newest",
            )
        self.recommendations.create_index([("marker", ASCENDING)], name="marker")
        self.item_stats.create_index([("changed_at", ASCENDING)], name="changed_at")
        self.outbox.ensure_indexes()

    # Read models kept from catalog and registration events.

    def apply_item(self, item: Item, session: ClientSession | None = None) -> bool:
        """Store item unless a newer version is stored; True when written."""
        stored_at = next_seq()
        doc = {**item_doc(item), "stored_at": stored_at}
        written = _apply_if_newer(self.items, item.id, item.version, doc, session)
        if written:
            self.mark_items_changed(stored_at, session)
        return written

    def mark_items_changed(self, stored_at: int, session: ClientSession | None = None) -> None:
        """Move the items' marker (in the writer's transaction), so readers notice by _id."""
        self.markers.update_one(
            {"_id": "items"}, {"$max": {"stored_at": stored_at}}, upsert=True, session=session
        )

    def apply_organization(self, org: Organization, session: ClientSession | None = None) -> bool:
        """Store org unless a newer version is stored; True when written."""
        return _apply_if_newer(
            self.organizations, org.id, org.version, organization_doc(org), session
        )

    def apply_expert(
        self,
        expert: Expert | None,
        expert_id: str,
        version: int,
        session: ClientSession | None = None,
    ) -> bool:
        """Store an expert (None: a tombstone, for hidden or erased profiles) unless a newer
        version is stored; True when written."""
        doc = (
            expert_doc(expert)
            if expert is not None
            else {"erased": True, "name": "", "public": False}
        )
        if expert is None:
            # An erased profile keeps nothing personal: replace the whole document.
            stored = self.experts.find_one(
                {"_id": expert_id}, {"aggregate_version": 1}, session=session
            )
            if stored is not None and stored.get("aggregate_version", 0) >= version:
                return False
            self.experts.replace_one(
                {"_id": expert_id},
                {**doc, "aggregate_version": version},
                upsert=True,
                session=session,
            )
            return True
        return _apply_if_newer(self.experts, expert_id, version, doc, session)

    def experts_by_organization(self) -> dict[str, list[Expert]]:
        """Visible-to-someone experts grouped by the organization they are affiliated with."""
        found: dict[str, list[Expert]] = defaultdict(list)
        for d in self.experts.find({"erased": False}):
            expert = expert_from_doc(d)
            if expert.organization_id:
                found[expert.organization_id].append(expert)
        return dict(found)

    def get_item(self, item_id: str, session: ClientSession | None = None) -> Item | None:
        """One item, or None."""
        doc = self.items.find_one({"_id": item_id}, session=session)
        return item_from_doc(doc) if doc else None

    def all_items(self) -> list[Item]:
        """Every stored item (active or not)."""
        return [item_from_doc(d) for d in self.items.find({}, {"stored_at": 0})]

    def items_marker(self) -> int:
        """Changes whenever an item is written: the latest stored_at, one read by _id. Every
        item write moves it in its own transaction (``apply_item``), so no count is read: the
        local stand-in counts by scanning the collection under its storage lock, which stalled
        every other read for hundreds of ms at 20,000 items every refresh (ADR 0051)."""
        latest = self.markers.find_one({"_id": "items"})
        return int(latest["stored_at"]) if latest else 0

    def organizations_by_id(self, ids: Iterable[str] | None = None) -> dict[str, Organization]:
        """Organizations by id (all when ids is None)."""
        query: Doc = {} if ids is None else {"_id": {"$in": list(set(ids))}}
        return {d["_id"]: organization_from_doc(d) for d in self.organizations.find(query)}

    def open_needs(self) -> list[Item]:
        """Needs still open."""
        query = {"kind": ItemKind.NEED.value, "active": True}
        return [item_from_doc(d) for d in self.items.find(query)]

    # Behaviour.

    def record_interaction(
        self, facts: InteractionFacts, item: Item | None, session: ClientSession | None = None
    ) -> None:
        """Apply one interaction to the person's and organization's profiles, the item's
        popularity and (for a person's first use of the item) the co-interaction counts."""
        keys = [user_key(facts.user_id)]
        if facts.organization_id:
            keys.append(organization_key(facts.organization_id))
        known = item or Item(facts.item_id, ItemKind.SOLUTION, "", "")
        delta = interaction_delta(known, facts.kind, facts.at, self.profile_half_life)
        features = delta.features if item is not None else {}
        first_use = False
        history: dict[str, float] = {}
        for n, key in enumerate(keys):
            doc = self.profiles.find_one(
                {"_id": key}, {"items": 1, f"strongest.{facts.item_id}": 1}, session=session
            )
            items = (doc or {}).get("items", {})
            before = (doc or {}).get("strongest", {}).get(facts.item_id)
            if n == 0:
                first_use = facts.item_id not in items
                history = items
            inc: dict[str, Any] = {f"features.{f}": w for f, w in features.items()}
            inc[f"items.{facts.item_id}"] = delta.item_weight
            inc["interactions"] = 1
            strongest = stronger(InteractionKind(before) if before else None, facts.kind)
            changes: dict[str, Any] = {f"strongest.{facts.item_id}": strongest.value}
            if n == 0 and facts.organization_id:
                changes["organization_id"] = facts.organization_id
            self.profiles.update_one(
                {"_id": key}, {"$inc": inc, "$set": changes}, upsert=True, session=session
            )
        popularity = boosted(1.0, facts.at, self.popularity_half_life)
        stats: dict[str, Any] = {
            "popularity": popularity,
            "interactions": 1,
            "people": 1 if first_use else 0,
        }
        if facts.organization_id:
            found = self.organizations.find_one({"_id": facts.organization_id}, session=session)
            org = organization_from_doc(found) if found else None
            for region in home_regions(org):
                stats[f"regions.{region}"] = popularity
        self.item_stats.update_one(
            {"_id": facts.item_id},
            {"$inc": stats, "$max": {"changed_at": next_seq()}},
            upsert=True,
            session=session,
        )
        if first_use and history:
            earlier = sorted(history, key=lambda i: -history[i])[: self.co_history]
            self.co_items.bulk_write(
                _co_increments(facts.item_id, earlier), ordered=False, session=session
            )

    def load_history(
        self, interactions: Sequence[InteractionFacts], items: Mapping[str, Item]
    ) -> None:
        """Bulk-load many interactions in time order with the same arithmetic as
        ``record_interaction`` (seeding and benchmarks: no events, not idempotent)."""
        profiles: dict[str, dict[str, Any]] = {}
        stats: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        co: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for facts in interactions:
            item = items.get(facts.item_id)
            known = item or Item(facts.item_id, ItemKind.SOLUTION, "", "")
            delta = interaction_delta(known, facts.kind, facts.at, self.profile_half_life)
            keys = [user_key(facts.user_id)]
            if facts.organization_id:
                keys.append(organization_key(facts.organization_id))
            first_use, history = False, {}
            for n, key in enumerate(keys):
                doc = profiles.setdefault(
                    key, {"features": defaultdict(float), "items": {}, "strongest": {}, "n": 0}
                )
                if n == 0:
                    first_use, history = facts.item_id not in doc["items"], dict(doc["items"])
                if item is not None:
                    for f, w in delta.features.items():
                        doc["features"][f] += w
                doc["items"][facts.item_id] = (
                    doc["items"].get(facts.item_id, 0.0) + delta.item_weight
                )
                before = doc["strongest"].get(facts.item_id)
                doc["strongest"][facts.item_id] = stronger(before, facts.kind)
                doc["n"] += 1
            stat = stats[facts.item_id]
            stat["popularity"] += boosted(1.0, facts.at, self.popularity_half_life)
            stat["interactions"] += 1
            stat["people"] += 1 if first_use else 0
            if first_use:
                for other in sorted(history, key=lambda i: -history[i])[: self.co_history]:
                    co[facts.item_id][other] += 1
                    co[other][facts.item_id] += 1
        chunk = 1000
        docs = [
            {
                "_id": key,
                "features": dict(p["features"]),
                "items": p["items"],
                "strongest": {i: k.value for i, k in p["strongest"].items()},
                "interactions": p["n"],
            }
            for key, p in profiles.items()
        ]
        loaded_at = next_seq()
        stat_docs = [
            {
                "_id": i,
                "popularity": s["popularity"],
                "interactions": int(s["interactions"]),
                "people": int(s["people"]),
                "changed_at": loaded_at,
            }
            for i, s in stats.items()
        ]
        co_docs = [{"_id": a, "n": dict(found)} for a, found in co.items()]
        for collection, rows in (
            (self.profiles, docs),
            (self.item_stats, stat_docs),
            (self.co_items, co_docs),
        ):
            for start in range(0, len(rows), chunk):
                collection.insert_many(rows[start : start + chunk], ordered=False)

    def read_profile(
        self, key: str, now: datetime, session: ClientSession | None = None
    ) -> Profile:
        """The profile under key decayed to now (empty when unknown)."""
        doc = self.profiles.find_one({"_id": key}, session=session) or {}
        items = doc.get("items", {})
        return Profile.read(
            key,
            doc.get("features", {}),
            items,
            {i: InteractionKind(k) for i, k in doc.get("strongest", {}).items()},
            frozenset(items),
            now,
            self.profile_half_life,
            doc.get("organization_id", ""),
        )

    def profile_keys(self) -> list[str]:
        """Every stored profile's key."""
        return [d["_id"] for d in self.profiles.find({}, {"_id": 1})]

    def save_recommendations(
        self,
        key: str,
        scored: Sequence[Scored],
        marker: int,
        computed_at: datetime,
        session: ClientSession | None = None,
    ) -> None:
        """Store a profile's list (replacing the one before)."""
        self.recommendations.replace_one(
            {"_id": key}, _list_doc(key, scored, marker, computed_at), upsert=True, session=session
        )

    def save_many_recommendations(
        self, lists: Sequence[tuple[str, Sequence[Scored]]], marker: int, computed_at: datetime
    ) -> None:
        """Store many profiles' lists at once (backfill)."""
        if lists:
            self.recommendations.bulk_write(
                [
                    ReplaceOne(
                        {"_id": key}, _list_doc(key, scored, marker, computed_at), upsert=True
                    )
                    for key, scored in lists
                ],
                ordered=False,
            )

    def stale_recommendations(self, before_marker: int, limit: int) -> list[StaleList]:
        """At most limit stored lists computed on an items' marker older than before_marker,
        those of the most recently active profiles first."""
        cursor = (
            self.recommendations.find(
                {"marker": {"$lt": before_marker}}, {"marker": 1, "computed_at": 1}
            )
            .sort([("active_at", DESCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [StaleList(d["_id"], int(d["marker"]), d["computed_at"]) for d in cursor]

    def count_stale_recommendations(self, before_marker: int) -> int:
        """How many stored lists were computed on an items' marker older than before_marker."""
        return self.recommendations.count_documents({"marker": {"$lt": before_marker}})

    def rewrite_unchanged_recommendations(
        self,
        lists: Sequence[tuple[StaleList, Sequence[Scored] | None]],
        marker: int,
        computed_at: datetime,
    ) -> int:
        """Store recomputed lists (None: drop the list) only where the stored list is still the
        one read (same marker and computed_at), so a list the interaction path wrote meanwhile
        for a newer profile is kept; active_at is kept too. The number rewritten."""
        ops: list[UpdateOne | DeleteOne] = []
        for read, scored in lists:
            unchanged = {"_id": read.key, "marker": read.marker, "computed_at": read.computed_at}
            if scored is None:
                ops.append(DeleteOne(unchanged))
                continue
            doc = _list_doc(read.key, scored, marker, computed_at)
            del doc["_id"], doc["active_at"]
            ops.append(UpdateOne(unchanged, {"$set": doc}))
        if not ops:
            return 0
        result = self.recommendations.bulk_write(ops, ordered=False)
        return result.matched_count + result.deleted_count

    def drop_recommendations(self, key: str, session: ClientSession | None = None) -> None:
        """Forget a profile's stored list (its readers compute one)."""
        self.recommendations.delete_one({"_id": key}, session=session)

    def stored_recommendations(self, key: str) -> StoredList | None:
        """A profile's stored list, or None."""
        doc = self.recommendations.find_one({"_id": key})
        return stored_list_from_doc(doc) if doc is not None else None

    def raw_popularity(self) -> dict[str, float]:
        """Stored (boosted) popularity sums per item."""
        return self.item_signals().popularity

    def item_signals(self, changed_since: int | None = None) -> ItemSignals:
        """Stored (boosted) popularity sums, distinct people and popularity among organizations
        of each region, per item, in one read: of every item, or of those whose stats changed
        at or after changed_since (a ``next_seq`` value, wall-clock ns)."""
        query: Doc = {} if changed_since is None else {"changed_at": {"$gte": changed_since}}
        found = ItemSignals({}, {}, defaultdict(dict))
        for d in self.item_stats.find(query, {"popularity": 1, "people": 1, "regions": 1}):
            found.popularity[d["_id"]] = d.get("popularity", 0.0)
            found.people[d["_id"]] = int(d.get("people", 0))
            for region, value in d.get("regions", {}).items():
                found.regional[region][d["_id"]] = value
        return found

    def item_counts(self, item_id: str) -> tuple[int, int]:
        """(interactions, distinct people) of an item."""
        doc = self.item_stats.find_one({"_id": item_id}) or {}
        return int(doc.get("interactions", 0)), int(doc.get("people", 0))

    def co_count(self, a: str, b: str) -> int:
        """People who used both a and b."""
        doc = self.co_items.find_one({"_id": a}, {f"n.{b}": 1})
        return int(doc.get("n", {}).get(b, 0)) if doc else 0

    def neighbour_counts(self, item_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """For each item, its strongest co-interaction neighbours (at most
        NEIGHBOURS_PER_ITEM) with the number of people who used both."""
        sources = list(item_ids)
        if not sources:
            return {}
        counts: dict[str, dict[str, int]] = {}
        for d in self.co_items.find({"_id": {"$in": sources}}):
            found: dict[str, int] = d.get("n", {})
            top = heapq.nlargest(NEIGHBOURS_PER_ITEM, found.items(), key=lambda kv: kv[1])
            counts[d["_id"]] = {b: int(n) for b, n in top}
        return counts

    def neighbours(
        self, item_ids: Iterable[str], people: Mapping[str, int] | None = None
    ) -> dict[str, dict[str, float]]:
        """For each item, its strongest co-interaction neighbours with the cosine of their user
        sets; distinct people per item from people when given (a snapshot), else read."""
        counts = self.neighbour_counts(item_ids)
        if people is None:
            wanted = set(counts) | {b for found in counts.values() for b in found}
            people = {
                d["_id"]: int(d.get("people", 0))
                for d in self.item_stats.find({"_id": {"$in": list(wanted)}}, {"people": 1})
            }
        return cosines(counts, people)

    # Matches.

    def get_match(self, match_id: str, session: ClientSession | None = None) -> Match | None:
        """One match, or None."""
        doc = self.matches.find_one({"_id": match_id}, session=session)
        return match_from_doc(doc) if doc else None

    def insert_match_if_absent(self, match: Match, session: ClientSession | None = None) -> bool:
        """Store a new match unless one with its id exists; True when inserted."""
        if self.matches.find_one({"_id": match.id}, {"_id": 1}, session=session):
            return False
        self.matches.insert_one(match_doc(match), session=session)
        return True

    def save_match(self, match: Match, session: ClientSession | None = None) -> None:
        """Replace a match read at version - 1; VersionConflict if it changed meanwhile."""
        result = self.matches.replace_one(
            {"_id": match.id, "version": match.version - 1}, match_doc(match), session=session
        )
        if result.matched_count != 1:
            raise VersionConflict(f"match {match.id} changed meanwhile; read it again")

    def list_matches(
        self,
        organization_id: str,
        statuses: Iterable[MatchStatus],
        limit: int,
        after: Cursor | None,
    ) -> list[Match]:
        """limit + 1 of an organization's matches, as either party, newest first.

        One indexed range read per side, merged, rather than an ``$or`` of the two parties.
        """
        wanted = [s.value for s in statuses]
        found: list[Match] = []
        for side in PARTY_FIELDS:
            query: Doc = {side: organization_id}
            if wanted:
                query["status"] = {"$in": wanted}
            if after is not None:
                query.update(
                    keyset_after("create_time", datetime.fromisoformat(after[0]), after[1])
                )
            cursor = self.matches.find(query).sort(
                [("create_time", DESCENDING), ("_id", DESCENDING)]
            )
            found.extend(match_from_doc(d) for d in cursor.limit(limit + 1))
        # An organization on both sides of one match (its own need) is listed once.
        unique = {m.id: m for m in found}.values()
        return sorted(unique, key=lambda m: (m.create_time, m.id), reverse=True)[: limit + 1]

    def track_record(self, providers: Iterable[str] | None = None) -> dict[str, int]:
        """Per provider organization, its matches that were implemented."""
        query: Doc = {"status": {"$in": [s.value for s in SUCCESSFUL]}}
        if providers is not None:
            query["provider_organization_id"] = {"$in": list(set(providers))}
        counts: dict[str, int] = defaultdict(int)
        for d in self.matches.find(query, {"provider_organization_id": 1}):
            counts[d["provider_organization_id"]] += 1
        return dict(counts)


def _apply_if_newer(
    collection: Collection[Doc], id: str, version: int, doc: Doc, session: ClientSession | None
) -> bool:
    """Write doc as _id=id unless a stored aggregate_version is >= version; True when written.

    Unlike ``ssg.platform.events.consumer.apply_if_newer`` this reads first: inside the
    consumer's transaction a duplicate-key upsert would abort the whole transaction.
    """
    stored = collection.find_one({"_id": id}, {"aggregate_version": 1}, session=session)
    if stored is not None and stored.get("aggregate_version", 0) >= version:
        return False
    collection.update_one(
        {"_id": id}, {"$set": {**doc, "aggregate_version": version}}, upsert=True, session=session
    )
    return True


def _list_doc(key: str, scored: Sequence[Scored], marker: int, computed_at: datetime) -> Doc:
    return {
        "_id": key,
        "marker": marker,
        "computed_at": computed_at,
        # Written by the interaction path and backfill only: the sweep's most-active-first order.
        "active_at": computed_at,
        "items": [
            {
                "id": s.item.id,
                "score": s.score,
                "reasons": [[r.code, r.text, r.weight, r.ref] for r in s.reasons],
            }
            for s in scored
        ],
    }


def stored_list_from_doc(doc: Mapping[str, Any]) -> StoredList:
    """A stored list from its document. Item ids, reason codes and texts repeat across many
    lists, so they are interned, and reasons stay plain tuples (untracked by the garbage
    collector once seen): an API process holds every list in memory (ADR 0055)."""
    return StoredList(
        doc["_id"],
        int(doc["marker"]),
        doc["computed_at"],
        tuple(
            (
                sys.intern(e["id"]),
                float(e["score"]),
                tuple(
                    (sys.intern(code), sys.intern(text), float(weight), sys.intern(ref))
                    for code, text, weight, ref in e["reasons"]
                ),
            )
            for e in doc["items"]
        ),
    )


def cosines(
    counts: Mapping[str, Mapping[str, int]], people: Mapping[str, int]
) -> dict[str, dict[str, float]]:
    """Co-interaction counts as cosines of user sets: both / sqrt(people of a * people of b)."""

    def size(item_id: str) -> int:
        return max(people.get(item_id, 0), 1)

    return {
        a: {b: n / math.sqrt(size(a) * size(b)) for b, n in found.items()}
        for a, found in counts.items()
    }


def _co_increments(item_id: str, earlier: Sequence[str]) -> list[UpdateOne]:
    """The pair increments of a person's first use of item_id after their earlier items."""
    ops = [UpdateOne({"_id": item_id}, {"$inc": {f"n.{o}": 1 for o in earlier}}, upsert=True)]
    ops += [UpdateOne({"_id": o}, {"$inc": {f"n.{item_id}": 1}}, upsert=True) for o in earlier]
    return ops
