"""Settings of the recommendation service (``SSG_*`` on top of the platform's)."""

from __future__ import annotations

from pydantic import Field

from ssg.platform.settings import PlatformSettings


class RecommendationSettings(PlatformSettings):
    """What the recommendation processes read from their environment."""

    service: str = Field(default="recommendation", pattern=r"^[a-z][a-z0-9-]*$")
    # Consumer group of the worker (catalog, registration and interaction events).
    worker_group: str = "recommendation-worker"
    # Interest profiles halve their weights this often.
    profile_half_life_days: float = Field(default=30.0, gt=0)
    # Item popularity halves this often (a soft sliding window).
    popularity_half_life_days: float = Field(default=7.0, gt=0)
    # A new item of a person is counted together with at most this many of their earlier
    # items (the strongest) in the co-interaction counts.
    co_interaction_history: int = Field(default=50, ge=1, le=1000)
    # How often the API checks whether the items changed (and rebuilds its index if so).
    index_refresh_seconds: float = Field(default=2.0, ge=0)
    # How old popularity, people per item, organizations and track records may get in memory.
    signals_refresh_seconds: float = Field(default=30.0, ge=0)
    # A need and a solution scoring at least this become a MatchProposed.
    proposal_threshold: float = Field(default=0.45, ge=0, le=1)
    # At most this many proposals per posted need or published solution.
    proposals_per_event: int = Field(default=5, ge=1, le=100)
    # A stored recommendation list (ADR 0054) is served while the items changed at most this
    # long after it was computed, and while it is at most stored_list_max_age_seconds old.
    stored_list_tolerance_seconds: float = Field(default=600.0, ge=0)
    stored_list_max_age_seconds: float = Field(default=3600.0, ge=0)
    # The API holds up to this many stored lists in memory (~5 KB each), kept current from the
    # change stream of recommendations (ADR 0055; 0: read each one by _id). Beyond it, the
    # lists not held are read by _id per call.
    stored_lists_held: int = Field(default=20_000, ge=0)
    # A held list is served only while the copy is known to be at most this far behind the
    # collection; otherwise (starting, the stream broken) the list is read by _id.
    stored_lists_max_lag_seconds: float = Field(default=1.0, gt=0)
    # The held lists are loaded again from scratch this often (a stream resumed on a server
    # that lost its history may not say so).
    stored_lists_reload_seconds: float = Field(default=3600.0, gt=0)
    # The worker's sweep (ADR 0054): every interval (0: never), the replica holding its lease
    # recomputes the stored lists more than list_sweep_behind_seconds behind the items' marker,
    # list_sweep_batch at a time with list_sweep_pause_seconds between batches.
    list_sweep_interval_seconds: float = Field(default=30.0, ge=0)
    list_sweep_batch: int = Field(default=50, ge=1, le=5000)
    list_sweep_pause_seconds: float = Field(default=0.2, ge=0)
    list_sweep_behind_seconds: float = Field(default=300.0, ge=0)
    list_sweep_lease_seconds: float = Field(default=60.0, gt=0)
