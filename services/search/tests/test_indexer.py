"""The indexer against real Tansu and osmem: events become documents, a stale event changes
nothing, poison goes to the dead-letter topic, and the writer's own rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import NotFoundError

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.events.consumer import RetryPolicy
from ssg.platform.events.faust_app import ensure_faust_topics
from ssg.search.domain.documents import EntityType, Hide, Upsert, action_for
from ssg.search.domain.indices import alias_name
from ssg.search.events.indexer import create_indexer_app
from ssg.search.events.topics import NEED_TOPIC, ORGANIZATION_TOPIC, SOLUTION_TOPIC, SOURCE_TOPICS
from ssg.search.settings import SearchSettings
from ssg.search.store.writer import BULK_RETRIES, BulkWriter, write_batch
from ssg.testing.kafka import dead_letters
from ssg.testing.waiting import eventually

from . import events as ev
from .conftest import produce

RETRY = RetryPolicy(attempts=3, base_seconds=0.01, jitter=0)


async def get(client: AsyncOpenSearch, prefix: str, entity_type: EntityType, id: str):
    """The stored document (with _version), or None."""
    try:
        return await client.get(index=alias_name(prefix, entity_type), id=id)
    except NotFoundError:
        return None


@asynccontextmanager
async def running_indexer(
    settings: SearchSettings, client: AsyncOpenSearch, tmp_path
) -> AsyncIterator[None]:
    """The indexer's faust app started in this process until the block ends."""
    writer = BulkWriter(client, settings.index_prefix, RETRY)
    app, _ = create_indexer_app(settings, writer, datadir=str(tmp_path / "faust"))
    await ensure_faust_topics(app, list(SOURCE_TOPICS))
    await app.start()
    try:
        yield
    finally:
        # Stopped here, well before the session's broker goes away.
        async with asyncio.timeout(30):
            await app.stop()


async def test_events_become_documents_and_stale_events_change_nothing(
    settings, opensearch, indices, tmp_path
):
    org_id, sol_id, need_id, marker_id = (ev.new_id() for _ in range(4))
    org = ev.organization(org_id)
    newer = ev.solution(sol_id, title="Solar pumps, second edition", organization_id=org_id)
    older = ev.solution(sol_id, title="Solar pumps, first edition", organization_id=org_id)
    n = ev.need(need_id)
    await produce(
        settings,
        [
            (ORGANIZATION_TOPIC, ev.org_event(org, 2), None),
            (SOLUTION_TOPIC, ev.solution_event(newer, 3, cat.SolutionUpdated), None),
            (NEED_TOPIC, ev.catalog_event(cat.NeedPosted(need=n), need_id, 1), None),
            (NEED_TOPIC, ev.catalog_event(cat.NeedClosed(need=n), need_id, 2), None),
        ],
    )
    async with running_indexer(settings, opensearch, tmp_path):

        async def solution_indexed():
            doc = await get(opensearch, indices, EntityType.SOLUTION, sol_id)
            return doc is not None and doc["_version"] == 3

        await eventually(solution_indexed, "the solution document", within=60)
        doc = await get(opensearch, indices, EntityType.SOLUTION, sol_id)
        assert doc["_source"]["title"] == "Solar pumps, second edition"
        # Its provider is a verified organization (indexed in the same run).
        org_doc = await get(opensearch, indices, EntityType.ORGANIZATION, org_id)
        assert org_doc["_source"]["title"] == "Lakeside Water Alliance"
        await eventually(
            lambda: _hidden(opensearch, indices, EntityType.NEED, need_id, 2), "the closed need"
        )

        # A late, older event (then a marker on the same partition, keyed alike).
        marker = ev.solution(marker_id, title="Marker", organization_id=org_id)
        await produce(
            settings,
            [
                (SOLUTION_TOPIC, ev.solution_event(older, 2), sol_id.encode()),
                (SOLUTION_TOPIC, ev.solution_event(marker, 1), sol_id.encode()),
            ],
        )

        async def marker_indexed():
            return await get(opensearch, indices, EntityType.SOLUTION, marker_id) is not None

        await eventually(marker_indexed, "the marker behind the stale event", within=30)
        after = await get(opensearch, indices, EntityType.SOLUTION, sol_id)
        assert after["_version"] == 3
        assert after["_source"]["title"] == "Solar pumps, second edition"
    doc = await get(opensearch, indices, EntityType.SOLUTION, sol_id)
    assert doc["_source"]["verified_provider"] is True
    assert doc["_source"]["organization_types"] == ["NGO"]


async def _hidden(client, prefix, entity_type, id, version) -> bool:
    doc = await get(client, prefix, entity_type, id)
    return doc is not None and doc["_version"] == version and doc["_source"]["hidden"] is True


async def test_poison_goes_to_the_dead_letter_topic_and_the_indexer_carries_on(
    settings, opensearch, indices, tmp_path, kafka_server
):
    good_id = ev.new_id()
    wrong = ev.envelope("catalog", "bad-1", 1, EchoRequest(message="not a solution"))
    wrong.event_type = "catalog.SolutionPublished"
    good = ev.solution(good_id, title="After the poison")
    # Everything keyed alike, so it lands on one partition in this order.
    key = good_id.encode()
    await produce(
        settings,
        [
            (SOLUTION_TOPIC, b"\xff not an envelope", key),
            (SOLUTION_TOPIC, wrong, key),
            (SOLUTION_TOPIC, ev.solution_event(good, 1), key),
        ],
    )
    async with running_indexer(settings, opensearch, tmp_path):

        async def good_indexed():
            return await get(opensearch, indices, EntityType.SOLUTION, good_id) is not None

        await eventually(good_indexed, "the event after the poison", within=60)
    mine = await dead_letters(kafka_server.bootstrap, SOLUTION_TOPIC, key, 2, within=20)
    reasons = sorted(dict(r.headers)["dlq-reason"].decode() for r in mine)
    assert len(mine) == 2
    assert reasons[0].startswith("not an Envelope")
    assert "expected ssg.catalog.v1.SolutionPublished" in reasons[1]
    assert all(
        dict(r.headers)["dlq-consumer-group"] == settings.indexer_app_id.encode() for r in mine
    )


async def test_writer_rejects_what_the_mapping_refuses_and_ignores_stale_versions(
    settings, opensearch, indices
):
    writer = BulkWriter(opensearch, indices, RETRY, refresh=True)
    good = Upsert(
        EntityType.SOLUTION,
        "w1",
        5,
        {"entity_type": "solution", "id": "w1", "title": "A", "hidden": False},
    )
    bad = Upsert(
        EntityType.SOLUTION, "w2", 1, {"entity_type": "solution", "id": "w2", "colour": "red"}
    )
    result = await writer.write([("good", good), ("bad", bad)])
    assert (result.written, result.stale) == (1, 0)
    [rejected] = result.rejected
    assert rejected.key == "bad"
    assert "colour" in rejected.reason and rejected.reason.startswith("HTTP 400")

    older = Hide(EntityType.SOLUTION, "w1", 4)
    same = Upsert(EntityType.SOLUTION, "w1", 5, {**good.document, "title": "B"})
    result = await writer.write([("older", older), ("same", same)])
    assert (result.written, result.stale, result.rejected) == (0, 2, [])
    doc = await get(opensearch, indices, EntityType.SOLUTION, "w1")
    assert (doc["_version"], doc["_source"]["title"]) == (5, "A")

    newer = Hide(EntityType.SOLUTION, "w1", 6)
    assert (await writer.write([("newer", newer)])).written == 1
    assert await _hidden(opensearch, indices, EntityType.SOLUTION, "w1", 6)


async def test_writer_waits_out_an_unreachable_opensearch_until_stopped():
    client = AsyncOpenSearch("http://127.0.0.1:9")  # nothing listens on the discard port
    stop = asyncio.Event()
    writer = BulkWriter(client, "nowhere", RETRY, stop=stop)
    retries = BULK_RETRIES.labels("request")
    before = retries._value.get()
    task = asyncio.create_task(writer.write([("k", Hide(EntityType.NEED, "n", 1))]))
    try:
        await eventually(lambda: retries._value.get() >= before + 3, "three retries")
        # Still retrying: an outage is not a reason to drop or dead-letter events.
        assert not task.done()
        stop.set()
        try:
            await asyncio.wait_for(task, 5)
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the write should have been abandoned")
    finally:
        await client.close()


async def test_a_change_of_verification_reflags_the_providers_content(
    settings, opensearch, indices
):
    writer = BulkWriter(opensearch, indices, RETRY, refresh=True)
    org_id, sol_id = ev.new_id(), ev.new_id()

    async def apply(*envelopes):
        actions = [action_for(e) for e in envelopes]
        return await write_batch(writer, [(n, a) for n, a in enumerate(actions) if a is not None])

    async def flag():
        doc = await get(opensearch, indices, EntityType.SOLUTION, sol_id)
        return doc["_version"], doc["_source"]["verified_provider"]

    verified = ev.organization(org_id)
    suspended = ev.organization(org_id, status=organization_pb2.ORGANIZATION_STATUS_SUSPENDED)
    await apply(
        ev.org_event(verified, 1), ev.solution_event(ev.solution(sol_id, organization_id=org_id), 4)
    )
    assert await flag() == (4, True)
    await apply(ev.org_event(suspended, 2, reg.OrganizationSuspended))
    # The solution keeps its version; only the flag follows its provider.
    assert await flag() == (4, False)
    # A replayed old "verified" event is stale: it changes no flag.
    result = await apply(ev.org_event(verified, 1))
    assert result.stale == 1
    assert await flag() == (4, False)
    await apply(ev.org_event(verified, 3))
    assert await flag() == (4, True)
