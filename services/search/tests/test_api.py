"""The search API through real gRPC on osmem: text, filters, facets, highlights, sorts, pages,
ranking, activity events, bad input; Suggest and SimilarTo."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from aiokafka import AIOKafkaConsumer

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.catalog.v1 import solution_pb2
from ssg.contracts.common.v1 import geography_pb2, paging_pb2, sdg_pb2
from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.registration.v1 import organization_pb2
from ssg.contracts.search.v1 import events_pb2 as search_events
from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.platform.auth.tokens import DevTokenIssuer, Role
from ssg.platform.events.consumer import RetryPolicy
from ssg.platform.events.topics import ensure_topics
from ssg.search.domain.documents import action_for, provider_ids, with_provider
from ssg.search.events.topics import SEARCH_EVENTS_TOPIC
from ssg.search.service import BROADENED, ZERO_RESULTS
from ssg.search.store.writer import BulkWriter
from ssg.testing.status import field_violations

from . import events as ev
from .conftest import Served, search_settings, serving

SOLUTION = pb.ENTITY_TYPE_SOLUTION
sdg = sdg_pb2.Sdg.ValueType
ORG = pb.ENTITY_TYPE_ORGANIZATION
IDS = {
    name: ev.new_id() for name in ("o1", "o2", "s1", "s2", "s3", "s4", "s5", "n1", "k1", "f1", "e1")
}


def seed_events() -> list[envelope_pb2.Envelope]:
    """The module's data, as the services would publish it."""
    i = IDS
    africa, latam = geography_pb2.REGION_AFRICA, geography_pb2.REGION_LATIN_AMERICA_CARIBBEAN
    pending = organization_pb2.ORGANIZATION_STATUS_PENDING
    return [
        ev.org_event(ev.organization(i["o1"]), 2),
        ev.org_event(ev.organization(i["o2"], name="Andes Rural Energy", status=pending), 1),
        ev.solution_event(ev.solution(i["s1"], organization_id=i["o1"]), 3),
        ev.solution_event(
            ev.solution(
                i["s2"],
                title="Bombas solares para riego comunitario",
                organization_id=i["o2"],
                sdgs=(7,),
                regions=[latam],
                language="es",
                implementing_countries=["BOL"],
            ),
            1,
        ),
        ev.solution_event(
            ev.solution(
                i["s3"],
                title="Pompes solaires pour l'irrigation des jardins",
                organization_id=i["o1"],
                sdgs=(6,),
                regions=[africa],
                language="fr",
                implementing_countries=["SEN"],
            ),
            1,
        ),
        ev.solution_event(
            ev.solution(i["s4"], title="Archived solar pumps", organization_id=i["o1"]),
            2,
            cat.SolutionArchived,
        ),
        ev.solution_event(
            ev.solution(
                i["s5"],
                title="Mobile clinics for nomadic herders",
                organization_id=i["o1"],
                sdgs=(3,),
                summary="Clinics on wheels follow herders across the seasons.",
                approach="Nurses travel with pastoralist communities.",
                tags=["health"],
                modality=solution_pb2.COOPERATION_MODALITY_TRIANGULAR,
            ),
            1,
        ),
        ev.catalog_event(
            cat.NeedPosted(need=ev.need(i["n1"], seeker_organization_id=i["o1"])), i["n1"], 1
        ),
        ev.catalog_event(
            cat.KnowledgeProductPublished(knowledge_product=ev.knowledge(i["k1"])), i["k1"], 1
        ),
        ev.catalog_event(cat.FundingPublished(funding_opportunity=ev.funding(i["f1"])), i["f1"], 1),
        ev.expert_event(ev.expert(i["e1"]), 1),
    ]


VISIBLE = {IDS[k] for k in ("o1", "s1", "s2", "s3", "s5", "n1", "k1", "f1", "e1")}


@pytest.fixture(scope="module")
async def served(kafka_server, opensearch_url) -> AsyncIterator[Served]:
    """The API over the module's seeded indices, publishing activity to Kafka."""
    settings = search_settings(kafka_server, opensearch_url)
    await ensure_topics(kafka_server.bootstrap, [SEARCH_EVENTS_TOPIC])
    async with serving(settings) as running:
        writer = BulkWriter(running.app.client, settings.index_prefix, RetryPolicy(), refresh=True)
        actions = [a for a in map(action_for, seed_events()) if a is not None]
        orgs = [a for a in actions if a.entity_type.value == "organization"]
        await writer.write([(a.id, a) for a in orgs])
        providers = await writer.providers(provider_ids(actions))
        result = await writer.write(
            [(a.id, with_provider(a, providers)) for a in actions if a not in orgs]
        )
        assert not result.rejected
        yield running


async def search(served: Served, query: str = "", **fields) -> pb.SearchResponse:
    return await served.stub.Search(pb.SearchRequest(query=query, **fields), timeout=10)


def ids(response) -> list[str]:
    return [h.id for h in response.hits]


async def test_free_text_finds_items_in_three_languages_grouped_by_type(served):
    response = await search(served, "solar irrigation")
    found = ids(response)
    assert {IDS["s1"], IDS["s2"], IDS["s3"]} <= set(found)
    assert IDS["s4"] not in found  # archived
    # Solutions come first: the English one from a verified provider leads.
    assert found[0] == IDS["s1"]
    groups = {g.entity_type: g for g in response.groups}
    assert groups[SOLUTION].total >= 3
    assert [h.id for h in groups[SOLUTION].hits] == [
        h.id for h in response.hits if h.entity_type == SOLUTION
    ]
    assert response.page.total_size == sum(g.total for g in response.groups)
    first = response.hits[0]
    assert first.verified_provider and first.title.startswith("Solar water pumps")
    assert any("<em>" in f for h in first.highlights for f in h.fragments)


async def test_french_and_spanish_stemming_and_misspellings(served):
    assert IDS["s3"] in ids(await search(served, "pompe solaire"))
    assert IDS["k1"] in ids(await search(served, "guia bomba"))  # accents folded, plural stemmed
    assert IDS["s1"] in ids(await search(served, "irigation pumps"))  # a typo
    assert IDS["f1"] in ids(await search(served, "eau potable"))


async def test_most_words_must_match_else_any_word_does(served):
    # Two of three words: the mobile clinics; the solar pumps have one word only.
    before = BROADENED._value.get()
    strict = set(ids(await search(served, "mobile clinics solar")))
    assert IDS["s5"] in strict
    assert not strict & {IDS["s1"], IDS["s2"], IDS["s3"]}
    assert BROADENED._value.get() == before
    # No item has both words: the query runs again with either, and its pages stay broad.
    everything = await search(served, "solar clinics", page=paging_pb2.PageRequest(page_size=100))
    assert {IDS["s1"], IDS["s2"], IDS["s3"], IDS["s5"]} <= set(ids(everything))
    assert BROADENED._value.get() == before + 1
    seen: list[str] = []
    token = ""
    while True:
        page = await search(
            served, "solar clinics", page=paging_pb2.PageRequest(page_size=2, page_token=token)
        )
        seen.extend(ids(page))
        assert page.page.total_size == everything.page.total_size
        token = page.page.next_page_token
        if not token:
            break
    assert seen == ids(everything)
    assert BROADENED._value.get() == before + 2  # the first page of each walk, not the others


async def test_query_syntax_in_user_text_is_just_text(served):
    for text in ['solar) AND (" OR *:* {', "title:solar^10", "/[a-z/", "\\", "solar~2 -pumps"]:
        response = await search(served, text)
        assert response.page.total_size >= 0


async def test_filters_and_facet_counts_of_the_other_values(served):
    response = await search(
        served,
        "",
        filters=pb.SearchFilters(sdgs=[sdg(6)], regions=[geography_pb2.REGION_AFRICA]),
    )
    found = set(ids(response))
    assert {IDS["s1"], IDS["s3"], IDS["o1"]} <= found
    assert IDS["s2"] not in found and IDS["s5"] not in found
    facets = {f.field: {v.value: v.count for v in f.values} for f in response.facets}
    # The region facet ignores the region filter (SDG 6 applies): Bolivia's solution is SDG 7.
    assert facets["region"]["AFRICA"] >= 3
    # The SDG facet ignores the SDG filter: SDG 3 (mobile clinics, in Africa) is offered.
    assert facets["sdg"]["3"] == 1
    assert facets["entity_type"]["solution"] == 2
    assert "true" in facets["verified"]


async def test_other_filters(served):
    def search_with(**f):
        return search(served, "", filters=pb.SearchFilters(**f))

    assert set(ids(await search_with(languages=["es"]))) == {IDS["s2"], IDS["k1"]}
    assert ids(await search_with(modalities=[pb.MODALITY_TRIANGULAR])) == [IDS["s5"]]
    assert set(ids(await search_with(countries=["BOL"]))) == {IDS["s2"]}
    assert set(ids(await search_with(year_from=2023, year_to=2023))) == {IDS["k1"]}
    verified = set(ids(await search_with(verified_only=True, entity_types=[SOLUTION])))
    assert verified == {IDS["s1"], IDS["s3"], IDS["s5"]}
    assert set(ids(await search_with(entity_types=[pb.ENTITY_TYPE_EXPERT]))) == {IDS["e1"]}


@pytest.mark.parametrize(
    "sort", [pb.SORT_ORDER_RELEVANCE, pb.SORT_ORDER_NEWEST, pb.SORT_ORDER_RECENTLY_REVIEWED]
)
async def test_pages_walk_every_result_once(served, sort):
    seen: list[str] = []
    token = ""
    for _ in range(10):
        response = await search(
            served,
            "solar pumps",
            sort=sort,
            page=paging_pb2.PageRequest(page_size=2, page_token=token),
        )
        seen.extend(ids(response))
        token = response.page.next_page_token
        if not token:
            break
    everything = await search(
        served, "solar pumps", sort=sort, page=paging_pb2.PageRequest(page_size=100)
    )
    assert len(seen) == len(set(seen))
    assert set(seen) == set(ids(everything))
    assert len(seen) >= 3


async def test_bad_input_is_invalid_argument_with_the_field(served):
    cases = [
        (pb.SearchRequest(query="x" * 10_240), "query"),
        (pb.SearchRequest(page=paging_pb2.PageRequest(page_size=10_000)), "page.page_size"),
        (
            pb.SearchRequest(page=paging_pb2.PageRequest(page_token="forged.token")),
            "page.page_token",
        ),
        (
            pb.SearchRequest(filters=pb.SearchFilters(year_from=2020, year_to=2010)),
            "filters.year_to",
        ),
        (pb.SearchRequest(filters=pb.SearchFilters(countries=["kenya"])), "filters.countries[0]"),
        (pb.SearchRequest(filters=pb.SearchFilters(sdgs=[sdg(99)])), "filters.sdgs[0]"),
        (
            pb.SearchRequest(filters=pb.SearchFilters(sdg_targets=["6.4); drop"])),
            "filters.sdg_targets[0]",
        ),
        (pb.SearchRequest(filters=pb.SearchFilters(languages=["xx"])), "filters.languages[0]"),
        (pb.SearchRequest(query="a\x00b"), "query"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Search(request, timeout=10)
        assert field in field_violations(caught.value), field
    # A token from another query does not fit this one.
    first = await search(served, "solar", page=paging_pb2.PageRequest(page_size=1))
    assert first.page.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await search(
            served,
            "water",
            page=paging_pb2.PageRequest(page_size=1, page_token=first.page.next_page_token),
        )
    assert field_violations(caught.value) == {"page.page_token"}


async def test_zero_results_are_counted_by_sdg_and_region(served):
    counter = ZERO_RESULTS.labels("14", "ARAB_STATES")
    before = counter._value.get()
    response = await search(
        served,
        "coral reef restoration",
        filters=pb.SearchFilters(sdgs=[sdg(14)], regions=[geography_pb2.REGION_ARAB_STATES]),
    )
    assert response.page.total_size == 0 and not response.hits
    assert counter._value.get() == before + 1


async def test_each_query_is_published_with_an_anonymised_user(served, kafka_server):
    consumer = AIOKafkaConsumer(
        SEARCH_EVENTS_TOPIC, bootstrap_servers=kafka_server.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        token = DevTokenIssuer().issue(
            "alice", (Role.MEMBER,), organization_id="org1", instance="global"
        )
        marker = f"activity {ev.new_id()[:8]}"
        await served.stub.Search(
            pb.SearchRequest(query=marker, filters=pb.SearchFilters(sdgs=[sdg(6)])),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )
        found = None
        async with asyncio.timeout(20):
            while found is None:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        env = envelope_pb2.Envelope.FromString(record.value)
                        event = search_events.SearchPerformed()
                        env.payload.Unpack(event)
                        if event.query == marker:
                            found = (env, event)
    finally:
        await consumer.stop()
    env, event = found
    assert env.event_type == "search.SearchPerformed"
    assert list(event.filters.sdgs) == [6]
    assert event.first_page and event.result_count == 0
    assert event.user_hash and "alice" not in event.user_hash and len(event.user_hash) == 32


async def test_suggest_completes_titles_and_organization_names(served):
    response = await served.stub.Suggest(pb.SuggestRequest(prefix="Lakes"), timeout=10)
    assert [(s.text, s.id) for s in response.suggestions][:1] == [
        ("Lakeside Water Alliance", IDS["o1"])
    ]
    typo = await served.stub.Suggest(pb.SuggestRequest(prefix="Lakse"), timeout=10)
    assert IDS["o1"] in [s.id for s in typo.suggestions]
    solar = await served.stub.Suggest(
        pb.SuggestRequest(prefix="sol", entity_types=[SOLUTION]), timeout=10
    )
    assert [s.id for s in solar.suggestions] == [IDS["s1"]]  # the archived one is not offered
    for request, field in [
        (pb.SuggestRequest(prefix=""), "prefix"),
        (pb.SuggestRequest(prefix="x" * 101), "prefix"),
        (pb.SuggestRequest(prefix="a", limit=21), "limit"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.Suggest(request, timeout=10)
        assert field in field_violations(caught.value)


async def test_similar_to_shares_words_and_sdgs(served):
    response = await served.stub.SimilarTo(
        pb.SimilarToRequest(entity_type=SOLUTION, id=IDS["s1"]), timeout=10
    )
    found = [h.id for h in response.hits]
    assert IDS["s1"] not in found and IDS["s4"] not in found
    assert {IDS["s2"], IDS["s3"]} <= set(found)
    assert IDS["s5"] not in found  # no shared words, no shared SDG
    only = await served.stub.SimilarTo(
        pb.SimilarToRequest(entity_type=SOLUTION, id=IDS["s1"], result_types=[ORG]), timeout=10
    )
    assert [h.id for h in only.hits] == [IDS["o1"]]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.SimilarTo(
            pb.SimilarToRequest(entity_type=SOLUTION, id=IDS["s4"]), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.SimilarTo(pb.SimilarToRequest(id=IDS["s1"]), timeout=10)
    assert field_violations(caught.value) == {"entity_type[0]"}
