"""Ranking through the API on osmem: weights from settings change the order of equal texts."""

from __future__ import annotations

from datetime import UTC, datetime

from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.platform.events.consumer import RetryPolicy
from ssg.search.domain.documents import EntityType, Upsert
from ssg.search.store.writer import BulkWriter

from .conftest import search_settings, serving

Sdg = sdg_pb2.Sdg.ValueType


def doc(id: str, verified: bool, published: datetime, sdgs: list[str]) -> Upsert:
    return Upsert(
        EntityType.SOLUTION,
        id,
        1,
        {
            "entity_type": "solution",
            "id": id,
            "hidden": False,
            "title": "Rainwater harvesting tanks",
            "body": "Tanks collect rainwater for schools.",
            "sdgs": sdgs,
            "verified_provider": verified,
            "published_at": published.isoformat(),
        },
    )


async def order(
    kafka_server, opensearch_url, query: pb.SearchRequest, old=None, **weights
) -> list[str]:
    """Ids in the order the API ranks a new document and an old one (by default: the new
    one unverified with SDG 6, the old one verified with SDG 4)."""
    settings = search_settings(kafka_server, opensearch_url, search_events_enabled=False, **weights)
    now = datetime.now(UTC)
    years_ago = now.replace(year=now.year - 4)
    old = old or {"verified": True, "sdgs": ["4"]}
    async with serving(settings) as served:
        writer = BulkWriter(served.app.client, settings.index_prefix, RetryPolicy(), refresh=True)
        await writer.write(
            [
                (1, doc("new", False, now, ["6"])),
                (2, doc("old", old["verified"], years_ago, old["sdgs"])),
            ]
        )
        response = await served.stub.Search(query, timeout=10)
    return [h.id for h in response.hits]


async def test_verified_boost_and_freshness_weigh_as_configured(kafka_server, opensearch_url):
    q = pb.SearchRequest(query="rainwater tanks")
    boosted = await order(
        kafka_server, opensearch_url, q, rank_verified_boost=3.0, rank_freshness_weight=0.2
    )
    assert boosted == ["old", "new"]
    fresh = await order(
        kafka_server, opensearch_url, q, rank_verified_boost=1.0, rank_freshness_weight=0.9
    )
    assert fresh == ["new", "old"]


async def test_each_shared_sdg_of_the_filter_is_boosted(kafka_server, opensearch_url):
    # Both documents have SDG 6 or 4 (the filter); the older one has both.
    q = pb.SearchRequest(query="rainwater tanks", filters=pb.SearchFilters(sdgs=[Sdg(6), Sdg(4)]))
    both = {"verified": False, "sdgs": ["6", "4"]}
    weights = {"rank_verified_boost": 1.0, "rank_freshness_weight": 0.3}
    boosted = await order(
        kafka_server, opensearch_url, q, rank_sdg_match_boost=2.0, old=both, **weights
    )
    assert boosted == ["old", "new"]
    plain = await order(
        kafka_server, opensearch_url, q, rank_sdg_match_boost=1.0, old=both, **weights
    )
    assert plain == ["new", "old"]
