"""What subscribers receive: an instant alert for one item, or a digest of several, each as a
subject, plain text, small HTML and a webhook JSON body. Every message carries its one-click
unsubscribe link. Kept small for low-bandwidth connections: summaries are cut, no images, no
styles beyond the HTML defaults. Written in the subscription's language (``languages``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from ssg.notifications.domain.languages import ENGLISH, message_language, phrase, translate
from ssg.notifications.domain.model import Item, Message, Topic

SUMMARY_CHARS = 280
DIGEST_SUMMARY_CHARS = 140
DIGEST_MAX_ITEMS = 50
SUBJECT_PREFIX = "[South-South Galaxy]"

SECTION_TITLES = {
    Topic.SOLUTIONS: "New solutions",
    Topic.KNOWLEDGE_PRODUCTS: "New knowledge products",
    Topic.FUNDING: "Funding opportunities",
    Topic.NEEDS: "New needs",
    Topic.MY_ORGANIZATION: "Your organization",
    Topic.MATCHES_FOR_MY_NEEDS: "Matches for your needs",
    Topic.NEEDS_FOR_MY_SOLUTIONS: "Needs your solutions could answer",
}


@dataclass(frozen=True)
class Envelope:
    """Where a message is about: delivery and event ids, and the unsubscribe link."""

    delivery_id: str
    event_id: str
    event_type: str
    occurred_at: datetime
    unsubscribe_url: str


def shorten(text: str, limit: int) -> str:
    """text on one line, cut at a word boundary to at most limit characters (with an ellipsis)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def item_json(item: Item) -> dict[str, object]:
    """The item as the webhook body shows it."""
    return {
        "kind": item.kind,
        "topic": item.topic.name.lower(),
        "id": item.id,
        "title": item.title,
        "summary": shorten(item.summary, SUMMARY_CHARS),
        "url": item.url,
        "organization_id": item.organization_id,
        "sdgs": sorted(item.sdgs),
        "regions": sorted(item.regions),
        "countries": sorted(item.countries),
        "details": dict(item.details),
    }


# Details whose values are words of the service (not data), so they are translated too.
TRANSLATED_VALUES = frozenset({"outcome", "passed"})


def _detail_lines(item: Item, language: str) -> list[str]:
    return [
        f"{translate(language, k.replace('_', ' ').capitalize())}: "
        + (translate(language, v) if k in TRANSLATED_VALUES else v)
        for k, v in item.details
        if v
    ]


class AlertTemplate:
    """The instant alert of one item for one event, rendered once; ``message`` adds what
    differs per subscriber (delivery id, unsubscribe link), so a fan-out to thousands stays
    cheap."""

    def __init__(
        self,
        item: Item,
        event_id: str,
        event_type: str,
        occurred_at: datetime,
        language: str = ENGLISH,
    ) -> None:
        self.language = message_language(language)
        headline = translate(language, item.headline)
        title = item.title
        self.subject = f"{SUBJECT_PREFIX} {headline}: {shorten(title, 120)}"
        summary = shorten(translate(language, item.summary), SUMMARY_CHARS)
        lines = [headline, "", title]
        if summary:
            lines += ["", summary]
        lines += _detail_lines(item, language)
        if item.url:
            lines += ["", item.url]
        self.text = "\n".join(lines)
        details = "".join(f"<li>{escape(line)}</li>" for line in _detail_lines(item, language))
        self.html = (
            f'<html lang="{self.language}"><body><p>{escape(headline)}</p><h3>{escape(title)}</h3>'
            + (f"<p>{escape(summary)}</p>" if summary else "")
            + (f"<ul>{details}</ul>" if details else "")
            + (f'<p><a href="{escape(item.url)}">{escape(item.url)}</a></p>' if item.url else "")
        )
        common = json.dumps(
            {
                "event_id": event_id,
                "event_type": event_type,
                "headline": headline,
                "item": item_json(item),
                "language": self.language,
                "occurred_at": occurred_at.isoformat(),
            },
            sort_keys=True,
        )
        # Per subscriber only two strings are encoded; the rest is spliced in as it is.
        self._body_rest = common[1:]

    def message(self, delivery_id: str, unsubscribe_url: str) -> Message:
        """The alert for one subscriber."""
        unsubscribe = phrase(self.language, "Unsubscribe")
        text = f"{self.text}\n\n--\n{unsubscribe}: {unsubscribe_url}\n"
        html = (
            f'{self.html}<p><small><a href="{escape(unsubscribe_url)}">{escape(unsubscribe)}</a>'
            "</small></p></body></html>"
        )
        body = (
            f'{{"delivery_id": {json.dumps(delivery_id)}, '
            f'"unsubscribe_url": {json.dumps(unsubscribe_url)}, {self._body_rest}'
        )
        return Message(self.subject, text, html, body, unsubscribe_url)


def render_alert(item: Item, env: Envelope, language: str = ENGLISH) -> Message:
    """The instant alert for one item, in language."""
    template = AlertTemplate(item, env.event_id, env.event_type, env.occurred_at, language)
    return template.message(env.delivery_id, env.unsubscribe_url)


def group_items(items: Sequence[Item]) -> list[tuple[Topic, list[Item]]]:
    """Items by topic, in the fixed topic order, each group in the given order, duplicates
    (same kind and id, e.g. an item matched by two events) kept once."""
    seen: set[tuple[str, str, str]] = set()
    groups: dict[Topic, list[Item]] = {}
    for item in items:
        key = (item.kind, item.id, item.headline)
        if key in seen:
            continue
        seen.add(key)
        groups.setdefault(item.topic, []).append(item)
    return [(topic, groups[topic]) for topic in Topic if topic in groups]


def _updates(language: str, total: int) -> str:
    return phrase(language, "1 update") if total == 1 else phrase(language, "{n} updates", n=total)


def render_digest(
    items: Sequence[Item],
    period: str,
    env: Envelope,
    max_items: int = DIGEST_MAX_ITEMS,
    language: str = ENGLISH,
) -> Message:
    """One digest for a period ("Daily digest, 2026-11-27", already in language), grouping
    items by topic, in language."""
    lang = message_language(language)
    groups = group_items(items)
    total = sum(len(g) for _, g in groups)
    subject = f"{SUBJECT_PREFIX} {period}: {_updates(lang, total)}"
    text: list[str] = [f"{period}: {_updates(lang, total)}"]
    html: list[str] = [f'<html lang="{lang}"><body><p>{escape(text[0])}</p>']
    body_groups: list[dict[str, object]] = []
    shown = 0
    for topic, group in groups:
        title = phrase(lang, SECTION_TITLES[topic])
        text += ["", f"{title} ({len(group)})"]
        html.append(f"<h3>{escape(title)} ({len(group)})</h3><ul>")
        entries = []
        for item in group:
            if shown >= max_items:
                break
            shown += 1
            headline = translate(lang, item.headline)
            item_title = item.title
            line = f"- {headline}: {item_title}"
            summary = shorten(translate(lang, item.summary), DIGEST_SUMMARY_CHARS)
            text.append(
                line + (f" — {summary}" if summary else "") + (f" {item.url}" if item.url else "")
            )
            opener = escape(phrase(lang, "open"))
            link = f' <a href="{escape(item.url)}">{opener}</a>' if item.url else ""
            html.append(f"<li>{escape(headline)}: <b>{escape(item_title)}</b>{link}</li>")
            entries.append(item_json(item))
        html.append("</ul>")
        body_groups.append({"topic": topic.name.lower(), "count": len(group), "items": entries})
    if shown < total:
        more = phrase(lang, "… and {n} more on the platform.", n=total - shown)
        text += ["", more]
        html.append(f"<p>{escape(more)}</p>")
    unsubscribe = phrase(lang, "Unsubscribe")
    text += ["", "--", f"{unsubscribe}: {env.unsubscribe_url}"]
    html.append(
        f'<p><small><a href="{escape(env.unsubscribe_url)}">{escape(unsubscribe)}</a>'
        "</small></p></body></html>"
    )
    body = {
        "delivery_id": env.delivery_id,
        "event_type": env.event_type,
        "period": period,
        "total": total,
        "groups": body_groups,
        "language": lang,
        "unsubscribe_url": env.unsubscribe_url,
    }
    return Message(
        subject,
        "\n".join(text) + "\n",
        "".join(html),
        json.dumps(body, sort_keys=True),
        env.unsubscribe_url,
    )
