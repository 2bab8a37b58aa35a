"""Reindex on Tansu and osmem: a new index version is built from the topics and the aliases
swapped, while searches through the API keep returning the same results throughout."""

from __future__ import annotations

import asyncio

import pytest

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.search.domain.documents import EntityType
from ssg.search.domain.indices import alias_name, index_name
from ssg.search.events.topics import ORGANIZATION_TOPIC, SOLUTION_TOPIC
from ssg.search.reindex import reindex
from ssg.search.store.indices import alias_targets
from ssg.testing.waiting import eventually

from . import events as ev
from .conftest import produce, serving
from .test_indexer import get, running_indexer


@pytest.mark.timeout(240)
async def test_reindex_swaps_aliases_while_searches_keep_answering(settings, opensearch, tmp_path):
    marker = f"zr{ev.new_id()[:6]}"
    org_id = ev.new_id()
    live = [ev.new_id() for _ in range(3)]
    archived = ev.new_id()
    messages = [(ORGANIZATION_TOPIC, ev.org_event(ev.organization(org_id), 1), None)]
    messages += [
        (
            SOLUTION_TOPIC,
            ev.solution_event(
                ev.solution(i, title=f"Cookstove {marker}", organization_id=org_id), 2
            ),
            None,
        )
        for i in live
    ]
    messages.append(
        (
            SOLUTION_TOPIC,
            ev.solution_event(
                ev.solution(archived, title=f"Cookstove {marker}"), 3, cat.SolutionArchived
            ),
            None,
        )
    )
    await produce(settings, messages)
    async with serving(settings) as served, running_indexer(settings, opensearch, tmp_path):

        async def found():
            reply = await served.stub.Search(pb.SearchRequest(query=marker), timeout=5)
            return sorted(h.id for h in reply.hits) == sorted(live)

        await eventually(found, "the solutions indexed", within=60)

        answers: list[list[str]] = []
        errors: list[Exception] = []
        done = asyncio.Event()

        async def keep_searching():
            while not done.is_set():
                try:
                    reply = await served.stub.Search(pb.SearchRequest(query=marker), timeout=5)
                    answers.append(sorted(h.id for h in reply.hits))
                except Exception as exc:  # any failure during the reindex is a finding
                    errors.append(exc)
                await asyncio.sleep(0.01)

        searching = asyncio.create_task(keep_searching())
        seen: list[tuple[int, int]] = []
        try:
            report = await reindex(settings, opensearch, progress=lambda d, t: seen.append((d, t)))
        finally:
            done.set()
            await searching
        prefix = settings.index_prefix
        assert report.version == 2
        for entity_type in EntityType:
            assert await alias_targets(opensearch, alias_name(prefix, entity_type)) == [
                index_name(prefix, entity_type, 2)
            ]
        assert sorted(report.deleted) == sorted(index_name(prefix, t, 1) for t in EntityType)
        assert report.replayed >= len(messages) and report.rejected == 0
        # The progress went from 0 to the whole replay.
        assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] >= len(messages)
        # Searches answered throughout, always with the same results.
        assert not errors
        assert len(answers) >= 3
        assert all(a == sorted(live) for a in answers)
        # The new version holds the same versions, tombstone included.
        for i in live:
            doc = await get(opensearch, prefix, EntityType.SOLUTION, i)
            assert (
                doc["_index"] == index_name(prefix, EntityType.SOLUTION, 2) and doc["_version"] == 2
            )
            assert doc["_source"]["verified_provider"] is True
        gone = await get(opensearch, prefix, EntityType.SOLUTION, archived)
        assert gone["_version"] == 3 and gone["_source"]["hidden"] is True

        # The live indexer now writes into the new version through the alias.
        late = ev.new_id()
        await produce(
            settings,
            [
                (
                    SOLUTION_TOPIC,
                    ev.solution_event(ev.solution(late, title=f"Cookstove {marker}"), 1),
                    None,
                )
            ],
        )

        async def late_found():
            doc = await get(opensearch, prefix, EntityType.SOLUTION, late)
            return doc is not None and doc["_index"] == index_name(prefix, EntityType.SOLUTION, 2)

        await eventually(late_found, "an event after the swap indexed into version 2", within=30)
