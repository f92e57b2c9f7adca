"""Every MongoDB query of the scheduler (collections ``fleet``, ``drones``, ``leases``,
``assignments``, ``plans``, ``releases``; layouts in ``records.py`` and the README).

No document is ever updated: every write is an insert with a unique ``_id``, which is atomic on
every MongoDB wire-protocol store; the only deletions are superseded lease generations
(``compaction.py``). FerretDB 1.24's SQLite handler (the test and local
store) shapes this: its ``findAndModify`` is not atomic (it reads, then writes the document back
by ``_id`` with no condition), and a bare ``_id`` is the only filter it passes down to SQLite
(an index lookup with the build ``make setup`` makes; upstream 1.24.2 scans for it too); any other
filter has every document decoded and matched in FerretDB. So the request paths insert and read by
``_id``, a delivery's re-plans included (one by one; only past ``PLAN_PROBES`` of them does a
query read the rest: its index on MongoDB and Cosmos DB, a scan of ``plans`` on FerretDB).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, CollectionInvalid, DuplicateKeyError

from .fleet import Fleet
from .records import AssignmentRecord, Document, Lease, lease_id

DUPLICATE_KEY = 11000
#: Re-plans of a delivery looked up one by one (by ``_id``) before querying for the rest.
PLAN_PROBES = 4
FLEET_DOC_ID = "fleet"


@dataclass(frozen=True, slots=True)
class SeedResult:
    inserted: int
    already_seeded: bool


class SchedulerRepository:
    """The queries. ``cache_size`` assignment documents are kept in memory: they never change
    (re-plans and releases are documents of their own), so a cached one is never stale."""

    def __init__(self, database: AsyncDatabase[Document], *, cache_size: int = 20_000) -> None:
        self._cache: dict[str, AssignmentRecord] = {}
        self._cache_size = cache_size
        self.fleet_meta = database["fleet"]
        self.drones = database["drones"]
        self.leases = database["leases"]
        self.assignments = database["assignments"]
        self.plans = database["plans"]
        self.releases = database["releases"]

    # --- start-up ------------------------------------------------------------------------------

    async def ensure_indexes(self) -> None:
        """Create the collections and indexes (idempotent: existing ones are left alone).

        Creating every collection up front keeps the first release or re-plan from creating its
        collection under load (FerretDB stalls concurrent writers while it does).
        """
        database = self.assignments.database
        existing = set(await database.list_collection_names())
        for collection in (
            self.fleet_meta,
            self.drones,
            self.leases,
            self.assignments,
            self.plans,
            self.releases,
        ):
            if collection.name not in existing:
                with contextlib.suppress(CollectionInvalid):  # another replica made it first
                    await database.create_collection(collection.name)
        await self.assignments.create_indexes(
            [IndexModel([("ownerId", ASCENDING), ("assignedAt", ASCENDING)], name="owner_time")]
        )
        await self.leases.create_indexes(
            [IndexModel([("droneId", ASCENDING), ("gen", DESCENDING)], name="drone_gen")]
        )
        await self.plans.create_indexes(
            [IndexModel([("deliveryId", ASCENDING), ("n", ASCENDING)], name="delivery_n")]
        )
        await self.drones.create_indexes(
            [IndexModel([("base", ASCENDING), ("droneClass", ASCENDING)], name="base_class")]
        )

    async def seed(self, fleet: Fleet, now: dt.datetime) -> SeedResult:
        """Insert the fleet's drones unless this exact fleet is recorded as seeded.

        Drone ids are deterministic and inserted unordered, duplicates ignored: replicas starting
        together insert each drone once between them. The fleet document is written last, so a
        seeding cut short is redone on the next start.
        """
        marker = await self.fleet_meta.find_one({"_id": FLEET_DOC_ID})
        if marker is not None and marker.get("fingerprint") == fleet.fingerprint:
            return SeedResult(inserted=0, already_seeded=True)
        documents = [
            {"_id": d.id, "base": d.base.name, "droneClass": d.drone_class.name, "seededAt": now}
            for d in fleet.drones
        ]
        try:
            result = await self.drones.insert_many(documents, ordered=False)
            inserted = len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            inserted = int(exc.details.get("nInserted", 0))
        await self.fleet_meta.replace_one(
            {"_id": FLEET_DOC_ID},
            {"fingerprint": fleet.fingerprint, **fleet.definition(), "seededAt": now},
            upsert=True,
        )
        return SeedResult(inserted=inserted, already_seeded=False)

    async def all_leases(self) -> AsyncIterator[Lease]:
        """The whole lease log: every drone's latest generation and the recent ones (kept
        compact by ``compaction.py``)."""
        async for doc in self.leases.find({}, batch_size=5000):
            yield Lease.from_document(doc)

    async def delete_leases(self, ids: list[str]) -> int:
        """Delete superseded generations by id; how many were deleted."""
        result = await self.leases.delete_many({"_id": {"$in": ids}})
        return int(result.deleted_count)

    # --- leases ---------------------------------------------------------------------------------

    async def insert_lease(self, lease: Lease) -> None:
        """Raises ``DuplicateKeyError`` when this generation of the drone is taken already."""
        await self.leases.insert_one(lease.document())

    async def lease(self, drone_id: str, gen: int) -> Lease | None:
        doc = await self.leases.find_one({"_id": lease_id(drone_id, gen)})
        return None if doc is None else Lease.from_document(doc)

    async def latest_lease(self, drone_id: str) -> Lease | None:
        doc = await self.leases.find_one({"droneId": drone_id}, sort=[("gen", DESCENDING)])
        return None if doc is None else Lease.from_document(doc)

    # --- assignments ----------------------------------------------------------------------------

    async def insert_assignment(self, record: AssignmentRecord) -> None:
        """Raises ``DuplicateKeyError`` when the delivery has an assignment already."""
        await self.assignments.insert_one(record.document())
        self._keep(record)

    def _keep(self, record: AssignmentRecord) -> None:
        if self._cache_size == 0:
            return
        self._cache[record.delivery_id] = record
        if len(self._cache) > self._cache_size:
            del self._cache[next(iter(self._cache))]

    async def assignment(
        self, delivery_id: str, *, with_release: bool = True
    ) -> AssignmentRecord | None:
        """The assignment with its latest re-plan and (unless ``with_release`` is false) its
        release, if any.

        The assignment document comes from the cache when it can (no round trip at all). Re-plans
        are numbered 1, 2, ... under ``"<deliveryId>:<n>"`` and looked up by ``_id``, the next
        until there is none (an index lookup on every store, FerretDB included, whose other
        queries scan the collection); past ``PLAN_PROBES`` of them, the rest in one query.
        """
        record = self._cache.get(delivery_id)
        if record is None:
            doc = await self.assignments.find_one({"_id": delivery_id})
            if doc is None:
                return None
            record = AssignmentRecord.from_document(doc)
            self._keep(record)
        for _ in range(PLAN_PROBES):
            plan = await self.plans.find_one({"_id": f"{delivery_id}:{record.plan_no + 1}"})
            if plan is None:
                break
            record = record.with_plan(plan)
        else:  # re-planned again and again: the rest in one query
            later = self.plans.find(
                {"deliveryId": delivery_id, "n": {"$gt": record.plan_no}}, sort=[("n", ASCENDING)]
            )
            async for plan in later:
                if int(plan["n"]) == record.plan_no + 1:
                    record = record.with_plan(plan)
        if with_release:
            release = await self.releases.find_one({"_id": delivery_id})
            if release is not None:
                record = record.replace(released_at=release["releasedAt"])
        return record

    async def insert_release(
        self, delivery_id: str, released_at: dt.datetime, now: dt.datetime
    ) -> bool:
        """Record the delivery's release: True if this was its first, False if it had one (a
        later release changes nothing)."""
        try:
            await self.releases.insert_one(
                {"_id": delivery_id, "releasedAt": released_at, "at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    async def insert_plan(self, record: AssignmentRecord, now: dt.datetime) -> None:
        """Store ``record`` as re-plan ``record.plan_no``; raises ``DuplicateKeyError`` when
        another re-plan took that number."""
        await self.plans.insert_one(record.plan_document(now))

    async def owner_assignments(
        self, owner_id: str, start: dt.datetime, end: dt.datetime
    ) -> list[AssignmentRecord]:
        """The owner's assignments made in ``[start, end)``, re-plans and releases applied."""
        cursor = self.assignments.find(
            {"ownerId": owner_id, "assignedAt": {"$gte": start, "$lt": end}}, batch_size=5000
        )
        records = {doc["_id"]: AssignmentRecord.from_document(doc) async for doc in cursor}
        if not records:
            return []
        ids = list(records)
        plans = self.plans.find({"deliveryId": {"$in": ids}}, sort=[("n", ASCENDING)])
        async for plan in plans:
            records[plan["deliveryId"]] = records[plan["deliveryId"]].with_plan(plan)
        async for release in self.releases.find({"_id": {"$in": ids}}):
            record = records[release["_id"]]
            records[release["_id"]] = record.replace(released_at=release["releasedAt"])
        return list(records.values())
