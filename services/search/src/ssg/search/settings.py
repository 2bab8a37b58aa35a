"""Settings of the search service (``SSG_*`` on top of the platform's)."""

from __future__ import annotations

from pydantic import Field

from ssg.platform.settings import PlatformSettings


class SearchSettings(PlatformSettings):
    """What the search processes read from their environment."""

    service: str = Field(default="search", pattern=r"^[a-z][a-z0-9-]*$")
    # Aliases are <prefix>-<entity type>; tests use a prefix of their own.
    index_prefix: str = Field(default="ssg", pattern=r"^[a-z][a-z0-9-]{0,30}$")
    # Indexer (faust worker): its consumer group is the app id.
    indexer_app_id: str = Field(default="search-indexer", pattern=r"^[a-z][a-z0-9-]*$")
    bulk_batch_size: int = Field(default=500, ge=1, le=10_000)
    # How long a partly filled batch waits for more events before it is written.
    bulk_flush_seconds: float = Field(default=0.2, gt=0, le=60)
    # refresh=true on each bulk write (tests and benchmarks of freshness; off in production,
    # where the index's refresh interval makes writes visible within a second).
    bulk_refresh: bool = False
    opensearch_timeout_seconds: float = Field(default=10.0, gt=0)

    # Ranking (relevance order): multipliers of the text score.
    rank_verified_boost: float = Field(default=1.5, ge=1.0, le=10.0)
    rank_sdg_match_boost: float = Field(default=1.3, ge=1.0, le=10.0)
    # Freshness: a Gaussian decay on published_at; at freshness_scale_days old an item's
    # freshness factor is freshness_decay; freshness_weight is how much of the score it moves.
    rank_freshness_scale_days: int = Field(default=365, ge=1, le=36_500)
    rank_freshness_decay: float = Field(default=0.5, gt=0.0, lt=1.0)
    rank_freshness_weight: float = Field(default=0.3, ge=0.0, le=1.0)

    # Activity events: SearchPerformed for each answered query.
    search_events_enabled: bool = True
    # Key of the anonymising hash of user subjects (defaults to SSG_JWT_SECRET).
    user_hash_key: str = ""
