"""Offline evaluation of recommendation and matchmaking on a reproducible synthetic world.

World: the catalog demo data (1,500 solutions, 200 knowledge products) as items; users with
latent interests (a primary and a secondary SDG, a home region) interacting over 180 days,
mostly by interest, partly by popularity (items have a Pareto "appeal" that also decays with
age) and partly at random; interaction kinds drawn with views most common. Time-ordered split:
the first 150 days train, the last 30 test. Relevant = items a user touched in the test period
and not in training. Methods are the service's own ``Recommender`` with different weights:
popularity only, content only (text + SDG + place), collaborative only (co-interaction), and
the hybrid the service runs (with and without MMR). Cold-start users have no training events.

Matchmaking: the catalog demo needs; a need's good solutions are those built on the same demo
topic (same practice), known from the titles. recall@10 is over min(10, |good|).

Run: ``uv run python tests/load/run_all.py bench_recommendation`` (or import and ``run()``).
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import combinations, product

from ssg.catalog import demo
from ssg.recommendation.domain.decay import boosted
from ssg.recommendation.domain.index import ItemIndex, jaccard
from ssg.recommendation.domain.matching import Matcher, NeedSpec
from ssg.recommendation.domain.model import (
    INTERACTION_WEIGHTS,
    InteractionKind,
    Item,
    ItemKind,
    Organization,
)
from ssg.recommendation.domain.profile import Profile, interaction_delta, stronger
from ssg.recommendation.domain.scoring import Recommender, Signals, Weights
from ssg.recommendation.domain.suggest import Labelled, SdgSuggester

SEED = 20251127
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS, SPLIT_DAY = 180, 150
WARM_USERS, COLD_USERS = 800, 200
K = 10
PROFILE_HALF = timedelta(days=30)
POPULARITY_HALF = timedelta(days=7)
CO_HISTORY, NEIGHBOUR_SOURCES, NEIGHBOURS = 50, 20, 200
KINDS = list(INTERACTION_WEIGHTS)
KIND_ODDS = [
    0.55,
    0.15,
    0.08,
    0.07,
    0.10,
    0.05,
]  # view, search click, download, share, save, contact
REGION_ODDS = {
    "AFRICA": 4,
    "ASIA_PACIFIC": 3,
    "LATIN_AMERICA_CARIBBEAN": 2,
    "ARAB_STATES": 1.5,
    "EUROPE_CENTRAL_ASIA": 1,
}


@dataclass(frozen=True)
class Event:
    user: str
    item: str
    kind: InteractionKind
    at: datetime


@dataclass
class World:
    items: list[Item]
    events: list[Event]
    cold_users: set[str]
    needs: list[tuple[NeedSpec, set[str]]] = field(default_factory=list)
    # Demo topic (practice) of each solution and need, by key.
    topic_of: dict[str, str] = field(default_factory=dict)
    need_texts: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    organizations: dict[str, Organization] = field(default_factory=dict)


def affinity(
    item: Item, primary: int, secondary: int, home: str, appeal: dict[str, float]
) -> float:
    """How much a user with these latent interests is drawn to item."""
    sdg = sum((1.0 if g == primary else 0.35 if g == secondary else 0.0) for g in item.sdgs)
    return sdg * (1.6 if home in item.regions else 1.0) * math.sqrt(appeal[item.id])


def build_world(seed: int = SEED) -> World:
    """Items from the catalog demo data and generated users with their interactions."""
    rng = random.Random(seed)
    catalog = demo.generate(seed=seed, today=START.date())
    items: list[Item] = []
    for s in catalog.solutions:
        c = s.content
        items.append(
            Item(
                id=s.key,
                kind=ItemKind.SOLUTION,
                title=c.title,
                text="\n".join([c.summary, c.challenge, c.approach, c.results, " ".join(c.tags)]),
                organization_id=s.organization_key,
                sdgs=tuple(c.sdgs),
                targets=tuple(c.sdg_targets),
                countries=tuple(
                    dict.fromkeys([*c.implementing_countries, *c.beneficiary_countries])
                ),
                regions=tuple(c.regions),
                language=c.language,
                published_at=START - timedelta(days=rng.uniform(0, 720)),
            )
        )
    for k in catalog.knowledge:
        kc = k.content
        items.append(
            Item(
                id=k.key,
                kind=ItemKind.KNOWLEDGE_PRODUCT,
                title=kc.title,
                text=kc.abstract,
                organization_id=k.organization_key,
                sdgs=tuple(kc.sdgs),
                language=kc.language,
                published_at=START - timedelta(days=rng.uniform(0, 720)),
            )
        )
    appeal = {
        i.id: rng.paretovariate(1.5) * 2 ** (-((START - (i.published_at or START)).days) / 365)
        for i in items
    }
    by_id = {i.id: i for i in items}
    ids = [i.id for i in items]
    popular_weights = [appeal[i] for i in ids]
    regions, region_weights = list(REGION_ODDS), list(REGION_ODDS.values())
    events: list[Event] = []
    cold: set[str] = set()
    for n in range(WARM_USERS + COLD_USERS):
        user = f"user-{n:04d}"
        primary, secondary = rng.sample(range(1, 18), 2)
        home = rng.choices(regions, region_weights)[0]

        interest = [affinity(by_id[i], primary, secondary, home, appeal) + 1e-6 for i in ids]
        is_cold = n >= WARM_USERS
        if is_cold:
            cold.add(user)
        count = rng.randint(4, 10) if is_cold else rng.randint(10, 40)
        for _ in range(count):
            roll = rng.random()
            if roll < 0.75:
                item = rng.choices(ids, interest)[0]
            elif roll < 0.9:
                item = rng.choices(ids, popular_weights)[0]
            else:
                item = rng.choice(ids)
            day = rng.uniform(SPLIT_DAY, DAYS) if is_cold else rng.uniform(0, DAYS)
            kind = rng.choices(KINDS, KIND_ODDS)[0]
            events.append(Event(user, item, kind, START + timedelta(days=day)))
    events.sort(key=lambda e: e.at)
    world = World(items, events, cold)
    _add_needs(world, catalog)
    return world


def _add_needs(world: World, catalog: demo.DemoCatalog) -> None:
    topics = sorted(demo.TOPICS, key=lambda t: -len(t.head))
    solution_topic: dict[str, str] = {}
    for s in catalog.solutions:
        found = next((t.head for t in topics if t.head.lower() in s.content.title.lower()), "")
        if found:
            solution_topic[s.key] = found
    world.topic_of.update(solution_topic)
    for need in catalog.needs:
        head = next((t.head for t in topics if t.head.lower() in need.content.title.lower()), "")
        good = {k for k, h in solution_topic.items() if h == head}
        world.need_texts.append(
            (
                head,
                f"{need.content.title}\n{need.content.problem_statement}",
                tuple(need.content.sdgs),
            )
        )
        if head and good:
            c = need.content
            spec = NeedSpec(
                c.title,
                c.problem_statement,
                tuple(c.sdgs),
                (),
                c.country,
                need.organization_key,
                need.key,
            )
            world.needs.append((spec, good))
    for org in catalog.organizations.organizations:
        d = org.draft
        world.organizations[org.key] = Organization(
            org.key,
            d.name,
            verified=org.target_status.value == "VERIFIED",
            country=d.headquarters_country,
            regions=tuple(d.regions),
            languages=tuple(d.languages),
        )


@dataclass
class Trained:
    """Profiles and behaviour signals learnt from the training events, as the worker keeps them."""

    profiles: dict[str, Profile]
    popularity: dict[str, float]
    co: dict[str, dict[str, int]]
    people: dict[str, int]

    def neighbours(self, profile: Profile) -> dict[str, dict[str, float]]:
        sources = sorted(profile.items, key=lambda i: -profile.items[i])[:NEIGHBOUR_SOURCES]
        result = {}
        for a in sources:
            top = sorted(self.co.get(a, {}).items(), key=lambda kv: -kv[1])[:NEIGHBOURS]
            result[a] = {
                b: n / math.sqrt(max(self.people[a], 1) * max(self.people[b], 1)) for b, n in top
            }
        return result


def train(world: World, until: datetime) -> Trained:
    """The same arithmetic as ``MongoStore.record_interaction``, in memory."""
    by_id = {i.id: i for i in world.items}
    features: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    weights: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    strongest: dict[str, dict[str, InteractionKind]] = defaultdict(dict)
    popularity: dict[str, float] = defaultdict(float)
    co: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    people: dict[str, int] = defaultdict(int)
    for e in world.events:
        if e.at >= until:
            break
        delta = interaction_delta(by_id[e.item], e.kind, e.at, PROFILE_HALF)
        history = weights[e.user]
        if e.item not in history:
            people[e.item] += 1
            for other in sorted(history, key=lambda i: -history[i])[:CO_HISTORY]:
                co[e.item][other] += 1
                co[other][e.item] += 1
        for f, w in delta.features.items():
            features[e.user][f] += w
        history[e.item] += delta.item_weight
        strongest[e.user][e.item] = stronger(strongest[e.user].get(e.item), e.kind)
        popularity[e.item] += boosted(1.0, e.at, POPULARITY_HALF)
    profiles = {
        u: Profile.read(
            f"user:{u}",
            features[u],
            weights[u],
            strongest[u],
            frozenset(weights[u]),
            until,
            PROFILE_HALF,
        )
        for u in weights
    }
    from ssg.recommendation.domain.decay import value_at

    return Trained(
        profiles,
        {k: value_at(v, until, POPULARITY_HALF) for k, v in popularity.items()},
        co,
        people,
    )


METHODS: dict[str, Weights] = {
    "popularity": Weights(
        text=0, sdg=0, place=0, co=0, popular=1, fresh=0, cold_popular=1, cold_fresh=0, mmr_lambda=1
    ),
    "content only": Weights(text=0.5, sdg=0.35, place=0.15, co=0, popular=0, fresh=0, mmr_lambda=1),
    "collaborative only": Weights(text=0, sdg=0, place=0, co=1, popular=0, fresh=0, mmr_lambda=1),
    "hybrid, no MMR": Weights(mmr_lambda=1),
    "hybrid (as served, MMR 0.7)": Weights(),
}


def ndcg(ranked: list[str], relevant: set[str], k: int = K) -> float:
    dcg = sum(1 / math.log2(n + 2) for n, i in enumerate(ranked[:k]) if i in relevant)
    ideal = sum(1 / math.log2(n + 2) for n in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


@dataclass
class Scores:
    ndcg: float
    recall: float
    coverage: float
    diversity: float
    users: int
    ms: float


def evaluate(
    world: World,
    trained: Trained,
    split: datetime,
    weights: Weights,
    users: set[str],
    until: datetime | None = None,
) -> Scores:
    """nDCG@10, recall@10, catalog coverage and intra-list diversity over users, relevant
    being what they touched from split (to until)."""
    index = world.index  # type: ignore[attr-defined]
    recommender = Recommender(index, weights)
    test: dict[str, set[str]] = defaultdict(set)
    for e in world.events:
        if e.at >= split and (until is None or e.at < until) and e.user in users:
            test[e.user].add(e.item)
    nd, rc, div, shown = [], [], [], set()
    started = time.perf_counter()
    for user in sorted(test):
        profile = trained.profiles.get(user) or Profile(f"user:{user}")
        relevant = test[user] - profile.seen
        if not relevant:
            continue
        signals = Signals(trained.popularity, trained.neighbours(profile))
        ranked = [s.item for s in recommender.recommend(profile, signals, split, K)]
        ids = [i.id for i in ranked]
        nd.append(ndcg(ids, relevant))
        rc.append(len(set(ids) & relevant) / len(relevant))
        shown.update(ids)
        pairs = list(combinations(ranked, 2))
        div.append(
            sum(1 - jaccard(a.sdgs, b.sdgs) for a, b in pairs) / len(pairs) if pairs else 0.0
        )
    elapsed = time.perf_counter() - started
    n = len(nd)
    return Scores(
        sum(nd) / n,
        sum(rc) / n,
        len(shown) / len(world.items),
        sum(div) / n,
        n,
        1000 * elapsed / max(n, 1),
    )


def evaluate_matching(world: World) -> list[tuple[str, float, float, float]]:
    """(method, recall@10, MRR, p@1) of MatchNeed and single-signal baselines."""
    index = ItemIndex([i for i in world.items if i.kind is ItemKind.SOLUTION])
    results = []
    variants = {
        "MatchNeed (as served)": {},
        "text similarity only": {
            "sdg": 0,
            "target": 0,
            "region": 0,
            "language": 0,
            "development": 0,
            "country": 0,
            "verified": 0,
            "track_record": 0,
        },
        "SDG overlap only": {
            "text": 0,
            "target": 0,
            "region": 0,
            "language": 0,
            "development": 0,
            "country": 0,
            "verified": 0,
            "track_record": 0,
        },
    }
    from ssg.recommendation.domain.matching import MatchWeights

    rng = random.Random(SEED)
    # A harder variant: no title and only 30% of the problem statement's words, in order.
    sparse_needs = [
        (
            replace(
                spec,
                title="",
                problem=" ".join(w for w in spec.problem.split() if rng.random() < 0.3),
            ),
            good,
        )
        for spec, good in world.needs
    ]
    for (name, zeroed), (needs_name, needs) in product(
        variants.items(), (("full text", world.needs), ("30% of the words", sparse_needs))
    ):
        matcher = Matcher(index, MatchWeights(**{k: 0.0 for k in zeroed}))
        recall, rr, p1 = [], [], []
        for spec, good in needs:
            ranked = [m.scored.item.id for m in matcher.match(spec, world.organizations, {}, K)]
            recall.append(len(set(ranked) & good) / min(len(good), K))
            first = next((n for n, i in enumerate(ranked) if i in good), None)
            rr.append(1 / (first + 1) if first is not None else 0.0)
            p1.append(1.0 if ranked and ranked[0] in good else 0.0)
        n = len(needs)
        results.append((f"{name}, {needs_name}", sum(recall) / n, sum(rr) / n, sum(p1) / n))
    return results


def evaluate_suggestions(
    world: World,
) -> tuple[list[tuple[int, float, float, int]], float, float, int, int]:
    """Per SDG (precision, recall, test texts) of SuggestSdgs trained on three of the four demo
    practices of each goal and tested on the fourth (solutions and needs of practices it never
    saw); micro precision and recall; training and test sizes."""
    held_out = {t.head for n, t in enumerate(demo.TOPICS) if n % 4 == 3}
    train_docs: list[Labelled] = []
    test_docs: list[Labelled] = []
    for item in world.items:
        topic = world.topic_of.get(item.id)
        if topic is None:
            continue
        doc = Labelled(f"{item.title}\n{item.text}", item.sdgs, item.targets)
        (test_docs if topic in held_out else train_docs).append(doc)
    test_docs += [Labelled(text, sdgs) for head, text, sdgs in world.need_texts if head in held_out]
    suggester = SdgSuggester(train_docs)
    tp: dict[int, int] = defaultdict(int)
    fp: dict[int, int] = defaultdict(int)
    fn: dict[int, int] = defaultdict(int)
    for doc in test_docs:
        predicted = {s.sdg for s in suggester.suggest(doc.text, k=3, min_confidence=0.5)}
        for g in range(1, 18):
            if g in predicted and g in doc.sdgs:
                tp[g] += 1
            elif g in predicted:
                fp[g] += 1
            elif g in doc.sdgs:
                fn[g] += 1
    rows = []
    for g in range(1, 18):
        p = tp[g] / (tp[g] + fp[g]) if tp[g] + fp[g] else 0.0
        r = tp[g] / (tp[g] + fn[g]) if tp[g] + fn[g] else 0.0
        rows.append((g, p, r, tp[g] + fn[g]))
    micro_p = sum(tp.values()) / max(sum(tp.values()) + sum(fp.values()), 1)
    micro_r = sum(tp.values()) / max(sum(tp.values()) + sum(fn.values()), 1)
    return rows, micro_p, micro_r, len(train_docs), len(test_docs)


def report(world: World) -> str:
    split = START + timedelta(days=SPLIT_DAY)
    world.index = ItemIndex(world.items)  # type: ignore[attr-defined]
    trained = train(world, split)
    warm = {e.user for e in world.events} - world.cold_users
    rows = {}
    for name, w in METHODS.items():
        rows[name] = evaluate(world, trained, split, w, warm)
        print(f"  {name}: {rows[name]}", file=sys.stderr, flush=True)
    cold_rows = {
        name: evaluate(world, trained, split, METHODS[name], world.cold_users)
        for name in ("popularity", "hybrid (as served, MMR 0.7)")
    }
    train_events = sum(1 for e in world.events if e.at < split)
    lines = [
        "## Recommendation: offline evaluation",
        "",
        f"Synthetic world (seed {SEED}, `tests/load/bench_recommendation.py`): {len(world.items):,} items from the "
        f"catalog demo data, {WARM_USERS} users with history and {COLD_USERS} cold-start users, "
        f"{len(world.events):,} interactions over {DAYS} days (75% by latent interest: a primary and a "
        "secondary SDG and a home region; 15% by popularity, with a Pareto appeal that fades with "
        f"age; 10% at random). Time-ordered split: {train_events:,} events of the first {SPLIT_DAY} days "
        "train; relevant = items a user touched in the last 30 days and not before. Every method is the "
        "service's `Recommender` with other weights; diversity = mean pairwise (1 - SDG Jaccard) within a list.",
        "",
        "| method (users with history) | nDCG@10 | recall@10 | catalog coverage | intra-list diversity | ms/user |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows.items():
        lines.append(
            f"| {name} | {s.ndcg:.4f} | {s.recall:.4f} | {s.coverage:.1%} | {s.diversity:.3f} | {s.ms:.1f} |"
        )
    lines += [
        "",
        "| method (cold-start users) | nDCG@10 | recall@10 | catalog coverage | intra-list diversity | ms/user |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in cold_rows.items():
        lines.append(
            f"| {name} | {s.ndcg:.4f} | {s.recall:.4f} | {s.coverage:.1%} | {s.diversity:.3f} | {s.ms:.1f} |"
        )
    pop, served = rows["popularity"].ndcg, rows["hybrid (as served, MMR 0.7)"].ndcg
    best_single = max(rows[m].ndcg for m in ("popularity", "content only", "collaborative only"))
    ratio = served / pop if pop else float("inf")
    lines += [
        "",
        f"Hybrid as served / popularity nDCG@10: **{ratio:.2f}x** (goal >= 1.5x: {'met' if ratio >= 1.5 else 'not met'}); "
        f"above every single method: {'yes' if served > best_single else 'no'} "
        f"({served:.4f} vs best single {best_single:.4f}). Cold-start users get the popularity and freshness "
        "ranking, so their two rows differ only by freshness and MMR.",
        "",
    ]
    lines += [
        f"Matchmaking: {len(world.needs)} demo needs; a need's good solutions are the demo solutions built on the "
        "same practice (topic), on average "
        f"{sum(len(g) for _, g in world.needs) / max(len(world.needs), 1):.1f} per need; organizations from the registration demo data.",
        "",
        "On the full text the need shares its topic's phrases with the good solutions (the demo text is templated), "
        "so the first rows mostly show the ranking keeps them on top; the sparse rows are the harder test.",
        "",
        "| method, need text | recall@10 (of min(10, good)) | MRR | precision@1 |",
        "|---|---:|---:|---:|",
    ]
    for name, recall, mrr, p1 in evaluate_matching(world):
        lines.append(f"| {name} | {recall:.3f} | {mrr:.3f} | {p1:.3f} |")
    rows_s, micro_p, micro_r, n_train, n_test = evaluate_suggestions(world)
    lines += [
        "",
        f"SuggestSdgs (`domain/suggest.py`): trained on {n_train:,} demo solutions of three of the four demo practices "
        f"of each goal, tested on {n_test:,} solutions and needs of the fourth practice (texts about practices it never "
        "saw); a goal counts as suggested when it is among the top 3 with confidence >= 0.5 (the best one always). "
        f"Micro precision **{micro_p:.3f}**, recall **{micro_r:.3f}**.",
        "",
        "| SDG | precision | recall | test texts with it |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {g} | {p:.3f} | {r:.3f} | {n} |" for g, p, r, n in rows_s]
    return "\n".join(lines) + "\n"


def scoring_latency(
    world: World, items: int = 20_000, users: int = 10_000, calls: int = 300
) -> str:
    """In-process latency of one Recommend and one MatchNeed scoring at `items` items: the demo
    items repeated under new ids, profiles of 10-40 items drawn for `users` people, each with 20
    co-interaction sources of 200 neighbours (what the store returns at most)."""
    rng = random.Random(SEED)
    base = world.items
    many = [replace(base[n % len(base)], id=f"x{n:05d}") for n in range(items)]
    started = time.perf_counter()
    index = ItemIndex(many)
    build = time.perf_counter() - started
    ids = [i.id for i in many]
    recommender, matcher = Recommender(index), Matcher(index)
    popularity = index.aligned({i: rng.paretovariate(1.5) for i in ids})
    rec_ms, match_ms = [], []
    for _ in range(calls):
        user = rng.randrange(users)
        history = rng.sample(ids, rng.randint(10, 40))
        now = START + timedelta(days=DAYS)
        features: dict[str, float] = defaultdict(float)
        weights: dict[str, float] = defaultdict(float)
        for item_id in history:
            delta = interaction_delta(
                index.items[index.position[item_id]], InteractionKind.VIEW, now, PROFILE_HALF
            )
            for f, w in delta.features.items():
                features[f] += w
            weights[item_id] += delta.item_weight
        profile = Profile.read(
            f"user:{user}", features, weights, {}, frozenset(weights), now, PROFILE_HALF
        )
        neighbours = {h: {rng.choice(ids): rng.random() for _ in range(200)} for h in history[:20]}
        t0 = time.perf_counter()
        signals = Signals(neighbours=neighbours, popularity_by_position=popularity)
        recommender.recommend(profile, signals, now, K)
        rec_ms.append(1000 * (time.perf_counter() - t0))
        spec, _ = rng.choice(world.needs)
        t0 = time.perf_counter()
        matcher.match(spec, world.organizations, {}, K)
        match_ms.append(1000 * (time.perf_counter() - t0))

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"Scoring latency in-process (one thread, no gRPC, no MongoDB reads) at {items:,} items, {calls} calls, "
        f"profiles of 10-40 items of {users:,} people: Recommend p50 {pct(rec_ms, 0.5):.1f} ms, p99 "
        f"{pct(rec_ms, 0.99):.1f} ms; MatchNeed p50 {pct(match_ms, 0.5):.1f} ms, p99 {pct(match_ms, 0.99):.1f} ms; "
        f"building the TF-IDF index of {items:,} items took {build:.1f} s. Through gRPC beside the bare "
        "server: bench_recommendation_perf.\n"
    )


async def run() -> str:
    """The markdown section for docs/benchmarks.md."""

    def everything() -> str:
        world = build_world()
        return report(world) + "\n" + scoring_latency(world)

    return await asyncio.to_thread(everything)


if __name__ == "__main__":
    print(asyncio.run(run()))
