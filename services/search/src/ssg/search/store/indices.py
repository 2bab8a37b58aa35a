"""Create the versioned indices and their aliases, and swap an alias to a new version."""

from __future__ import annotations

import logging

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import RequestError

from ssg.search.domain.documents import EntityType
from ssg.search.domain.indices import MAPPING_VERSION, alias_name, index_name, mapping

log = logging.getLogger(__name__)


async def create_index(client: AsyncOpenSearch, index: str) -> bool:
    """Create index with the current mapping; False when it already exists."""
    try:
        await client.indices.create(index=index, body=mapping())
    except RequestError as exc:
        if "already_exists" in str(exc.error):
            return False
        raise
    return True


async def ensure_indices(
    client: AsyncOpenSearch, prefix: str, version: int = MAPPING_VERSION
) -> list[str]:
    """Make every entity type's alias point at an index (version's, created when the alias is
    missing); an alias that exists is left alone. The indices created are returned."""
    created: list[str] = []
    for entity_type in EntityType:
        alias = alias_name(prefix, entity_type)
        if await client.indices.exists_alias(name=alias):
            continue
        index = index_name(prefix, entity_type, version)
        if await create_index(client, index):
            created.append(index)
        await client.indices.put_alias(index=index, name=alias)
    if created:
        log.info("created search indices", extra={"indices": created})
    return created


async def alias_targets(client: AsyncOpenSearch, alias: str) -> list[str]:
    """The indices alias points at (empty when it does not exist)."""
    if not await client.indices.exists_alias(name=alias):
        return []
    found = await client.indices.get_alias(name=alias)
    return sorted(found)


async def swap_alias(client: AsyncOpenSearch, alias: str, new_index: str) -> list[str]:
    """Point alias at new_index alone, in one atomic request; the indices it left are returned."""
    old = [i for i in await alias_targets(client, alias) if i != new_index]
    actions = [{"remove": {"index": i, "alias": alias}} for i in old]
    actions.append({"add": {"index": new_index, "alias": alias}})
    await client.indices.update_aliases(body={"actions": actions})
    return old
