"""The search use cases: Search, Suggest and SimilarTo over the indices, with activity events
and the zero-result metric."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from ssg.search.domain import similar, suggest
from ssg.search.domain.documents import EntityType
from ssg.search.domain.queries import Ranking, SearchQuery, broadened, search_body
from ssg.search.domain.results import Hit, Results, hit, results
from ssg.search.events.activity import ActivityPublisher, performed, user_hash
from ssg.search.store.search import SearchStore

ZERO_RESULTS = Counter(
    "ssg_search_zero_results_total",
    "First-page searches that found nothing (unmet demand), by the SDG and region filtered on"
    " ('any' when not filtered; one count per pair).",
    ["sdg", "region"],
)
BROADENED = Counter(
    "ssg_search_broadened_total",
    "First-page searches whose words found nothing together, run again with any word matching.",
)
SEARCHES = Counter(
    "ssg_search_queries_total", "Searches answered, by sort order and page.", ["sort", "page"]
)


class SearchService:
    """Runs searches over one index prefix."""

    def __init__(
        self,
        store: SearchStore,
        ranking: Ranking,
        activity: ActivityPublisher | None,
        user_key: bytes,
    ) -> None:
        self.store = store
        self.ranking = ranking
        self.activity = activity
        self.user_key = user_key

    async def search(self, q: SearchQuery, subject: str = "") -> Results:
        """One page of results of q; the query is published as activity (subject hashed)."""
        response = await self.store.search(search_body(q, self.ranking))
        page = results(response, q)
        broad = broadened(q, page.total)
        if broad is not None:
            BROADENED.inc()
            q = broad
            page = results(await self.store.search(search_body(q, self.ranking)), q)
        first = q.cursor is None
        SEARCHES.labels(q.sort.value, "first" if first else "next").inc()
        if first and page.total == 0:
            for sdg in q.filters.sdgs or ("any",):
                for region in q.filters.regions or ("any",):
                    ZERO_RESULTS.labels(sdg, region).inc()
        if self.activity is not None:
            self.activity.publish(performed(q, page.total, user_hash(self.user_key, subject)))
        return page

    async def suggest(
        self, prefix: str, entity_types: Sequence[EntityType], limit: int
    ) -> list[suggest.Suggestion]:
        """Completions of prefix from titles and organization names."""
        response = await self.store.search(suggest.suggest_body(prefix, limit), entity_types)
        return suggest.suggestions(response, limit)

    async def similar_to(
        self,
        entity_type: EntityType,
        id: str,
        result_types: Sequence[EntityType],
        limit: int,
    ) -> list[Hit]:
        """Items like entity_type/id (NotFound when it is not indexed)."""
        doc = await self.store.get(entity_type, id)
        body = similar.similar_body(doc["_index"], id, doc["_source"], limit, self.ranking)
        response = await self.store.search(body, result_types)
        return [hit(h) for h in response["hits"]["hits"]][:limit]
