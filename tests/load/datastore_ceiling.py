"""The datastore alone: what a write path costs MongoDB (here the SecantusDB stand-in) with no
service, no gRPC and no validation in front of it, so that a benchmark can show what share of a
throughput goal the datastore itself allows.

The documents are built before they are timed, from the service's own document functions, and
written to the service's own database and collections (the same indexes, the same stored size);
only the writes are timed. ``TransactionWriter`` runs each unit as one transaction with majority
write concern, as ``ssg.platform.events.outbox.write_with_events`` does; ``insert_many`` writes a
batch as one command, with no transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.write_concern import WriteConcern

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.events.outbox import OUTBOX_COLLECTION, row_document

Doc = dict[str, Any]
Write = tuple[str, Doc]  # (collection, document)
THREADS = 16  # as many as a service's MongoDB thread pool (SSG_MONGO_THREADS' default)


def outbox_row(topic: str, envelope: envelope_pb2.Envelope) -> Write:
    """The outbox row the platform's unit of work writes for one event."""
    return (OUTBOX_COLLECTION, row_document(topic, envelope))


class TransactionWriter:
    """Each unit of writes as one transaction (insert_one per document, then commit), from a
    pool of THREADS threads, as a service's command runs."""

    def __init__(self, client: MongoClient[Doc], db: Database[Doc], threads: int = THREADS):
        self.client = client
        self.db = db
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="datastore")

    def write(self, unit: Sequence[Write]) -> None:
        """One transaction inserting the unit's documents, in order."""

        def body(session: ClientSession) -> None:
            for collection, doc in unit:
                self.db[collection].insert_one(doc, session=session)

        with self.client.start_session() as session:
            session.with_transaction(body, write_concern=WriteConcern("majority"))

    async def write_async(self, unit: Sequence[Write]) -> None:
        """write, off the event loop on the writer's own pool."""
        await asyncio.get_running_loop().run_in_executor(self.pool, self.write, unit)

    def close(self) -> None:
        """Stop the pool's threads."""
        self.pool.shutdown(wait=True)


def insert_many(db: Database[Doc], collection: str, docs: Sequence[Doc]) -> int:
    """Insert docs with one insert_many (no transaction); return how many were written."""
    return len(db[collection].insert_many(list(docs)).inserted_ids)
