"""MongoDB plumbing shared by services: one client factory and a way to run the sync driver off
the event loop.

Services keep their documents in mongoengine, but anything that must share a transaction with
them (the outbox) works on raw pymongo collections. Both go through the same ``MongoClient``:

* A service that connects through mongoengine calls ``connect_mongoengine(settings)`` once (or
  ``mongoengine.connect(...)`` itself, then ``mongoengine_handles(alias)``) and gets the
  ``(client, db)`` pair that mongoengine uses.
* A service without mongoengine calls ``make_client(settings)`` and ``default_database(client)``.

Inside a transaction, a mongoengine document is written through its pymongo collection so the
session applies (mongoengine 0.29 has no session support of its own)::

    def publish(uow: UnitOfWork) -> None:
        solution.validate()
        Solution._get_collection().insert_one(solution.to_mongo().to_dict(), session=uow.session)
        uow.add(SOLUTION_TOPIC, envelope)

    await run_sync(write_with_events, client, db, publish)

With ``SSG_MONGO_ASYNC_READS`` (off by default; ADR 0009) the single-document reads of the Get
calls go through a second, native asyncio client instead (``make_read_client``, same options):
no thread-pool hop per call, and a burst of writes holding the pool's threads cannot queue the
reads behind it, but on the benchmarks it cost the API more CPU per call. The service closes it
on shutdown (``await client.close()``) and its health check pings through it
(``ssg.platform.health.read_client_check``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import mongoengine
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database

from ssg.platform.settings import ConfigError, PlatformSettings

P = ParamSpec("P")
T = TypeVar("T")
Doc = dict[str, Any]

# Sync driver calls get their own bounded pool: a slow database then cannot starve the loop's
# default executor (DNS lookups, file I/O), and a burst cannot open hundreds of threads.
_max_workers = 16
_executor: ThreadPoolExecutor | None = None


def client_options(settings: PlatformSettings) -> dict[str, Any]:
    """Keyword arguments for ``MongoClient`` (also accepted by ``mongoengine.connect``)."""
    return {
        # Timestamps come back as aware UTC datetimes, never naive ones.
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "appname": settings.service,
        # Fail within seconds when the database is unreachable instead of pymongo's 30 s.
        "serverSelectionTimeoutMS": 5_000,
        "connectTimeoutMS": 5_000,
        "socketTimeoutMS": 30_000,
        "retryWrites": True,
    }


def make_client(settings: PlatformSettings) -> MongoClient[Doc]:
    """A pymongo client for ``settings.mongodb_uri``; ConfigError if the URI is empty."""
    if not settings.mongodb_uri:
        raise ConfigError("SSG_MONGODB_URI: required")
    global _max_workers
    if _executor is None:  # the pool is sized once, by the first client of the process
        _max_workers = settings.mongo_threads
    return MongoClient(settings.mongodb_uri, **client_options(settings))


def make_read_client(settings: PlatformSettings) -> AsyncMongoClient[Doc]:
    """A native asyncio client for ``settings.mongodb_uri`` with the same options as
    ``make_client``; it connects on its first use, in the loop that uses it."""
    if not settings.mongodb_uri:
        raise ConfigError("SSG_MONGODB_URI: required")
    return AsyncMongoClient(settings.mongodb_uri, **client_options(settings))


def default_read_database(client: AsyncMongoClient[Doc]) -> AsyncDatabase[Doc]:
    """The database named in the read client's URI path; ConfigError if the URI names none."""
    return _named(client.get_default_database)


def async_reads(
    settings: PlatformSettings,
) -> tuple[AsyncMongoClient[Doc] | None, AsyncDatabase[Doc] | None]:
    """The asyncio read client and its default database when SSG_MONGO_ASYNC_READS is on,
    else (None, None): Get calls then read through the thread pool."""
    if not settings.mongo_async_reads:
        return None, None
    client = make_read_client(settings)
    return client, default_read_database(client)


async def close_read_client(client: AsyncMongoClient[Doc] | None) -> None:
    """Close an asyncio read client (in the event loop that used it); None is a no-op."""
    if client is not None:
        await client.close()


def default_database(client: MongoClient[Doc]) -> Database[Doc]:
    """The database named in the client's URI path; ConfigError if the URI names none."""
    return _named(client.get_default_database)


def _named(get_default_database: Callable[[], T]) -> T:
    try:
        return get_default_database()
    except Exception as exc:  # pymongo raises ConfigurationError without a db in the URI
        raise ConfigError(f"SSG_MONGODB_URI: must name a database ({exc})") from None


def connect_mongoengine(
    settings: PlatformSettings, alias: str = mongoengine.DEFAULT_CONNECTION_NAME
) -> tuple[MongoClient[Doc], Database[Doc]]:
    """Register a mongoengine connection with our client options; return its pymongo client and db."""
    if not settings.mongodb_uri:
        raise ConfigError("SSG_MONGODB_URI: required")
    mongoengine.connect(host=settings.mongodb_uri, alias=alias, **client_options(settings))
    return mongoengine_handles(alias)


def mongoengine_handles(
    alias: str = mongoengine.DEFAULT_CONNECTION_NAME,
) -> tuple[MongoClient[Doc], Database[Doc]]:
    """The pymongo client and database behind an existing mongoengine connection alias."""
    client: MongoClient[Doc] = mongoengine.get_connection(alias)
    db: Database[Doc] = mongoengine.get_db(alias)
    return client, db


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_max_workers, thread_name_prefix="ssg-mongo")
    return _executor


async def run_sync(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking driver call in the bounded Mongo thread pool, keeping contextvars (trace id)."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)


def _path(doc: Doc, field: str) -> Any:
    for part in field.split("."):
        doc = doc[part]
    return doc


def merged_page(
    collection: Collection[Doc], filters: list[Doc], field: str, direction: int, limit: int
) -> list[Doc]:
    """The first limit documents ordered by field (unique per document) over the union of
    filters, each run as its own query (so that each can be served by an index, where one
    ``$or`` of them often is not), without repeating a document two filters match."""
    runs = [list(collection.find(f).sort(field, direction).limit(limit)) for f in filters]
    page: list[Doc] = []
    seen: set[Any] = set()
    merged = heapq.merge(*runs, key=lambda d: _path(d, field), reverse=direction < 0)
    for doc in merged:
        if doc["_id"] not in seen:
            seen.add(doc["_id"])
            page.append(doc)
            if len(page) == limit:
                break
    return page


def keyset_after(field: str, value: Any, last_id: str, *, descending: bool = True) -> Doc:
    """The filter of what follows (value, last_id) in a list sorted by field, then _id, the same way.

    Keyset paging: with an index on (field, _id) each page is a range read, however deep.
    """
    op = "$lt" if descending else "$gt"
    return {"$or": [{field: {op: value}}, {field: value, "_id": {op: last_id}}]}
