"""What a MongoDB server plans for a query, for tests that a store's queries are index-backed."""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

Doc = dict[str, Any]


def scanned_index(collection: Collection[Doc], filter: Doc, sort: list[tuple[str, int]]) -> str:
    """The index the server's winning plan scans for filter and sort ('' for a collection scan)."""
    plan: Doc | None = (
        collection.find(filter).sort(sort).limit(1).explain()["queryPlanner"]["winningPlan"]
    )
    while plan is not None:
        if plan.get("stage") == "IXSCAN":
            return str(plan["indexName"])
        if plan.get("stage") == "COLLSCAN":
            return ""
        plan = plan.get("inputStage")
    return ""


def unindexed(
    collection: Collection[Doc], filters: list[Doc], sort: list[tuple[str, int]]
) -> list[Doc]:
    """The filters the server would answer with a collection scan (or with an $or / $and
    wrapper, which simpler planners scan)."""
    return [
        f
        for f in filters
        if any(k.startswith("$") for k in f) or not scanned_index(collection, f, sort)
    ]
