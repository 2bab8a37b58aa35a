"""Pure rules of match alerts, SDG-target filters and message languages (no servers)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ssg.contracts.recommendation.v1 import events_pb2 as rec_events
from ssg.contracts.recommendation.v1 import match_pb2, reason_pb2
from ssg.notifications.domain.digest import period_label
from ssg.notifications.domain.fanout import SourceEvent, fan_out_audiences
from ssg.notifications.domain.index import SubscriptionIndex
from ssg.notifications.domain.languages import TABLES, message_language, phrase, translate
from ssg.notifications.domain.matching import item_keys, matches, subscription_keys
from ssg.notifications.domain.messages import SECTION_TITLES, Envelope, render_alert, render_digest
from ssg.notifications.domain.model import (
    Channel,
    Filters,
    Frequency,
    Item,
    Subscription,
    SubscriptionInput,
    SubscriptionStatus,
    Topic,
)
from ssg.notifications.domain.validation import RawSubscription, validate_subscription
from ssg.notifications.events.items import SOURCES
from ssg.platform.errors import ValidationError
from ssg.platform.events.consumer import NonRetryableError

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
BASE = "https://ssg.example.org"
SEEKER = "org-seeker"
PROVIDER = "org-provider"


def sub(
    id: str,
    *,
    topics: tuple[Topic, ...] = (Topic.SOLUTIONS,),
    org: str = "",
    sdgs: tuple[int, ...] = (),
    targets: tuple[str, ...] = (),
    language: str = "en",
    frequency: Frequency = Frequency.INSTANT,
    channel: Channel = Channel.EMAIL,
) -> Subscription:
    spec = SubscriptionInput(
        channel,
        "a@example.org" if channel is Channel.EMAIL else "https://hooks.example.org/x",
        Filters(frozenset(topics), sdgs=frozenset(sdgs), sdg_targets=frozenset(targets)),
        frequency,
        language,
        org,
    )
    return Subscription(id, "alice", spec, SubscriptionStatus.ACTIVE, 1, NOW, NOW)


def solution(**kw: Any) -> Item:
    base: dict[str, Any] = dict(
        topic=Topic.SOLUTIONS,
        kind="solution",
        id="sol1",
        title="Solar pumps",
        summary="Irrigation",
        sdgs=frozenset({6}),
        sdg_targets=frozenset({"6.4"}),
        headline="New solution published",
        url=f"{BASE}/solutions/sol1",
    )
    base.update(kw)
    return Item(**base)


def match(status: int = match_pb2.MATCH_STATUS_PROPOSED, **kw: Any) -> match_pb2.Match:
    fields: dict[str, Any] = dict(
        id="m1",
        need_id="need1",
        solution_id="sol1",
        seeker_organization_id=SEEKER,
        provider_organization_id=PROVIDER,
        status=status,
        score=0.8123,
        reasons=[
            reason_pb2.Reason(code="sdg_focus", text="both work on SDG 6", weight=0.5),
            reason_pb2.Reason(code="same_region", text="same region", weight=0.3),
        ],
    )
    fields.update(kw)
    return match_pb2.Match(**fields)


def proposed(m: match_pb2.Match) -> list[Item]:
    return SOURCES["recommendation.MatchProposed"].items(rec_events.MatchProposed(match=m), BASE)


def changed(m: match_pb2.Match) -> list[Item]:
    source = SOURCES["recommendation.MatchStatusChanged"]
    return source.items(rec_events.MatchStatusChanged(match=m), BASE)


# -- match alerts ------------------------------------------------------------------------------


def test_a_proposal_is_news_for_the_seeker_and_the_provider():
    seeker, provider = proposed(match())
    assert (seeker.topic, seeker.organization_id) == (Topic.MATCHES_FOR_MY_NEEDS, SEEKER)
    assert (provider.topic, provider.organization_id) == (Topic.NEEDS_FOR_MY_SOLUTIONS, PROVIDER)
    assert seeker.headline != provider.headline
    assert dict(seeker.details) == {"need": "need1", "solution": "sol1", "score": "0.81"}
    # Strongest reasons first.
    assert seeker.summary == "both work on SDG 6; same region"
    assert seeker.url == f"{BASE}/matches/m1" and seeker.title == "need1 ↔ sol1"


@pytest.mark.parametrize(
    "missing",
    ["id", "need_id", "solution_id", "seeker_organization_id", "provider_organization_id"],
)
def test_a_match_missing_a_party_or_an_id_is_poison(missing):
    m = match()
    m.ClearField(missing)
    with pytest.raises(NonRetryableError, match=missing):
        proposed(m)


def step(org: str, note: str = "") -> match_pb2.MatchStep:
    return match_pb2.MatchStep(actor="u1", organization_id=org, note=note)


@pytest.mark.parametrize(
    ("status", "history", "told"),
    [
        (match_pb2.MATCH_STATUS_SEEKER_ACCEPTED, [step(SEEKER)], [PROVIDER]),
        (match_pb2.MATCH_STATUS_PROVIDER_ACCEPTED, [step(PROVIDER)], [SEEKER]),
        (match_pb2.MATCH_STATUS_ACCEPTED, [step(SEEKER), step(PROVIDER)], [SEEKER]),
        (match_pb2.MATCH_STATUS_ACCEPTED, [], [SEEKER, PROVIDER]),
        (match_pb2.MATCH_STATUS_DECLINED, [step(SEEKER, "out of budget")], [PROVIDER]),
        (match_pb2.MATCH_STATUS_AGREED, [step(SEEKER)], []),
        (match_pb2.MATCH_STATUS_IMPLEMENTED, [step(PROVIDER)], []),
    ],
)
def test_an_answer_is_news_for_the_other_side(status, history, told):
    items = changed(match(status, history=history))
    assert [i.organization_id for i in items] == told
    for i in items:
        side = (
            Topic.MATCHES_FOR_MY_NEEDS
            if i.organization_id == SEEKER
            else Topic.NEEDS_FOR_MY_SOLUTIONS
        )
        assert i.topic is side
    if status == match_pb2.MATCH_STATUS_DECLINED:
        assert dict(items[0].details)["reason"] == "out of budget"


def test_organization_topics_reach_only_that_side_of_that_organization():
    seeker_item, provider_item = proposed(match())
    seeker_sub = sub("s", topics=(Topic.MATCHES_FOR_MY_NEEDS,), org=SEEKER)
    provider_sub = sub("p", topics=(Topic.NEEDS_FOR_MY_SOLUTIONS,), org=PROVIDER)
    wrong_side = sub("w", topics=(Topic.NEEDS_FOR_MY_SOLUTIONS,), org=SEEKER)
    other_org = sub("o", topics=(Topic.MATCHES_FOR_MY_NEEDS,), org="org-else")
    content = sub("c", topics=(Topic.NEEDS, Topic.SOLUTIONS))
    # Content filters do not narrow organization topics.
    filtered = sub("f", topics=(Topic.MATCHES_FOR_MY_NEEDS,), org=SEEKER, sdgs=(3,))
    index = SubscriptionIndex()
    for s in (seeker_sub, provider_sub, wrong_side, other_org, content, filtered):
        index.put(s)
    assert {s.id for s in index.match(seeker_item)} == {"s", "f"}
    assert {s.id for s in index.match(provider_item)} == {"p"}


def test_fan_out_of_a_proposal_gives_each_subscription_one_delivery():
    seeker_item, provider_item = proposed(match())
    both = sub(
        "both",
        topics=(Topic.MATCHES_FOR_MY_NEEDS, Topic.NEEDS_FOR_MY_SOLUTIONS),
        org=SEEKER,
    )
    seeker_hook = sub(
        "sh", topics=(Topic.MATCHES_FOR_MY_NEEDS,), org=SEEKER, channel=Channel.WEBHOOK
    )
    provider_daily = sub(
        "pd", topics=(Topic.NEEDS_FOR_MY_SOLUTIONS,), org=PROVIDER, frequency=Frequency.DAILY
    )
    # An organization on both sides of a match (its own need, its own solution).
    self_match = replace(provider_item, organization_id=SEEKER)
    subs = [both, seeker_hook, provider_daily]
    plan = fan_out_audiences(
        [(seeker_item, subs), (self_match, subs), (provider_item, subs)],
        SourceEvent("ev1", "recommendation.MatchProposed", NOW),
        NOW,
        lambda s: f"u/{s}",
    )
    assert sorted(d.subscription_id for d in plan.deliveries) == ["both", "sh"]
    assert len({d.id for d in plan.deliveries}) == 2
    assert plan.digest_subscriptions == ["pd"]
    assert [(i.organization_id, ids) for i, ids in plan.digest_groups] == [(PROVIDER, ["pd"])]
    hook = next(d for d in plan.deliveries if d.subscription_id == "sh")
    body = json.loads(hook.message.body)
    assert body["item"]["kind"] == "match" and body["item"]["organization_id"] == SEEKER


# -- SDG targets -------------------------------------------------------------------------------


TARGET_CASES = [
    (("6.4",), solution(), True),
    (("6.1",), solution(), False),  # tagged with targets: only those count
    (("6.1", "6.4"), solution(), True),
    (("6.1",), solution(sdg_targets=frozenset()), True),  # goals only: the goal counts
    (("3.1",), solution(sdg_targets=frozenset()), False),
    (("14.a",), solution(sdgs=frozenset({14}), sdg_targets=frozenset()), True),
    ((), solution(), True),
]


def admitted(s: Subscription, i: Item) -> bool:
    stored = subscription_keys(s.spec.filters, s.spec.organization_id)
    return all(set(stored.get(k, [])) & set(v) for k, v in item_keys(i).items())


@pytest.mark.parametrize(("targets", "i", "expected"), TARGET_CASES)
def test_target_filters(targets, i, expected):
    s = sub("s", targets=targets)
    assert matches(s, i) is expected
    assert admitted(s, i) is expected


def test_index_with_targets_finds_what_a_scan_finds():
    rng = random.Random(7)
    pool = ["6.1", "6.4", "6.a", "3.1", "13.2", "14.a"]
    subs = [
        sub(
            f"s{n}",
            targets=tuple(rng.sample(pool, rng.randint(0, 2))),
            sdgs=tuple(rng.sample([3, 6, 13], rng.randint(0, 1))),
        )
        for n in range(300)
    ]
    index = SubscriptionIndex()
    for s in subs:
        index.put(s)
    for _ in range(50):
        targets = frozenset(rng.sample(pool, rng.randint(0, 2)))
        goals = frozenset({int(t.split(".")[0]) for t in targets} or {rng.choice([3, 6, 13])})
        i = solution(sdgs=goals, sdg_targets=targets)
        assert {s.id for s in index.match(i)} == {s.id for s in subs if matches(s, i)}


def raw(**kw: Any) -> RawSubscription:
    base: dict[str, Any] = dict(
        channel=int(Channel.EMAIL),
        address="a@example.org",
        topics=[int(Topic.SOLUTIONS)],
        sdgs=[],
        regions=[],
        countries=[],
        keywords=[],
        frequency=int(Frequency.INSTANT),
        language="fr",
    )
    base.update(kw)
    return RawSubscription(**base)


def violations(r: RawSubscription) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        validate_subscription(r)
    return {v.field: v.reason for v in caught.value.violations}


def test_targets_are_validated_by_field():
    assert validate_subscription(raw(sdg_targets=["6.1", "14.a"])).filters.sdg_targets == {
        "6.1",
        "14.a",
    }
    found = violations(raw(sdg_targets=["6.1", "6.9", "18.1", "6", "x"]))
    assert set(found) == {
        "subscription.sdg_targets[1]",
        "subscription.sdg_targets[2]",
        "subscription.sdg_targets[3]",
        "subscription.sdg_targets[4]",
    }
    assert "subscription.sdg_targets" in violations(raw(sdg_targets=["6.1", "6.1"]))


@pytest.mark.parametrize("topic", [Topic.MATCHES_FOR_MY_NEEDS, Topic.NEEDS_FOR_MY_SOLUTIONS])
def test_organization_topics_need_an_organization(topic):
    found = violations(raw(topics=[int(topic)]))
    assert found == {"subscription.organization_id": f"is required for TOPIC_{topic.name}"}
    ok = validate_subscription(raw(topics=[int(topic)], organization_id="org1"))
    assert ok.filters.topics == {topic}


# -- languages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("fr", "fr"),
        ("es", "es"),
        ("FR", "fr"),
        ("fr-CA", "fr"),
        ("es_MX", "es"),
        ("en", "en"),
        ("pt", "en"),
        ("sw", "en"),
        ("", "en"),
    ],
)
def test_message_language_falls_back_to_english(code, expected):
    assert message_language(code) == expected


def test_translation_of_phrases_and_filled_templates():
    assert translate("fr", "New solution published") == "Nouvelle solution publiée"
    assert translate("es", "New solution published") == "Nueva solución publicada"
    assert (
        translate("fr", "Funding deadline in 5 days") == "Date limite de financement dans 5 jours"
    )
    assert (
        translate("es", "Funding deadline in 5 days") == "El plazo de financiación vence en 5 días"
    )
    assert translate("pt", "New solution published") == "New solution published"
    # Data (titles, names) is not a phrase: it stays as written.
    assert translate("fr", "Solar pumps") == "Solar pumps"
    assert phrase("es", "{n} updates", n=3) == "3 novedades"
    assert phrase("de", "{n} updates", n=3) == "3 updates"


def test_every_language_table_covers_the_same_phrases():
    english = set(TABLES["fr"])
    assert set(TABLES["es"]) == english
    for title in SECTION_TITLES.values():
        assert title in english
    headlines = {i.headline for i in proposed(match())}
    headlines |= {i.headline for s in range(2, 9) for i in changed(match(s, history=[step("x")]))}
    assert headlines <= english


def env() -> Envelope:
    return Envelope("d1", "ev1", "catalog.SolutionPublished", NOW, f"{BASE}/unsubscribe?token=t")


def test_alert_is_written_in_the_subscription_language():
    fr = render_alert(solution(details=(("deadline", "2026-12-31"),)), env(), "fr")
    assert fr.subject.startswith("[South-South Galaxy] Nouvelle solution publiée: Solar pumps")
    assert "Date limite: 2026-12-31" in fr.text and "Se désabonner:" in fr.text
    assert '<html lang="fr">' in fr.html
    assert json.loads(fr.body)["language"] == "fr"
    es = render_alert(solution(), env(), "es")
    assert "Nueva solución publicada" in es.subject and "Cancelar la suscripción" in es.html
    review = solution(
        title="New needs",  # a title is data, even when it reads like a phrase
        details=(("outcome", "approved"), ("passed", "yes"), ("reason", "no")),
    )
    es_review = render_alert(review, env(), "es")
    assert "Resultado: aprobada" in es_review.text and "Aprobada: sí" in es_review.text
    assert "Motivo: no" in es_review.text and "\nNew needs\n" in es_review.text
    other = render_alert(solution(), env(), "pt")
    assert "New solution published" in other.subject and "Unsubscribe:" in other.text
    assert json.loads(other.body)["language"] == "en"


def test_digest_is_written_in_the_subscription_language():
    items = [
        solution(),
        solution(id="sol2", title="Wind", headline="New need posted", topic=Topic.NEEDS),
    ]
    label = period_label(Frequency.DAILY, NOW, "es")
    assert label == "Resumen diario, 2026-11-27"
    es = render_digest(items, label, env(), language="es")
    assert es.subject == "[South-South Galaxy] Resumen diario, 2026-11-27: 2 novedades"
    assert "Nuevas soluciones (1)" in es.text and "Nuevas necesidades (1)" in es.text
    assert "- Nueva necesidad publicada: Wind" in es.text
    fr = render_digest(items[:1], period_label(Frequency.WEEKLY, NOW, "fr"), env(), language="fr")
    assert fr.subject.endswith("Résumé hebdomadaire, semaine du 2026-11-27: 1 nouveauté")
    many = [solution(id=f"s{n}") for n in range(5)]
    more = render_digest(many, "x", env(), max_items=2, language="fr")
    assert "… et 3 de plus sur la plateforme." in more.text
    en = render_digest(items, period_label(Frequency.DAILY, NOW, "sw"), env(), language="sw")
    assert en.subject.endswith("Daily digest, 2026-11-27: 2 updates")
