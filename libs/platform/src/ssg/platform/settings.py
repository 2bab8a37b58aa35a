"""Settings read once from ``SSG_*`` environment variables, validated, failing fast by name."""

from __future__ import annotations

import socket
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SSG_"


class ConfigError(Exception):
    """Raised at start-up when an environment variable is missing or invalid."""


class PlatformSettings(BaseSettings):
    """What every process needs; a service subclasses it to add its own fields."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service: str = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9-]*$")
    instance: str = Field(default="global", pattern=r"^[a-z][a-z0-9-]{0,62}$")
    instance_id: str = Field(default_factory=socket.gethostname, min_length=1)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    grace_seconds: float = Field(default=10.0, ge=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    health_interval_seconds: float = Field(default=2.0, gt=0)
    # How often an API replica recounts its business gauges from its datastore (0: never).
    store_gauges_seconds: float = Field(default=30.0, ge=0)

    jwt_secret: str = Field(default="", description="HS256 key; empty with jwt_public_key set")
    jwt_public_key: str = Field(default="", description="PEM for RS256/ES256 tokens")
    # Signs list page tokens; defaults to SSG_JWT_SECRET. Every replica must share it.
    page_token_secret: str = ""
    jwt_issuer: str = "ssg"
    jwt_audience: str = "ssg"

    mongodb_uri: str = ""
    # Threads that run the synchronous MongoDB driver off the event loop (ssg.platform.mongo).
    mongo_threads: int = Field(default=16, ge=1, le=256)
    # Get calls read through a native asyncio client instead of that pool (ADR 0009); off by
    # default: on the benchmarks it cost the API more CPU per call than the pool.
    mongo_async_reads: bool = False
    # Per-replica caches of the Get calls, fed by the change stream (ADR 0014): entries per
    # cache (0 turns them off), how stale an answer may be, and whether a replica loads them
    # when it starts (else they fill as Gets miss).
    read_cache_entries: int = Field(default=20_000, ge=0, le=10_000_000)
    read_cache_max_staleness_seconds: float = Field(default=2.0, gt=0, le=60)
    read_cache_preload: bool = True
    kafka_bootstrap: str = ""
    opensearch_url: str = ""
    # A secured cluster: basic-auth credentials and the CA bundle its certificate chains to
    # (ssg.platform.opensearch builds every client from these).
    opensearch_username: str = ""
    opensearch_password: SecretStr = SecretStr("")
    opensearch_ca_file: str = ""
    amqp_url: str = ""
    # Work around the local Tansu broker's end-offset bug (one message per batch).
    kafka_local_profile: bool = False

    # Event handlers: retried with capped exponential backoff, then dead-lettered.
    event_retry_attempts: int = Field(default=5, ge=1, le=20)
    event_retry_base_seconds: float = Field(default=0.5, gt=0)
    event_retry_max_seconds: float = Field(default=30.0, gt=0)
    # An event naming something not known yet (NotKnownYet) is retried, holding only its
    # partition, for this long before it is dead-lettered (0 dead-letters it at once).
    event_wait_seconds: float = Field(default=120.0, ge=0)

    # faust workers (stream processors with tables).
    faust_store: str = Field(default="memory://", pattern=r"^(memory|rocksdb|aerospike)://")
    faust_data_dir: str = ""
    faust_topic_partitions: int = Field(default=8, ge=1, le=1024)
    faust_replication: int = Field(default=1, ge=1, le=7)
    faust_web_host: str = "127.0.0.1"
    faust_web_port: int = Field(default=0, ge=0, le=65535, description="0 turns the web server off")


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build settings from the environment (overrides win); raise ConfigError naming each bad variable."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
