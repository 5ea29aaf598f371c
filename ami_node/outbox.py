"""The submitter's outbox: one SQLite file per signing key holding queued payouts and calls and their
transactions, with every statement the submitter runs on it.

A payout or call row moves pending -> assigned (to a transaction) -> confirmed | failed. A transaction row
moves planned -> signed -> submitted -> included | expired | usurped | dispatch_failed | rejected | abandoned.
Methods do not commit unless they say so: the submitter decides where each step's transaction ends.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ami_node.payouts import Payout
from ami_node.port import SignedTx

__all__ = [
    "OUTBOX_MIGRATIONS",
    "OUTBOX_SCHEMA_VERSION",
    "CallStatus",
    "Outbox",
    "PayoutConflict",
    "SubmitterCounts",
    "SubmitterError",
]


class SubmitterError(Exception):
    """Bad input to the submitter (the message says what is wrong); nothing was stored."""


class PayoutConflict(SubmitterError):
    """A payout id was queued before with different contents; ids must identify one payout forever."""


@dataclass(frozen=True)
class SubmitterCounts:
    """Outbox rows by state (payouts and calls together), for metrics and `ami` status output."""

    pending: int
    submitted: int
    confirmed: int
    failed: int


@dataclass(frozen=True)
class CallStatus:
    key: str
    state: str
    error: str | None
    block_number: int | None
    extrinsic_index: int | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL,  -- planned signed submitted included expired usurped dispatch_failed rejected
    hash TEXT, data BLOB, nonce INTEGER, era_birth INTEGER, era_death INTEGER,
    block_number INTEGER, extrinsic_index INTEGER, error TEXT,
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_state ON txs(state);
CREATE TABLE IF NOT EXISTS payouts (
    id BLOB PRIMARY KEY,
    epoch INTEGER NOT NULL, to_addr TEXT NOT NULL, amount TEXT NOT NULL, kind INTEGER NOT NULL,
    state TEXT NOT NULL,               -- pending, assigned, confirmed, failed
    batch INTEGER, tx_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
    block_number INTEGER, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS payouts_state ON payouts(state, epoch, seq);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    contract TEXT NOT NULL, abi TEXT NOT NULL, message TEXT NOT NULL, data BLOB NOT NULL, value TEXT NOT NULL,
    state TEXT NOT NULL,               -- pending, assigned, confirmed, failed
    tx_id INTEGER, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,
    block_number INTEGER, extrinsic_index INTEGER, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_state ON calls(state, seq);
"""

OUTBOX_SCHEMA_VERSION = 1
"""`PRAGMA user_version` of an outbox this code writes. Version 0 is a file from before versioning, whose
layout is version 1's (it is stamped on open); a newer version is refused, untouched."""
OUTBOX_MIGRATIONS: dict[int, str] = {0: ""}
"""Script that brings an outbox from version v to v + 1, run in one transaction with its version stamp."""

# A call whose dispatch keeps failing although its dry run passed (e.g. state changed in between) is given up
# after this many transactions instead of being retried forever.
MAX_ATTEMPTS = 3
_LIVE = "('signed', 'submitted')"


class Outbox:
    """The outbox file of one signer. `open()` checks its schema version and owner; `db` is the connection."""

    def __init__(self, path: Path, signer: str) -> None:
        self.path = path
        self.signer = signer
        self._db: aiosqlite.Connection | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise SubmitterError("submitter is not open; use `async with Submitter(...)` or await open()")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path)
        try:
            await self._migrate(db)
            owner = await self._meta_get(db, "signer")
        except sqlite3.DatabaseError as exc:
            await db.close()
            raise SubmitterError(
                f"{self.path} is not a usable submitter outbox ({exc}); point db_path at another file"
            ) from None
        if owner is None:
            await db.execute("INSERT INTO meta(key, value) VALUES ('signer', ?)", (self.signer,))
        elif owner != self.signer:
            await db.close()
            raise SubmitterError(
                f"outbox {self.path} belongs to signer {owner}, not {self.signer}; one database per key"
            )
        await db.commit()
        self._db = db

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        # The version first: a refused file stays byte for byte as it was (WAL mode rewrites its header).
        rows = list(await (await db.execute("PRAGMA user_version")).fetchall())
        version = int(rows[0][0]) if rows else 0
        if version > OUTBOX_SCHEMA_VERSION:
            await db.close()
            raise SubmitterError(
                f"outbox {self.path} has schema version {version}, written by a newer AMI node; this "
                f"one knows up to {OUTBOX_SCHEMA_VERSION}: upgrade ami, or restore a backup made by this "
                "version"
            )
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        for v in range(version, OUTBOX_SCHEMA_VERSION):
            # One transaction per step: an interrupted upgrade leaves the file at a version it knows.
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{OUTBOX_MIGRATIONS[v]}\n;PRAGMA user_version={v + 1};\nCOMMIT;"
            )
        await db.executescript(_SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def commit(self) -> None:
        await self.db.commit()

    async def rollback(self) -> None:
        await self.db.rollback()

    # ------------------------------------------------------------------ meta

    @staticmethod
    async def _meta_get(db: aiosqlite.Connection, key: str) -> str | None:
        async with db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def meta_get(self, key: str) -> str | None:
        return await self._meta_get(self.db, key)

    async def meta_set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def next_batch(self, epoch: int) -> int:
        """The next unused batch number of `epoch` (counted in the outbox; the counter moves on)."""
        batch = int(await self.meta_get(f"batch:{epoch}") or 0)
        await self.meta_set(f"batch:{epoch}", str(batch + 1))
        return batch

    # ------------------------------------------------------------------ enqueue

    async def _known_payouts(self, ids: list[bytes]) -> dict[bytes, tuple[int, str, int, int]]:
        known: dict[bytes, tuple[int, str, int, int]] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with self.db.execute(
                f"SELECT id, epoch, to_addr, amount, kind FROM payouts WHERE id IN ({marks})", chunk
            ) as cur:
                for pid, e, to, amount, kind in await cur.fetchall():
                    known[bytes(pid)] = (int(e), str(to), int(amount), int(kind))
        return known

    async def add_payouts(self, epoch: int, payouts: Sequence[Payout]) -> int:
        """Store payouts for `epoch` and commit; returns how many were new. The same id with other contents
        raises PayoutConflict and stores nothing."""
        db = self.db
        try:
            known = await self._known_payouts([p.id for p in payouts])
            rows = []
            seq = int(await self.meta_get("seq") or 0)
            for p in payouts:
                old = known.get(p.id)
                if old is not None:
                    if old != (epoch, p.to, p.amount, p.kind):
                        raise PayoutConflict(
                            f"payout 0x{p.id.hex()} was queued before with other contents "
                            f"(epoch {old[0]}, to {old[1]}, amount {old[2]}, kind {old[3]})"
                        )
                    continue
                known[p.id] = (epoch, p.to, p.amount, p.kind)  # a repeat inside this call is a repeat too
                seq += 1
                rows.append((p.id, epoch, p.to, str(p.amount), p.kind, seq))
            await db.executemany(
                "INSERT INTO payouts(id, epoch, to_addr, amount, kind, state, seq) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                rows,
            )
            await self.meta_set("seq", str(seq))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        return len(rows)

    async def add_call(
        self, key: str, contract: str, message: str, data: bytes, abi: str, value: int
    ) -> bool:
        """Store one call under `key` and commit; False when the key was queued before with the same input."""
        db = self.db
        async with db.execute("SELECT data, contract FROM calls WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        if row is not None:
            if bytes(row[0]) != data or row[1] != contract:
                raise SubmitterError(f"call {key!r} was queued before with another input")
            return False
        seq = int(await self.meta_get("seq") or 0) + 1
        await self.meta_set("seq", str(seq))
        await db.execute(
            "INSERT INTO calls(key, contract, abi, message, data, value, state, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (key, contract, abi, message, data, str(value), seq),
        )
        await db.commit()
        return True

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """All rows of one query."""
        async with self.db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    # ------------------------------------------------------------------ status

    async def counts(self) -> SubmitterCounts:
        totals = {"pending": 0, "assigned": 0, "confirmed": 0, "failed": 0}
        for table in ("payouts", "calls"):
            async with self.db.execute(f"SELECT state, COUNT(*) FROM {table} GROUP BY state") as cur:
                for state, n in await cur.fetchall():
                    totals[state] = totals.get(state, 0) + n
        return SubmitterCounts(totals["pending"], totals["assigned"], totals["confirmed"], totals["failed"])

    async def payout_status(self, payout_id: bytes) -> tuple[str, str | None, int | None] | None:
        async with self.db.execute(
            "SELECT state, error, block_number FROM payouts WHERE id = ?", (payout_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else (row[0], row[1], row[2])

    async def failed_payouts(self) -> list[tuple[bytes, str]]:
        async with self.db.execute(
            "SELECT id, error FROM payouts WHERE state = 'failed' ORDER BY seq"
        ) as cur:
            return [(bytes(r[0]), str(r[1])) for r in await cur.fetchall()]

    async def call_status(self, key: str) -> CallStatus | None:
        async with self.db.execute(
            "SELECT state, error, block_number, extrinsic_index FROM calls WHERE key = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else CallStatus(key, row[0], row[1], row[2], row[3])

    async def requeue_failed(self) -> int:
        """Put failed payouts and calls back to pending, and commit; returns how many."""
        n = 0
        for table in ("payouts", "calls"):
            cur = await self.db.execute(
                f"UPDATE {table} SET state = 'pending', error = NULL, attempts = 0 WHERE state = 'failed'"
            )
            n += cur.rowcount
        await self.db.commit()
        return n

    # ------------------------------------------------------------------ work to plan

    async def pending_calls(self) -> list[Any]:
        """(key, contract, abi, message, data, value, error) of pending calls, oldest first."""
        return await self._rows(
            "SELECT key, contract, abi, message, data, value, error FROM calls"
            " WHERE state = 'pending' ORDER BY seq"
        )

    async def pending_payouts(self) -> list[Any]:
        """(id, epoch, to, amount, kind, error) of pending payouts, by epoch then age."""
        return await self._rows(
            "SELECT id, epoch, to_addr, amount, kind, error FROM payouts"
            " WHERE state = 'pending' ORDER BY epoch, seq"
        )

    async def fail_call(self, key: str, error: str) -> None:
        """Fail one call and commit."""
        await self.db.execute("UPDATE calls SET state = 'failed', error = ? WHERE key = ?", (error, key))
        await self.db.commit()

    async def fail_payouts(self, ids: Sequence[bytes], error: str) -> None:
        """Fail payouts and commit."""
        await self.db.executemany(
            "UPDATE payouts SET state = 'failed', error = ? WHERE id = ?", [(error, pid) for pid in ids]
        )
        await self.db.commit()

    async def confirm_already_paid(self, payout_id: bytes) -> None:
        """A dry run found this payout paid on chain (by an earlier outbox): confirm it, and commit."""
        await self.db.execute(
            "UPDATE payouts SET state = 'confirmed', error = 'already paid on chain' WHERE id = ?",
            (payout_id,),
        )
        await self.db.commit()

    # ------------------------------------------------------------------ transactions

    async def plan_tx(
        self, call_keys: Sequence[str | None], payouts: Sequence[tuple[bytes, int | None]]
    ) -> int:
        """A new planned transaction carrying these calls and (payout id, batch) pairs, assigned to it;
        commits. Returns its id."""
        db = self.db
        now = time.time()
        cur = await db.execute(
            "INSERT INTO txs(state, created, updated) VALUES ('planned', ?, ?)", (now, now)
        )
        tx_id = int(cur.lastrowid or 0)
        for key in call_keys:
            if key is not None:
                await db.execute(
                    "UPDATE calls SET state = 'assigned', tx_id = ?, attempts = attempts + 1 WHERE key = ?",
                    (tx_id, key),
                )
        await db.executemany(
            "UPDATE payouts SET state = 'assigned', tx_id = ?, batch = ?, attempts = attempts + 1 "
            "WHERE id = ?",
            [(tx_id, batch, pid) for pid, batch in payouts],
        )
        await db.commit()
        return tx_id

    async def tx_signed(self, tx_id: int, tx: SignedTx) -> None:
        """Store a transaction's signed bytes (before they are submitted), and commit."""
        await self.db.execute(
            "UPDATE txs SET state = 'signed', hash = ?, data = ?, nonce = ?, era_birth = ?, era_death = ?, "
            "updated = ? WHERE id = ?",
            (tx.hash, tx.data, tx.nonce, tx.era_birth, tx.era_death, time.time(), tx_id),
        )
        await self.db.commit()

    async def tx_submitted(self, tx_id: int, *, only_live: bool = False) -> None:
        """Mark a transaction submitted (`only_live`: unless it was settled meanwhile), and commit."""
        where = f"id = ? AND state IN {_LIVE}" if only_live else "id = ?"
        await self.db.execute(
            f"UPDATE txs SET state = 'submitted', updated = ? WHERE {where}", (time.time(), tx_id)
        )
        await self.db.commit()

    async def fail_unsent(self, call_keys: Sequence[str], payout_ids: Sequence[bytes], error: str) -> None:
        """Fail the still pending calls and payouts of a transaction the pool refused for good (no commit)."""
        for table, col, keys in (("payouts", "id", payout_ids), ("calls", "key", call_keys)):
            await self.db.executemany(
                f"UPDATE {table} SET state = 'failed', error = ? WHERE {col} = ? AND state = 'pending'",
                [(error, k) for k in keys],
            )

    async def txs_in(self, states: str) -> list[Any]:
        """(id, hash, data, nonce, era_birth, era_death) of transactions in `states`, e.g. "('signed')"."""
        return await self._rows(
            f"SELECT id, hash, data, nonce, era_birth, era_death FROM txs WHERE state IN {states}"
        )

    async def planned_tx_ids(self) -> list[int]:
        async with self.db.execute("SELECT id FROM txs WHERE state = 'planned'") as cur:
            return [int(r[0]) for r in await cur.fetchall()]

    async def release_tx(self, tx_id: int, new_state: str, error: str | None) -> None:
        """Mark a transaction dead and put its unconfirmed payouts and calls back to pending (no commit)."""
        now = time.time()
        await self.db.execute(
            "UPDATE txs SET state = ?, error = ?, updated = ? WHERE id = ?", (new_state, error, now, tx_id)
        )
        await self.db.execute(
            "UPDATE payouts SET state = 'pending', batch = NULL, tx_id = NULL, error = ? "
            "WHERE tx_id = ? AND state = 'assigned'",
            (error, tx_id),
        )
        await self.db.execute(
            "UPDATE calls SET state = 'pending', tx_id = NULL, error = ? "
            "WHERE tx_id = ? AND state = 'assigned'",
            (error, tx_id),
        )

    # ------------------------------------------------------------------ confirmation

    async def confirm_paid(self, number: int, payout_ids: Sequence[bytes]) -> None:
        """Payouts whose `Paid` event is in finalized block `number` are confirmed (no commit)."""
        await self.db.executemany(
            "UPDATE payouts SET state = 'confirmed', error = NULL, block_number = ? "
            "WHERE id = ? AND state != 'confirmed'",
            [(number, pid) for pid in payout_ids],
        )

    async def tx_included(self, tx_id: int, number: int, index: int) -> None:
        """A transaction succeeded at (block, index): its calls are confirmed; its payouts not seen paid go
        back to pending (a successful distribute emits Paid for every payout; one not seen stays recoverable).
        No commit."""
        db = self.db
        await db.execute(
            "UPDATE txs SET state = 'included', block_number = ?, extrinsic_index = ?, updated = ? "
            "WHERE id = ?",
            (number, index, time.time(), tx_id),
        )
        await db.execute(
            "UPDATE calls SET state = 'confirmed', error = NULL, block_number = ?, extrinsic_index = ? "
            "WHERE tx_id = ? AND state = 'assigned'",
            (number, index, tx_id),
        )
        await db.execute(
            "UPDATE payouts SET state = 'pending', batch = NULL, tx_id = NULL "
            "WHERE tx_id = ? AND state = 'assigned'",
            (tx_id,),
        )

    async def tx_dispatch_failed(self, tx_id: int, number: int, index: int, reason: str) -> None:
        """A transaction's dispatch failed at (block, index): its work goes back to pending, and work that
        failed so MAX_ATTEMPTS times is failed for good. No commit."""
        db = self.db
        await db.execute(
            "UPDATE txs SET block_number = ?, extrinsic_index = ? WHERE id = ?", (number, index, tx_id)
        )
        await self.release_tx(tx_id, "dispatch_failed", error=f"dispatch failed: {reason}")
        for table in ("payouts", "calls"):
            await db.execute(
                f"UPDATE {table} SET state = 'failed' WHERE state = 'pending' AND attempts >= ? "
                "AND error LIKE 'dispatch failed:%'",
                (MAX_ATTEMPTS,),
            )

    async def live_txs(self) -> list[Any]:
        """(id, hash, era_death, nonce) of transactions signed or submitted, not yet settled."""
        return await self._rows(f"SELECT id, hash, era_death, nonce FROM txs WHERE state IN {_LIVE}")
