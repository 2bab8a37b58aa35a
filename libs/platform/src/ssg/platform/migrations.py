"""Data migrations that run once per database, recorded by a marker document.

A backfill that looks for documents still lacking a field costs a query at every start, and on
a store without an index for "field is missing" that query reads the whole collection. A marker
in ``migrations`` (``_id`` = the migration's name) makes later starts one point read instead.

Migrations must be idempotent: two replicas starting together may both run one before either
records it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from ssg.platform.clock import utc_now
from ssg.platform.mongo import Doc

MIGRATIONS_COLLECTION = "migrations"
INDEX_NOT_FOUND = 27  # MongoDB's error code for dropping an index that is not there


def has_run(db: Database[Doc], name: str) -> bool:
    """Whether the migration called name has been recorded as done in db."""
    return db[MIGRATIONS_COLLECTION].find_one({"_id": name}, projection={"_id": 1}) is not None


def run_once(db: Database[Doc], name: str, migrate: Callable[[], object]) -> bool:
    """Run migrate unless db records name as done, then record it; True when it ran."""
    if has_run(db, name):
        return False
    migrate()
    # An upsert, so that a replica finishing second records the same marker without an error.
    with contextlib.suppress(DuplicateKeyError):  # a concurrent upsert recorded it first
        db[MIGRATIONS_COLLECTION].update_one(
            {"_id": name}, {"$setOnInsert": {"done_at": utc_now()}}, upsert=True
        )
    return True


def drop_retired_indexes(collection: Collection[Doc], names: tuple[str, ...]) -> None:
    """Drop the indexes of collection called names that exist (ones newer indexes replace)."""
    present = set(collection.index_information())
    for name in names:
        if name in present:
            try:
                collection.drop_index(name)
            except OperationFailure as exc:
                # Another replica starting at the same time dropped it first.
                if exc.code != INDEX_NOT_FOUND:
                    raise
