"""Pure rules: matching and its index keys, validation, signing, webhook targets, backoff,
messages, digests, fan-out and the per-recipient limit (no servers)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ssg.notifications.delivery.ratelimit import RecipientLimiter
from ssg.notifications.domain import signing
from ssg.notifications.domain.deadlines import reminder_due, reminder_item, reminder_source
from ssg.notifications.domain.digest import next_boundary, period_label, period_start
from ssg.notifications.domain.fanout import SourceEvent, fan_out
from ssg.notifications.domain.ids import delivery_id
from ssg.notifications.domain.index import SubscriptionIndex
from ssg.notifications.domain.matching import item_keys, keyword_matches, matches, subscription_keys
from ssg.notifications.domain.messages import Envelope, group_items, render_alert, render_digest
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
from ssg.notifications.domain.retry import Backoff
from ssg.notifications.domain.targets import (
    TargetRefused,
    address_refusal,
    literal_host_refusal,
    parse_url,
)
from ssg.notifications.domain.validation import RawSubscription, validate_subscription
from ssg.platform.errors import ValidationError

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
KEY = b"k" * 32


def sub(
    *,
    topics=(Topic.SOLUTIONS,),
    sdgs=(),
    regions=(),
    countries=(),
    keywords=(),
    org="",
    frequency=Frequency.INSTANT,
    status=SubscriptionStatus.ACTIVE,
    id="s1",
) -> Subscription:
    spec = SubscriptionInput(
        Channel.EMAIL,
        "a@example.org",
        Filters(
            frozenset(topics),
            frozenset(sdgs),
            frozenset(regions),
            frozenset(countries),
            tuple(keywords),
        ),
        frequency,
        "en",
        org,
    )
    return Subscription(id, "alice", spec, status, 1, NOW, NOW)


def item(**kw) -> Item:
    base: dict[str, Any] = dict(
        topic=Topic.SOLUTIONS,
        kind="solution",
        id="sol1",
        title="Solar water pumps for smallholders",
        summary="Irrigation with solar pumps in rural Kenya",
        organization_id="org1",
        sdgs=frozenset({6, 7}),
        regions=frozenset({1}),
        countries=frozenset({"KEN"}),
        headline="New solution published",
        url="https://ssg.example.org/solutions/sol1",
    )
    base.update(kw)
    return Item(**base)


def keys_admit(s: Subscription, i: Item) -> bool:
    """What the store's query does with the keys: every dimension of the item overlaps."""
    stored = subscription_keys(s.spec.filters, s.spec.organization_id)
    return all(set(stored[k]) & set(v) for k, v in item_keys(i).items())


CASES = [
    (sub(), item(), True),
    (sub(sdgs=[6]), item(), True),
    (sub(sdgs=[3]), item(), False),
    (sub(regions=[1], countries=["KEN"]), item(), True),
    (sub(countries=["BRA"]), item(), False),
    (sub(topics=[Topic.FUNDING]), item(), False),
    (sub(keywords=["solar"]), item(), True),
    (sub(keywords=["sol"]), item(), False),  # whole words only
    (sub(keywords=["rural kenya"]), item(), True),
    (sub(status=SubscriptionStatus.UNSUBSCRIBED), item(), False),
    (sub(topics=[Topic.MY_ORGANIZATION], org="org1"), item(topic=Topic.MY_ORGANIZATION), True),
    (sub(topics=[Topic.MY_ORGANIZATION], org="org2"), item(topic=Topic.MY_ORGANIZATION), False),
    (sub(topics=[Topic.SOLUTIONS, Topic.MY_ORGANIZATION], org="org1", sdgs=[1]), item(), False),
]


@pytest.mark.parametrize(("s", "i", "expected"), CASES)
def test_matching_rule_and_index_keys_agree(s, i, expected):
    assert matches(s, i) is expected
    # The index is a pre-filter: it must admit every match (keywords are decided afterwards).
    if expected:
        assert keys_admit(s, i)


def test_index_keys_exclude_non_matching_dimensions():
    assert not keys_admit(sub(sdgs=[3]), item())
    assert not keys_admit(sub(topics=[Topic.NEEDS]), item())
    assert keys_admit(sub(), item(sdgs=frozenset()))


def test_keyword_matching_ignores_case_and_needs_word_boundaries():
    assert keyword_matches(["WATER"], "Clean water for all")
    assert not keyword_matches(["water"], "Waterfalls")
    assert keyword_matches([], "anything")


def raw(**kw) -> RawSubscription:
    base: dict[str, Any] = dict(
        channel=1,
        address="alice@example.org",
        topics=[1],
        sdgs=[6],
        regions=[1],
        countries=["KEN"],
        keywords=["solar"],
        frequency=1,
        language="en",
    )
    base.update(kw)
    return RawSubscription(**base)


def fields_of(exc: ValidationError) -> dict[str, str]:
    return {v.field: v.reason for v in exc.violations}


def test_valid_subscription_passes():
    spec = validate_subscription(raw())
    assert spec.filters.sdgs == {6} and spec.channel is Channel.EMAIL


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": 0}, "subscription.channel"),
        ({"address": "not-an-email"}, "subscription.address"),
        ({"address": ""}, "subscription.address"),
        ({"channel": 2, "address": "ftp://example.org/x"}, "subscription.address"),
        ({"channel": 2, "address": "http://10.0.0.5/hook"}, "subscription.address"),
        ({"channel": 2, "address": "http://169.254.169.254/latest"}, "subscription.address"),
        ({"channel": 2, "address": "http://localhost:8080/"}, "subscription.address"),
        ({"topics": []}, "subscription.topics"),
        ({"topics": [9]}, "subscription.topics[0]"),
        ({"sdgs": [18]}, "subscription.sdgs[0]"),
        ({"sdgs": [6, 6]}, "subscription.sdgs"),
        ({"regions": [0]}, "subscription.regions[0]"),
        ({"countries": ["XXX"]}, "subscription.countries[0]"),
        ({"keywords": [" "]}, "subscription.keywords[0]"),
        ({"keywords": ["x" * 61]}, "subscription.keywords[0]"),
        ({"frequency": 0}, "subscription.frequency"),
        ({"language": "english"}, "subscription.language"),
        ({"topics": [5]}, "subscription.organization_id"),
        ({"organization_id": "bad id!"}, "subscription.organization_id"),
    ],
)
def test_bad_input_names_the_field(changes, field):
    with pytest.raises(ValidationError) as caught:
        validate_subscription(raw(**changes))
    assert field in fields_of(caught.value)


def test_loopback_webhook_allowed_only_when_configured():
    spec = validate_subscription(
        raw(channel=2, address="http://127.0.0.1:9/x"), allow_loopback=True
    )
    assert spec.address == "http://127.0.0.1:9/x"
    with pytest.raises(ValidationError):
        validate_subscription(raw(channel=2, address="http://127.0.0.1:9/x"))


def test_unsubscribe_token_round_trip_and_forgery():
    token = signing.unsubscribe_token(KEY, "sub123")
    assert signing.verify_unsubscribe_token(KEY, token) == "sub123"
    assert signing.verify_unsubscribe_token(b"x" * 32, token) is None
    version, _sid, mac = token.split(".")
    assert signing.verify_unsubscribe_token(KEY, f"{version}.other.{mac}") is None
    assert signing.verify_unsubscribe_token(KEY, "garbage") is None


def test_webhook_signature_covers_timestamp_and_body():
    secret = signing.webhook_secret(KEY, "sub123")
    sig = signing.webhook_signature(secret, 1000, b"{}")
    assert signing.verify_webhook_signature(secret, 1000, b"{}", sig, now=1010)
    assert not signing.verify_webhook_signature(secret, 1001, b"{}", sig, now=1010)
    assert not signing.verify_webhook_signature(secret, 1000, b"{ }", sig, now=1010)
    assert not signing.verify_webhook_signature(secret, 1000, b"{}", sig, now=5000)
    assert signing.webhook_secret(KEY, "other") != secret


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("192.168.0.10", True),
        ("172.16.5.5", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("::ffff:10.0.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("8.8.8.8", False),
        ("2001:4860:4860::8888", False),
    ],
)
def test_webhook_addresses(address, refused):
    assert (address_refusal(address) is not None) is refused


def test_loopback_switch_and_names():
    assert address_refusal("127.0.0.1", allow_loopback=True) is None
    assert address_refusal("10.0.0.1", allow_loopback=True) is not None
    assert literal_host_refusal("LOCALHOST") is not None
    assert literal_host_refusal("hooks.example.org") is None
    assert parse_url("https://h.example.org/a?b=1").path == "/a?b=1"
    with pytest.raises(TargetRefused):
        parse_url("https://user:pw@h.example.org/")


def test_backoff_grows_and_ends():
    b = Backoff(attempts=4, base_ms=100, multiplier=3, max_ms=500)
    assert [b.delay_ms(n) for n in (1, 2, 3, 4)] == [100, 300, 500, None]
    assert b.delays_ms() == [100, 300, 500]


def env(did="d1") -> Envelope:
    return Envelope(did, "e1", "catalog.SolutionPublished", NOW, "https://x/unsubscribe?token=t")


def test_alert_has_text_html_json_and_unsubscribe_link():
    msg = render_alert(item(summary="word " * 200), env())
    assert "Solar water pumps" in msg.subject
    assert "https://x/unsubscribe?token=t" in msg.text and "unsubscribe?token=t" in msg.html
    body = json.loads(msg.body)
    assert body["delivery_id"] == "d1" and body["item"]["sdgs"] == [6, 7]
    assert len(body["item"]["summary"]) <= 280
    assert "<script>" not in render_alert(item(title="<script>x</script>"), env()).html


def test_digest_groups_by_topic_drops_repeats_and_stays_small():
    items = [
        item(id="s1", title="Solution one"),
        item(
            id="f1",
            title="Grant",
            topic=Topic.FUNDING,
            kind="funding opportunity",
            headline="New funding opportunity",
        ),
        item(id="s2", title="Solution two"),
        item(id="s1", title="Solution one"),
    ]
    groups = group_items(items)
    assert [(t, [i.id for i in g]) for t, g in groups] == [
        (Topic.SOLUTIONS, ["s1", "s2"]),
        (Topic.FUNDING, ["f1"]),
    ]
    msg = render_digest(items, "Daily digest, 2026-11-27", env())
    assert "3 updates" in msg.subject
    assert msg.text.index("New solutions (2)") < msg.text.index("Funding opportunities (1)")
    body = json.loads(msg.body)
    assert [g["count"] for g in body["groups"]] == [2, 1]
    many = [item(id=f"s{n}", title=f"Solution {n}", summary="long text " * 100) for n in range(200)]
    big = render_digest(many, "Weekly digest", env(), max_items=50)
    assert "and 150 more" in big.text
    assert len(big.text.encode()) < 20_000 and len(big.html.encode()) < 20_000


def test_digest_periods():
    assert period_start(Frequency.DAILY, NOW) == datetime(2026, 11, 27, tzinfo=UTC)
    assert period_start(Frequency.WEEKLY, NOW) == datetime(2026, 11, 23, tzinfo=UTC)  # Monday
    assert next_boundary(Frequency.WEEKLY, NOW) == datetime(2026, 11, 30, tzinfo=UTC)
    assert period_label(Frequency.DAILY, NOW).endswith("2026-11-27")


def test_fan_out_splits_instant_and_digest_and_derives_ids():
    subs = [
        sub(id="a"),
        sub(id="b", frequency=Frequency.DAILY),
        sub(id="c", sdgs=[1]),
    ]
    plan = fan_out(
        item(), subs, SourceEvent("ev1", "catalog.SolutionPublished", NOW), NOW, lambda s: f"u/{s}"
    )
    assert [d.subscription_id for d in plan.deliveries] == ["a"]
    assert plan.digest_subscriptions == ["b"]
    assert plan.deliveries[0].id == delivery_id("ev1", "a", int(Channel.EMAIL))
    again = fan_out(
        item(),
        subs,
        SourceEvent("ev1", "catalog.SolutionPublished", NOW),
        NOW + timedelta(1),
        lambda s: "",
    )
    assert again.deliveries[0].id == plan.deliveries[0].id
    assert delivery_id("ev2", "a", 1) != plan.deliveries[0].id


def test_recipient_limiter_slides():
    now = [0.0]
    limiter = RecipientLimiter(2, clock=lambda: now[0])
    assert limiter.allow("A@x.org") and limiter.allow("a@x.org")
    assert not limiter.allow("a@x.org")
    assert limiter.allow("b@x.org")
    now[0] = 61.0
    assert limiter.allow("a@x.org")


def test_index_finds_exactly_what_a_scan_finds():
    rng = random.Random(7)
    countries = ["KEN", "BRA", "IND", "NGA", "PER"]
    index = SubscriptionIndex()
    subs = []
    for n in range(600):
        s = sub(
            id=f"s{n}",
            topics=rng.sample(list(Topic)[:4], rng.choice([1, 2])),
            sdgs=rng.sample(range(1, 18), rng.choice([0, 1, 2])),
            regions=rng.sample(range(1, 8), rng.choice([0, 0, 1])),
            countries=rng.sample(countries, rng.choice([0, 1])),
            keywords=rng.choice([(), ("solar",), ("water",)]),
        )
        subs.append(s)
        index.put(s)
    for _ in range(200):
        i = item(
            topic=rng.choice(list(Topic)[:4]),
            sdgs=frozenset(rng.sample(range(1, 18), rng.choice([0, 1, 3]))),
            regions=frozenset(rng.sample(range(1, 8), rng.choice([0, 1]))),
            countries=frozenset(rng.sample(countries, rng.choice([0, 1, 2]))),
        )
        assert {s.id for s in index.match(i)} == {s.id for s in subs if matches(s, i)}


def test_index_follows_updates_and_unsubscribes():
    index = SubscriptionIndex()
    index.put(sub(id="a", sdgs=[6]))
    assert [s.id for s in index.match(item())] == ["a"]
    moved = replace(sub(id="a", sdgs=[3]), version=2)
    index.put(moved)
    assert index.match(item()) == []
    index.put(sub(id="a", sdgs=[6]))  # an older version arriving late changes nothing
    assert index.match(item()) == []
    index.put(replace(moved, version=3, status=SubscriptionStatus.UNSUBSCRIBED))
    assert len(index) == 0
    index.put(sub(id="b", topics=[Topic.MY_ORGANIZATION], org="org1"))
    assert [s.id for s in index.match(item(topic=Topic.MY_ORGANIZATION))] == ["b"]
    assert index.match(item(topic=Topic.MY_ORGANIZATION, organization_id="org9")) == []


def test_funding_reminder_is_due_once_per_deadline_within_the_window():
    week = timedelta(days=7)
    deadline = NOW + timedelta(days=3)
    assert reminder_due(deadline, None, NOW, week)
    assert not reminder_due(deadline, deadline, NOW, week)
    assert reminder_due(deadline, deadline - timedelta(days=1), NOW, week)  # it moved
    assert not reminder_due(NOW + timedelta(days=9), None, NOW, week)
    assert not reminder_due(NOW - timedelta(hours=1), None, NOW, week)
    assert not reminder_due(None, None, NOW, week)
    reminder = reminder_item(item(topic=Topic.FUNDING), deadline, NOW)
    assert reminder.headline == "Funding deadline in 3 days"
    assert dict(reminder.details)["deadline"] == "2026-11-30"
    assert reminder_source("f1", deadline) != reminder_source("f1", deadline + timedelta(days=1))
