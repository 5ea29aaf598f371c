"""The worker's SQLite store: one connection to one file, holding the ledger, the track queue and the outbox.

`WorkerStore` is assembled from one class per job, each in its own module: `ledger` (finalized blocks
projected into rows, with the checkpoint, in one transaction), `tracks` (the scoring stage's queue),
`settlement` (the read model an epoch is settled from) and `outbox` (settled payouts until they are paid).
"""

from __future__ import annotations

import aiosqlite

from offchain.sqlite import SqliteFile
from offchain.store.ledger import GapError, IngestResult, Ledger
from offchain.store.outbox import OutboxPayout, PayoutOutbox
from offchain.store.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, add_retry_columns
from offchain.store.settlement import SettlementReads
from offchain.store.tracks import TrackQueue, TrackRow

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "GapError",
    "IngestResult",
    "OutboxPayout",
    "StoreError",
    "TrackRow",
    "WorkerStore",
]


class StoreError(Exception):
    """The database is unusable (wrong schema version, corrupt file, ...)."""


class WorkerStore(SqliteFile, Ledger, TrackQueue, SettlementReads, PayoutOutbox):
    """Async access to the worker's SQLite file. One instance per process; it owns the connection."""

    SCHEMA = SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION
    MIGRATIONS = MIGRATIONS
    ERROR = StoreError
    OWNER = "worker"

    @classmethod
    async def _prepare(cls, conn: aiosqlite.Connection) -> None:
        await add_retry_columns(conn)

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, sql in (
            ("events", "SELECT COUNT(*) FROM events"),
            ("listens", "SELECT COUNT(*) FROM listens"),
            ("tracks", "SELECT COUNT(*) FROM tracks"),
            ("tracks_pending", "SELECT COUNT(*) FROM tracks WHERE status='pending'"),
            ("tracks_rejected", "SELECT COUNT(*) FROM tracks WHERE status='rejected'"),
            ("tracks_published", "SELECT COUNT(*) FROM tracks WHERE status='published'"),
            ("payouts_pending", "SELECT COUNT(*) FROM payouts WHERE status!='paid'"),
            ("payouts_paid", "SELECT COUNT(*) FROM payouts WHERE status='paid'"),
            ("epochs_settled", "SELECT COUNT(*) FROM epochs"),
        ):
            row = await (await self._db.execute(sql)).fetchone()
            out[name] = int(row[0]) if row else 0
        return out
