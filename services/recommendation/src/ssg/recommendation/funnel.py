"""The matchmaking funnel as counters: how many matches reached each status.

Counters rather than gauges of the stored statuses: a funnel asks how many matches entered each
step in a period (``increase``), and a match that moved on no longer sits in the earlier status.
A proposal is counted inside the consumer's transaction, so a transaction retried after a
conflict can count it twice; the funnel's proportions stand.
"""

from __future__ import annotations

from prometheus_client import Counter

from ssg.recommendation.domain.matches import Match, MatchStatus

MATCH_STEPS = Counter(
    "ssg_recommendation_match_steps",
    "Matches that reached a status (PROPOSED, SEEKER_/PROVIDER_ACCEPTED, ACCEPTED, AGREED, "
    "IMPLEMENTED, RESULTS_RECORDED, DECLINED).",
    ["status"],
)
# Every status has a series from the start, so a step nobody reached reads 0, not no data.
for _status in MatchStatus:
    MATCH_STEPS.labels(_status.value)


def count_step(match: Match) -> None:
    """Count the status match has just reached."""
    MATCH_STEPS.labels(match.status.value).inc()
