"""Every MongoDB query of the package service.

Layout: one collection, ``packages``, one document per package of an account::

    {"_id": "<account id>/<package id>", "accountId": "<account id>", "packageId": "<package id>",
     "size": "Small", "weight": 10.0, "tag": "mytag" | null,
     "ownerId": "<owner id>", "createdAt": <date>, "updatedAt": <date>}

Packages are kept per account: the same package id in two accounts is two packages, and every
query names the account, so one account never reads or changes another's. The ``_id`` joins the
two with ``/``, which package ids never contain (and is split at the last one).

``ownerId`` is absent until a ``PUT`` names an owner (FerretDB drops ``null`` values set with
``$setOnInsert``, so "no owner" is spelled by absence on every store).

Indexes: ``_id`` (MongoDB's own, unique) and ``accountId_1_ownerId_1_createdAt_1`` on
``(accountId, ownerId, createdAt)``, which serves the monthly summary. Indexes are created
idempotently at start-up.

The queries are the subset that MongoDB, Azure Cosmos DB for MongoDB and FerretDB (SQLite) all
answer: ``insertOne``, single-document ``updateOne`` (with ``upsert``, ``$set`` and
``$setOnInsert``), ``findOne`` by ``_id`` with a projection, and one aggregation (``$match`` +
``$group`` with ``$sum`` of a field).

PyMongo's errors leave this module as they are: one that means "not now" (unreachable, timed
out, Cosmos DB throttling) is answered 503 with ``Retry-After`` by the library's handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

logger = logging.getLogger(__name__)

COLLECTION = "packages"
SUMMARY_INDEX = "accountId_1_ownerId_1_createdAt_1"

Document = dict[str, Any]


def document_id(account_id: str, package_id: str) -> str:
    """The ``_id`` of an account's package."""
    return f"{account_id}/{package_id}"


@dataclass(frozen=True, slots=True)
class PackageRecord:
    id: str
    size: str
    weight: float
    tag: str | None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PackageRecord:
        return cls(
            id=str(document["_id"]).rpartition("/")[2],
            size=str(document["size"]),
            weight=float(document["weight"]),
            tag=document.get("tag"),
        )


def _new_document(
    record: PackageRecord, account_id: str, owner_id: str | None, now: dt.datetime
) -> Document:
    document: Document = {
        "_id": document_id(account_id, record.id),
        "accountId": account_id,
        "packageId": record.id,
        "size": record.size,
        "weight": record.weight,
        "tag": record.tag,
        "createdAt": now,
        "updatedAt": now,
    }
    if owner_id is not None:
        document["ownerId"] = owner_id
    return document


class PackageRepository:
    """Packages in one MongoDB collection."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        """Create the summary index (a no-op when it exists)."""
        await self.collection.create_index(
            [("accountId", ASCENDING), ("ownerId", ASCENDING), ("createdAt", ASCENDING)],
            name=SUMMARY_INDEX,
        )

    async def upsert(
        self, record: PackageRecord, *, account_id: str, owner_id: str | None, now: dt.datetime
    ) -> bool:
        """Store ``record`` whole, atomically; True when this call created the package.

        An ``insertOne`` first: it succeeds for exactly one of any number of concurrent calls
        for a new id (the ``_id`` index is unique). The others, and every update, get a
        duplicate key error and then ``$set`` the fields (``upsert`` kept so that even a
        package deleted in between is stored, and counted as created). Inserting first suits the
        common case, a new package: FerretDB (SQLite) inserts several times faster than it
        upserts (see the README), and an update pays one extra round trip, the refused insert.
        """
        try:
            await self.collection.insert_one(_new_document(record, account_id, owner_id, now))
        except DuplicateKeyError:
            pass
        else:
            return True
        changes: Document = {
            "size": record.size,
            "weight": record.weight,
            "tag": record.tag,
            "updatedAt": now,
        }
        if owner_id is not None:
            changes["ownerId"] = owner_id
        result = await self.collection.update_one(
            {"_id": document_id(account_id, record.id)},
            {
                "$set": changes,
                "$setOnInsert": {
                    "createdAt": now,
                    "accountId": account_id,
                    "packageId": record.id,
                },
            },
            upsert=True,
        )
        return result.upserted_id is not None

    async def insert(
        self, record: PackageRecord, *, account_id: str, owner_id: str | None, now: dt.datetime
    ) -> None:
        """Store a new package; ``DuplicateKeyError`` when the id is taken."""
        await self.collection.insert_one(_new_document(record, account_id, owner_id, now))

    async def get(self, account_id: str, package_id: str) -> PackageRecord | None:
        document = await self.collection.find_one(
            {"_id": document_id(account_id, package_id)},
            projection={"size": 1, "weight": 1, "tag": 1},
        )
        return None if document is None else PackageRecord.from_document(document)

    async def update(
        self, account_id: str, package_id: str, changes: Mapping[str, Any], *, now: dt.datetime
    ) -> bool:
        """Change some fields of an existing package; False when there is no such package."""
        result = await self.collection.update_one(
            {"_id": document_id(account_id, package_id)},
            {"$set": {**changes, "updatedAt": now}},
        )
        return result.matched_count > 0

    async def total_weight(
        self, account_id: str, owner_id: str, start: dt.datetime, end: dt.datetime
    ) -> float:
        """The summed weight of ``owner_id``'s packages in the account created in
        ``[start, end)``."""
        match = {"accountId": account_id, "ownerId": owner_id}
        pipeline: list[Document] = [
            {"$match": {**match, "createdAt": {"$gte": start, "$lt": end}}},
            {"$group": {"_id": None, "totalWeight": {"$sum": "$weight"}}},
        ]
        cursor = await self.collection.aggregate(pipeline)
        rows = await cursor.to_list()
        return float(rows[0]["totalWeight"]) if rows else 0.0


class IndexSetup:
    """Creates the indexes in the background at start-up, retrying until the store answers.

    The app starts (and answers ``/healthz``) while MongoDB is still unreachable; the ``indexes``
    readiness check fails, naming the last error, until the indexes exist.
    """

    def __init__(
        self, repository: PackageRepository, *, first_delay: float = 0.5, max_delay: float = 10.0
    ) -> None:
        self.repository = repository
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.done = asyncio.Event()
        self.last_error: str = "not attempted yet"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="package-indexes")

    async def _run(self) -> None:
        delay = self.first_delay
        while True:
            try:
                await self.repository.ensure_indexes()
            except PyMongoError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("creating indexes failed; retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
            else:
                self.done.set()
                return

    async def check(self) -> None:
        """Readiness: raises until the indexes exist."""
        if not self.done.is_set():
            raise RuntimeError(f"indexes not created yet ({self.last_error})")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
