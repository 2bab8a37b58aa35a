"""Queries against the aliases of every entity type; OpenSearch failures as domain errors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from ssg.platform.errors import NotFound, Unavailable
from ssg.search.domain.documents import EntityType
from ssg.search.domain.indices import alias_name

log = logging.getLogger(__name__)


class SearchStore:
    """Reads of the search indices of one prefix."""

    def __init__(self, client: AsyncOpenSearch, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def aliases(self, entity_types: Sequence[EntityType] = ()) -> str:
        """The comma-separated aliases of entity_types (all types when empty)."""
        return ",".join(alias_name(self.prefix, t) for t in (entity_types or list(EntityType)))

    async def search(
        self, body: dict[str, Any], entity_types: Sequence[EntityType] = ()
    ) -> dict[str, Any]:
        """Run a _search body over the aliases of entity_types."""
        try:
            response: dict[str, Any] = await self.client.search(
                index=self.aliases(entity_types), body=body
            )
        except (OSConnectionError, TransportError) as exc:
            raise _domain_error(exc) from exc
        return response

    async def get(self, entity_type: EntityType, id: str) -> dict[str, Any]:
        """An indexed, visible document; NotFound otherwise."""
        try:
            doc: dict[str, Any] = await self.client.get(
                index=alias_name(self.prefix, entity_type), id=id
            )
        except NotFoundError:
            raise NotFound(f"{entity_type.value} {id} is not indexed") from None
        except (OSConnectionError, TransportError) as exc:
            raise _domain_error(exc) from exc
        if doc["_source"].get("hidden"):
            raise NotFound(f"{entity_type.value} {id} is not indexed")
        return doc


def _domain_error(exc: Exception) -> Exception:
    """What the caller sees: UNAVAILABLE, never OpenSearch's own error text."""
    # The query is built from checked values only, so any refusal is a bug or an outage;
    # either way it is logged here with OpenSearch's reason and the caller may retry.
    log.error("opensearch request failed", extra={"error": str(exc)[:1000]})
    return Unavailable("search is unavailable; try again")
