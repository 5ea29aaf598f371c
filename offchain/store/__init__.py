"""The worker's SQLite store: one connection to one file, holding the ledger, the track queue and the outbox.

`WorkerStore` is assembled from one class per job, each in its own module: `ledger` (finalized blocks
projected into rows, with the checkpoint, in one transaction), `tracks` (the scoring stage's queue),
`settlement` (the read model an epoch is settled from) and `outbox` (settled payouts until they are paid).
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from offchain.sqlite import open_database
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


class WorkerStore(Ledger, TrackQueue, SettlementReads, PayoutOutbox):
    """Async access to the worker's SQLite file. One instance per process; it owns the connection."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._db = conn
        self.path = path

    @classmethod
    async def open(cls, path: Path | str) -> WorkerStore:
        path = Path(path)
        conn = await open_database(path, SCHEMA, SCHEMA_VERSION, StoreError, "worker", MIGRATIONS)
        try:
            await add_retry_columns(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    async def close(self) -> None:
        await self._db.close()

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
