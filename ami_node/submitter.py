"""The submitter: the single owner of a signing key's nonce, turning queued payouts and contract calls into
signed, dry-run-checked, batched extrinsics, and closing them only when their own events are finalized.

Every payout and call lives in an SQLite outbox. A row moves pending -> assigned (to a transaction) ->
confirmed | failed. A transaction moves planned -> signed -> submitted -> included | expired |
dispatch_failed.
The order of writes makes a crash (even SIGKILL) at any point harmless:

* a transaction is written (with its payouts assigned) before it is signed, and its signed bytes are written
  before they are submitted; on restart unsigned plans are dropped and signed bytes are submitted again (the
  same bytes have the same hash and nonce, so the pool or the chain accepts them at most once);
* a payout is confirmed only when the rewards contract's `Paid` event with its id is seen in a finalized
  block, whatever transaction carried it;
* a transaction is given up only after its mortal era has passed in finalized blocks without it, so it can
  never land afterwards; only then are its payouts planned again;
* and the contract itself refuses a payout id or an (epoch, batch) it has already paid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import structlog

from ami_node.keys import Keypair
from ami_node.nonce import NonceManager
from ami_node.payouts import Payout
from ami_node.port import (
    Block,
    BlockRef,
    CallError,
    ChainError,
    ChainPort,
    ChainUnavailable,
    ContractReverted,
    DryRun,
    PoolRejected,
    SignedTx,
    dispatch_error_text,
)
from pallets_spec.vocabulary import U128_MAX

__all__ = [
    "AbiCodec",
    "CallStatus",
    "Payout",
    "PayoutConflict",
    "Submitter",
    "SubmitterCounts",
    "SubmitterError",
    "SubmitterCodec",
]

log = structlog.get_logger(__name__)

U32_MAX = 2**32 - 1


class SubmitterError(Exception):
    """Bad input to the submitter (the message says what is wrong); nothing was stored."""


class PayoutConflict(SubmitterError):
    """A payout id was queued before with different contents; ids must identify one payout forever."""


class SubmitterCodec(Protocol):
    """What the submitter needs to know of the contracts' ABI (kept apart: only ami_node.abi knows ink!)."""

    def encode_distribute(self, epoch: int, batch: int, payouts: Sequence[Payout]) -> bytes: ...

    def revert_reason(self, abi: str, message: str, dry: DryRun) -> str:
        """The decoded error of a failed dry run, e.g. "NotOracle"."""
        ...

    def paid_ids(self, block: Block, rewards: str) -> Iterable[bytes]:
        """Payout ids of the `Paid` events that contract `rewards` emitted in `block`."""
        ...


class AbiCodec:
    """SubmitterCodec over ami_node.abi and ami_node.events (the real contracts' metadata)."""

    def __init__(self) -> None:
        from ami_node.abi import ContractAbi

        self._abis = {name: ContractAbi.load(name) for name in ("ami_nft", "ami_rewards")}

    def encode_distribute(self, epoch: int, batch: int, payouts: Sequence[Payout]) -> bytes:
        items = [p.abi_fields() for p in payouts]
        return bytes(
            self._abis["ami_rewards"].encode_call("distribute", epoch=epoch, batch=batch, payouts=items)
        )

    def revert_reason(self, abi: str, message: str, dry: DryRun) -> str:
        contract_abi = self._abis.get(abi)
        if contract_abi is not None and dry.output:
            try:
                contract_abi.decode_return(message, dry.output)
            except ContractReverted as exc:
                return exc.error
            except Exception:  # an undecodable output falls back to what the node said
                pass
        return dry.error or "contract trapped"

    def paid_ids(self, block: Block, rewards: str) -> Iterable[bytes]:
        abi = self._abis["ami_rewards"]
        paid = abi.events["Paid"].signature_topic
        for event in block.events:
            if event.name != "ContractEmitted" or event.contract != rewards or event.data is None:
                continue
            if paid is not None and len(event.topics) >= 2 and event.topics[0] == paid:
                # Fast path: `payout_id: [u8; 32]` is a topic field, and a 32-byte encoding is its own topic.
                yield bytes(event.topics[1])
                continue
            try:
                label, fields = abi.decode_event(event.topics, event.data)
            except ValueError:
                continue  # not one of this contract version's events
            if label == "Paid":
                yield bytes.fromhex(str(fields["payout_id"]).removeprefix("0x"))


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


@dataclass
class _Item:
    """One contract call ready to pack: either a distribute chunk or a queued generic call."""

    contract: str
    data: bytes
    value: int
    gas: tuple[int, int]
    payout_ids: list[bytes] = field(default_factory=list)
    solo: bool = False  # retried after a failed dispatch: sent alone, with more gas
    epoch: int | None = None
    batch: int | None = None
    call_key: str | None = None
    runtime_call: Any = None  # an already composed non-contract call (enqueue_runtime_call)


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

_LIVE_TX_STATES = ("signed", "submitted")
RUNTIME = "runtime"  # the `abi` of queued non-contract calls
# A call whose dispatch keeps failing although its dry run passed (e.g. state changed in between) is given up
# after this many transactions instead of being retried forever.
_MAX_ATTEMPTS = 3


class Submitter:
    """The single owner of one key's nonce, with a persistent outbox.

    `enqueue_payouts(epoch, payouts)` and `enqueue_call(key, ...)` store work; `run()` (or `tick()`
    repeatedly, or `drain()`) submits it and confirms it from finalized blocks. Only one Submitter may run
    per key and per database at a time.
    """

    def __init__(
        self,
        port: ChainPort,
        keypair: Keypair,
        db_path: Path | str,
        *,
        rewards: str | None,
        codec: SubmitterCodec | None = None,
        era_period: int = 64,
        payouts_per_call: int = 100,
        max_calls_per_tx: int = 64,
        weight_fill: float = 0.75,
        gas_margin: float = 2.0,
        submit_attempts: int = 6,
        poll_s: float = 0.2,
    ) -> None:
        if not 4 <= era_period <= 65536:
            raise SubmitterError("era_period must be between 4 and 65536 blocks")
        if payouts_per_call < 1 or max_calls_per_tx < 1:
            raise SubmitterError("payouts_per_call and max_calls_per_tx must be at least 1")
        if not 0.0 < weight_fill <= 1.0:
            raise SubmitterError("weight_fill must be in (0, 1]")
        self.port = port
        self.keypair = keypair
        self.address = keypair.address
        self.db_path = Path(db_path)
        self.rewards = rewards
        self._codec = codec
        self.era_period = era_period
        self.payouts_per_call = payouts_per_call
        self.max_calls_per_tx = max_calls_per_tx
        self.weight_fill = weight_fill
        self.gas_margin = gas_margin
        self.submit_attempts = submit_attempts
        self.poll_s = poll_s
        self.nonces = NonceManager(port, self.address)
        self._db: aiosqlite.Connection | None = None
        self._recovered = False
        self._max_weight: tuple[int, int] | None = None
        # Monotonic counters since start, for prometheus (the DB holds the durable state).
        self.stats: dict[str, int] = {
            "txs_submitted": 0,
            "pool_rejections": 0,
            "resubmitted": 0,
            "expired": 0,
            "usurped": 0,
            "dry_run_reverts": 0,
        }

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> Submitter:
        if self._db is not None:
            return self
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.db_path)
        try:
            # The version first: a refused file stays byte for byte as it was (WAL mode rewrites its header).
            rows = list(await (await db.execute("PRAGMA user_version")).fetchall())
            version = int(rows[0][0]) if rows else 0
            if version > OUTBOX_SCHEMA_VERSION:
                await db.close()
                raise SubmitterError(
                    f"outbox {self.db_path} has schema version {version}, written by a newer AMI node; this "
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
            owner = await self._meta_get(db, "signer")
        except sqlite3.DatabaseError as exc:
            await db.close()
            raise SubmitterError(
                f"{self.db_path} is not a usable submitter outbox ({exc}); point db_path at another file"
            ) from None
        if owner is None:
            await db.execute("INSERT INTO meta(key, value) VALUES ('signer', ?)", (self.address,))
        elif owner != self.address:
            await db.close()
            raise SubmitterError(
                f"outbox {self.db_path} belongs to signer {owner}, not {self.address}; one database per key"
            )
        await db.commit()
        self._db = db
        return self

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Submitter:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def codec(self) -> SubmitterCodec:
        if self._codec is None:
            self._codec = AbiCodec()
        return self._codec

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise SubmitterError("submitter is not open; use `async with Submitter(...)` or await open()")
        return self._db

    @staticmethod
    async def _meta_get(db: aiosqlite.Connection, key: str) -> str | None:
        async with db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def _meta_set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def _next_seq(self) -> int:
        seq = int(await self._meta_get(self.db, "seq") or 0) + 1
        await self._meta_set("seq", str(seq))
        return seq

    # ------------------------------------------------------------------ enqueue

    async def enqueue_payouts(self, epoch: int, payouts: Sequence[Payout]) -> int:
        """Store payouts for `epoch`; returns how many were new. Re-queuing the same ids is harmless; the
        same id with other contents raises PayoutConflict and stores nothing."""
        if not 0 <= epoch <= U32_MAX:
            raise SubmitterError(f"epoch {epoch} out of range (u32)")
        if self.rewards is None:
            raise SubmitterError("no rewards contract configured; pass rewards=<address> (see `ami deploy`)")
        db = self.db
        try:
            known: dict[bytes, tuple[int, str, int, int]] = {}
            ids = [p.id for p in payouts]
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                async with db.execute(
                    f"SELECT id, epoch, to_addr, amount, kind FROM payouts WHERE id IN ({marks})", chunk
                ) as cur:
                    for pid, e, to, amount, kind in await cur.fetchall():
                        known[bytes(pid)] = (int(e), str(to), int(amount), int(kind))
            rows = []
            seq = int(await self._meta_get(db, "seq") or 0)
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
            await self._meta_set("seq", str(seq))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        return len(rows)

    async def enqueue_call(
        self, key: str, contract: str, message: str, data: bytes, *, abi: str, value: int = 0
    ) -> bool:
        """Store one contract call under a unique `key` (e.g. "score:42:1"); returns False when the key was
        already queued (with the same input). `abi` names the contract's metadata, used to decode reverts."""
        if not key:
            raise SubmitterError("call key must be non-empty")
        if value < 0 or value > U128_MAX:
            raise SubmitterError("value must fit u128")
        db = self.db
        async with db.execute("SELECT data, contract FROM calls WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        if row is not None:
            if bytes(row[0]) != data or row[1] != contract:
                raise SubmitterError(f"call {key!r} was queued before with another input")
            return False
        await db.execute(
            "INSERT INTO calls(key, contract, abi, message, data, value, state, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (key, contract, abi, message, data, str(value), await self._next_seq()),
        )
        await db.commit()
        return True

    async def enqueue_runtime_call(
        self, key: str, pallet: str, function: str, params: dict[str, Any]
    ) -> bool:
        """Store any runtime call (e.g. Balances.transfer_keep_alive) under a unique `key`; it is batched with
        the others and confirmed by its extrinsic's success in a finalized block. `params` must be JSON."""
        try:
            data = json.dumps(params, sort_keys=True).encode()
        except (TypeError, ValueError) as exc:
            raise SubmitterError(f"params of {pallet}.{function} must be JSON-serialisable: {exc}") from None
        return await self.enqueue_call(key, "", f"{pallet}.{function}", data, abi=RUNTIME)

    # ------------------------------------------------------------------ status

    async def counts(self) -> SubmitterCounts:
        totals = {"pending": 0, "assigned": 0, "confirmed": 0, "failed": 0}
        for table in ("payouts", "calls"):
            async with self.db.execute(f"SELECT state, COUNT(*) FROM {table} GROUP BY state") as cur:
                for state, n in await cur.fetchall():
                    totals[state] = totals.get(state, 0) + n
        return SubmitterCounts(totals["pending"], totals["assigned"], totals["confirmed"], totals["failed"])

    async def payout_status(self, payout_id: bytes) -> tuple[str, str | None, int | None] | None:
        """(state, error, finalized block number) of one payout, or None when unknown."""
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
        """Put failed payouts and calls back to pending (e.g. once a missing oracle role is granted)."""
        n = 0
        for table in ("payouts", "calls"):
            cur = await self.db.execute(
                f"UPDATE {table} SET state = 'pending', error = NULL, attempts = 0 WHERE state = 'failed'"
            )
            n += cur.rowcount
        await self.db.commit()
        return n

    async def idle(self) -> bool:
        """True when no payout or call is pending or in flight (every row is confirmed or failed)."""
        c = await self.counts()
        return not (c.pending or c.submitted)

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Submit and confirm until `stop` is set. Chain outages and errors are waited out with backoff."""
        stop = stop or asyncio.Event()
        delay = self.poll_s
        while not stop.is_set():
            try:
                await self.tick()
                delay = self.poll_s
            except Exception as exc:
                if isinstance(exc, ChainUnavailable):
                    log.warning("submitter.chain_unavailable", error=str(exc), retry_in_s=delay)
                elif isinstance(exc, ChainError):
                    # e.g. a block the node no longer serves, an RPC error: the outbox is intact
                    log.error("submitter.chain_error", error=str(exc), retry_in_s=delay)
                else:
                    # Anything else (a full disk, a bug) must not stop the daemon's other work: log it loudly
                    # and try again later.
                    log.exception("submitter.unexpected_error", retry_in_s=delay)
                # Drop writes of the interrupted step; every completed step was committed on its own.
                with contextlib.suppress(Exception):
                    await self.db.rollback()
                self.nonces.reset()
                delay = min(max(delay, 0.1) * 2, 30.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def drain(self, timeout_s: float = 60.0) -> SubmitterCounts:
        """Tick until idle (everything confirmed or failed); TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            await self.tick()
            if await self.idle():
                return await self.counts()
            if time.monotonic() > deadline:
                raise TimeoutError(f"submitter not idle after {timeout_s} s: {await self.counts()}")
            await asyncio.sleep(self.poll_s)

    async def tick(self) -> None:
        """One round: recover (first time), confirm from finalized blocks, then plan, sign and submit."""
        if not self._recovered:
            await self._recover()
            self._recovered = True
        await self._scan()
        await self._resubmit_unsent()
        await self._plan_and_submit()

    # ------------------------------------------------------------------ recovery

    async def _recover(self) -> None:
        """After a (maybe unclean) stop: drop unsigned plans, resubmit signed bytes, start the scan cursor."""
        db = self.db
        async with db.execute("SELECT id FROM txs WHERE state = 'planned'") as cur:
            planned = [r[0] for r in await cur.fetchall()]
        for tx_id in planned:
            await self._release_tx(tx_id, "abandoned", error=None)
        if await self._meta_get(db, "cursor") is None:
            head = await self.port.finalized_head()
            await self._meta_set("cursor", str(head.number))
        await db.commit()
        await self._resubmit("('signed', 'submitted')")
        self.nonces.reset()

    async def _resubmit(self, states: str) -> None:
        """Send the stored signed bytes of transactions in `states` again (same hash, nonce and era)."""
        async with self.db.execute(
            f"SELECT id, hash, data, nonce, era_birth, era_death FROM txs WHERE state IN {states}"
        ) as cur:
            rows = await cur.fetchall()
        for tx_id, tx_hash, data, nonce, birth, death in rows:
            tx = SignedTx(str(tx_hash), bytes(data), self.address, int(nonce), int(birth), int(death))
            await self._send_again(tx_id, tx)

    async def _send_again(self, tx_id: int, tx: SignedTx) -> None:
        tx_hash = tx.hash
        try:
            await self.port.submit(tx)
            self.stats["resubmitted"] += 1
        except PoolRejected as exc:
            # Already in the pool (1013), nonce used (stale: it or its replacement landed): either way the
            # scan decides; a non-transient refusal is also left to the era to expire.
            log.info("submitter.resubmit_refused", tx=tx_hash, code=exc.code, reason=exc.reason)
        await self.db.execute(
            "UPDATE txs SET state = 'submitted', updated = ? "
            "WHERE id = ? AND state IN ('signed', 'submitted')",
            (time.time(), tx_id),
        )
        await self.db.commit()

    async def _resubmit_unsent(self) -> None:
        """Signed transactions whose submission failed for lack of a node are sent again (same bytes)."""
        await self._resubmit("('signed')")

    async def _release_tx(self, tx_id: int, new_state: str, error: str | None) -> None:
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

    async def _scan(self) -> None:
        """Walk finalized blocks after the cursor: confirm payouts by Paid events, settle transactions."""
        db = self.db
        head = await self.port.finalized_head()
        cursor = int(await self._meta_get(db, "cursor") or head.number)
        if head.number <= cursor:
            return
        async with db.execute(
            "SELECT id, hash, era_death, nonce FROM txs WHERE state IN ('signed', 'submitted')"
        ) as cur:
            rows = await cur.fetchall()
        live = {str(r[1]): (int(r[0]), int(r[2])) for r in rows}
        nonce_of = {str(r[1]): int(r[3]) for r in rows}
        for number in range(cursor + 1, head.number + 1):
            if not live:
                # Nothing of ours is in flight, so these blocks hold nothing to confirm (payouts are only
                # ever paid by a transaction we track, or found already paid by a dry run): skip them.
                await self._meta_set("cursor", str(head.number))
                await db.commit()
                return
            block = await self.port.block(number)
            await self._apply_block(block, live)
            for tx_hash, (tx_id, era_death) in list(live.items()):
                if number >= era_death:
                    # The era is over in finalized blocks and the transaction is not in any of them: it can
                    # never land, so its work may be signed again.
                    await self._release_tx(tx_id, "expired", error=None)
                    del live[tx_hash]
                    self.stats["expired"] += 1
                    self.nonces.reset()
                    log.info("submitter.expired", tx=tx_hash, block=number)
            await self._meta_set("cursor", str(number))
            await db.commit()
        if live:
            await self._release_usurped(live, nonce_of, head)

    async def _release_usurped(
        self, live: dict[str, tuple[int, int]], nonce_of: dict[str, int], head: BlockRef
    ) -> None:
        """A transaction in no finalized block up to `head` whose nonce `head`'s state has used can never
        land (another process signing with this key took the nonce): release its work now, without waiting
        for its era to end (an instant-seal node may never get there)."""
        used = await self.port.account_nonce(self.address, head.hash)
        for tx_hash, (tx_id, _) in list(live.items()):
            if nonce_of[tx_hash] < used:
                await self._release_tx(tx_id, "usurped", error=None)
                del live[tx_hash]
                self.stats["usurped"] += 1
                self.nonces.reset()
                log.info("submitter.usurped", tx=tx_hash, nonce=nonce_of[tx_hash], block=head.number)
        await self.db.commit()

    async def _apply_block(self, block: Block, live: dict[str, tuple[int, int]]) -> None:
        db = self.db
        number = block.ref.number
        if self.rewards is not None:
            await db.executemany(
                "UPDATE payouts SET state = 'confirmed', error = NULL, block_number = ? "
                "WHERE id = ? AND state != 'confirmed'",
                [(number, pid) for pid in self.codec.paid_ids(block, self.rewards)],
            )
        for index, ext_hash in enumerate(block.extrinsic_hashes):
            entry = live.pop(ext_hash, None)
            if entry is None:
                continue
            tx_id = entry[0]
            outcome = [
                e
                for e in block.events
                if e.extrinsic_index == index
                and e.pallet == "System"
                and e.name in ("ExtrinsicSuccess", "ExtrinsicFailed")
            ]
            ok = bool(outcome) and outcome[-1].name == "ExtrinsicSuccess"
            if ok:
                await db.execute(
                    "UPDATE txs SET state = 'included', block_number = ?, extrinsic_index = ?, updated = ? "
                    "WHERE id = ?",
                    (number, index, time.time(), tx_id),
                )
                await db.execute(
                    "UPDATE calls SET state = 'confirmed', error = NULL, block_number = ?, "
                    "extrinsic_index = ? "
                    "WHERE tx_id = ? AND state = 'assigned'",
                    (number, index, tx_id),
                )
                # A successful distribute emits Paid for every payout; one not seen here stays recoverable.
                await db.execute(
                    "UPDATE payouts SET state = 'pending', batch = NULL, tx_id = NULL "
                    "WHERE tx_id = ? AND state = 'assigned'",
                    (tx_id,),
                )
            else:
                reason = dispatch_error_text(outcome[-1].attributes) if outcome else "no outcome event"
                log.warning("submitter.dispatch_failed", tx=ext_hash, block=number, error=reason)
                await db.execute(
                    "UPDATE txs SET block_number = ?, extrinsic_index = ? WHERE id = ?",
                    (number, index, tx_id),
                )
                await self._release_tx(tx_id, "dispatch_failed", error=f"dispatch failed: {reason}")
                for table in ("payouts", "calls"):
                    await db.execute(
                        f"UPDATE {table} SET state = 'failed' WHERE state = 'pending' AND attempts >= ? "
                        "AND error LIKE 'dispatch failed:%'",
                        (_MAX_ATTEMPTS,),
                    )

    # ------------------------------------------------------------------ planning and submission

    async def _plan_and_submit(self) -> None:
        items = await self._dry_run_calls() + await self._dry_run_payouts()
        if not items:
            return
        for group in await self._pack(items):
            await self._submit_group(group)

    async def _weight_limit(self) -> tuple[int, int]:
        if self._max_weight is None:
            self._max_weight = await self.port.max_extrinsic_weight()
        ref, proof = self._max_weight
        return int(ref * self.weight_fill), int(proof * self.weight_fill)

    def _gas(self, dry: DryRun, boost: float = 1.0) -> tuple[int, int]:
        # A dry run sees the state before the batch; later calls in a batch_all run on a bigger state and may
        # need more. Unused gas is refunded, so the margin costs only packing room.
        margin = self.gas_margin * boost
        ref, proof = dry.gas_required
        return int(ref * margin) + 1, int(proof * margin) + 1

    async def _dry_run_calls(self) -> list[_Item]:
        async with self.db.execute(
            "SELECT key, contract, abi, message, data, value, error FROM calls WHERE state = 'pending' "
            "ORDER BY seq"
        ) as cur:
            rows = await cur.fetchall()
        items: list[_Item] = []
        for key, contract, abi, message, data, value, error in rows:
            retry = str(error or "").startswith("dispatch failed")
            if abi == RUNTIME:
                pallet, _, function = message.partition(".")
                try:
                    composed = await self.port.compose_call(pallet, function, json.loads(data))
                except CallError as exc:
                    await self.db.execute(
                        "UPDATE calls SET state = 'failed', error = ? WHERE key = ?", (str(exc), key)
                    )
                    await self.db.commit()
                    continue
                items.append(_Item("", b"", 0, (0, 0), call_key=key, solo=retry, runtime_call=composed))
                continue
            dry = await self.port.contract_dry_run(contract, bytes(data), self.address, int(value))
            if not dry.success:
                reason = self.codec.revert_reason(abi, message, dry)
                self.stats["dry_run_reverts"] += 1
                log.warning("submitter.call_reverted", key=key, message=message, error=reason)
                await self.db.execute(
                    "UPDATE calls SET state = 'failed', error = ? WHERE key = ?",
                    (f"{message} reverted in dry run: {reason}", key),
                )
                await self.db.commit()
                continue
            gas = self._gas(dry, 2.0 if retry else 1.0)
            items.append(_Item(contract, bytes(data), int(value), gas, call_key=key, solo=retry))
        return items

    async def _dry_run_payouts(self) -> list[_Item]:
        if self.rewards is None:
            return []
        async with self.db.execute(
            "SELECT id, epoch, to_addr, amount, kind, error FROM payouts WHERE state = 'pending' "
            "ORDER BY epoch, seq"
        ) as cur:
            rows = await cur.fetchall()
        # Payouts whose last transaction failed on chain go in separate chunks, sent alone with more gas.
        groups: dict[tuple[int, bool], list[Payout]] = {}
        for pid, epoch, to, amount, kind, error in rows:
            retry = str(error or "").startswith("dispatch failed")
            groups.setdefault((int(epoch), retry), []).append(
                Payout(id=bytes(pid), to=to, amount=int(amount), kind=kind)
            )
        items: list[_Item] = []
        for (epoch, retry), payouts in groups.items():
            for start in range(0, len(payouts), self.payouts_per_call):
                chunk = payouts[start : start + self.payouts_per_call]
                items.extend(await self._chunk_item(epoch, chunk, retry))
        return items

    async def _next_batch(self, epoch: int) -> int:
        batch = int(await self._meta_get(self.db, f"batch:{epoch}") or 0)
        await self._meta_set(f"batch:{epoch}", str(batch + 1))
        return batch

    async def _chunk_item(self, epoch: int, chunk: list[Payout], retry: bool = False) -> list[_Item]:
        """Dry-run one distribute call; sort out already-paid ids and used batch numbers; record reverts."""
        assert self.rewards is not None
        for _ in range(64):
            batch = await self._next_batch(epoch)
            data = self.codec.encode_distribute(epoch, batch, chunk)
            dry = await self.port.contract_dry_run(self.rewards, data, self.address)
            if dry.success:
                await self.db.commit()
                gas = self._gas(dry, 2.0 if retry else 1.0)
                return [_Item(self.rewards, data, 0, gas, [p.id for p in chunk], retry, epoch, batch)]
            reason = self.codec.revert_reason("ami_rewards", "distribute", dry)
            if reason == "BatchAlreadyPaid":
                continue  # this batch number was used by an earlier outbox; the counter moves on
            if reason == "PayoutAlreadyPaid" and len(chunk) > 1:
                # Some ids were paid by an earlier life of this outbox (or another one): find them one by one.
                await self.db.commit()
                items: list[_Item] = []
                for p in chunk:
                    items.extend(await self._chunk_item(epoch, [p], retry))
                return items
            if reason == "PayoutAlreadyPaid":
                await self.db.execute(
                    "UPDATE payouts SET state = 'confirmed', error = 'already paid on chain' WHERE id = ?",
                    (chunk[0].id,),
                )
                await self.db.commit()
                return []
            self.stats["dry_run_reverts"] += 1
            log.warning("submitter.distribute_reverted", epoch=epoch, count=len(chunk), error=reason)
            await self.db.executemany(
                "UPDATE payouts SET state = 'failed', error = ? WHERE id = ?",
                [(f"distribute reverted in dry run: {reason}", p.id) for p in chunk],
            )
            await self.db.commit()
            return []
        await self.db.commit()
        raise SubmitterError(f"could not find an unused batch number for epoch {epoch}")

    async def _pack(self, items: list[_Item]) -> list[list[_Item]]:
        """Greedy packing: as many calls per extrinsic as the weight budget and max_calls_per_tx allow."""
        limit_ref, limit_proof = await self._weight_limit()
        groups: list[list[_Item]] = []
        current: list[_Item] = []
        ref = proof = 0
        for item in items:
            r, p = item.gas
            if current and (
                item.solo
                or current[-1].solo
                or len(current) >= self.max_calls_per_tx
                or ref + r > limit_ref
                or proof + p > limit_proof
            ):
                groups.append(current)
                current, ref, proof = [], 0, 0
            current.append(item)
            ref, proof = ref + r, proof + p
        if current:
            groups.append(current)
        return groups

    async def _compose(self, group: list[_Item]) -> Any:
        calls = [
            i.runtime_call
            if i.runtime_call is not None
            else await self.port.contract_call(i.contract, i.data, i.gas, i.value)
            for i in group
        ]
        return calls[0] if len(calls) == 1 else await self.port.batch_all(calls)

    async def _submit_group(self, group: list[_Item]) -> None:
        call = await self._compose(group)
        if len(group) > 1:
            max_ref, max_proof = await self.port.max_extrinsic_weight()
            ref, proof = await self.port.call_weight(call, self.address)
            if ref > max_ref or proof > max_proof:
                half = len(group) // 2
                await self._submit_group(group[:half])
                await self._submit_group(group[half:])
                return
        db = self.db
        now = time.time()
        cur = await db.execute(
            "INSERT INTO txs(state, created, updated) VALUES ('planned', ?, ?)", (now, now)
        )
        tx_id = int(cur.lastrowid or 0)
        for item in group:
            if item.call_key is not None:
                await db.execute(
                    "UPDATE calls SET state = 'assigned', tx_id = ?, attempts = attempts + 1 WHERE key = ?",
                    (tx_id, item.call_key),
                )
            await db.executemany(
                "UPDATE payouts SET state = 'assigned', tx_id = ?, batch = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                [(tx_id, item.batch, pid) for pid in item.payout_ids],
            )
        await db.commit()

        last: PoolRejected | None = None
        for attempt in range(self.submit_attempts):
            nonce = await self.nonces.take()
            tx = await self.port.sign(call, self.keypair, nonce, self.era_period)
            await db.execute(
                "UPDATE txs SET state = 'signed', hash = ?, data = ?, nonce = ?, era_birth = ?, "
                "era_death = ?, "
                "updated = ? WHERE id = ?",
                (tx.hash, tx.data, tx.nonce, tx.era_birth, tx.era_death, time.time(), tx_id),
            )
            await db.commit()
            try:
                await self.port.submit(tx)
            except PoolRejected as exc:
                self.stats["pool_rejections"] += 1
                self.nonces.reset()
                last = exc
                if not exc.transient:
                    break
                log.info("submitter.pool_retry", code=exc.code, reason=exc.reason, attempt=attempt + 1)
                await asyncio.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
                continue
            except ChainUnavailable:
                # Whether the node got it is unknown: the signed bytes stay and are sent again next tick.
                self.nonces.reset()
                raise
            await db.execute(
                "UPDATE txs SET state = 'submitted', updated = ? WHERE id = ?", (time.time(), tx_id)
            )
            await db.commit()
            self.stats["txs_submitted"] += 1
            return
        assert last is not None
        # The pool refused every signed version, so none of them can land: give the work back (or fail it when
        # the refusal is permanent, e.g. the key cannot pay fees).
        error = f"pool rejected ({last.code}): {last.reason}"
        await self._release_tx(tx_id, "rejected", error=error)
        if not last.transient:
            for table, col in (("payouts", "id"), ("calls", "key")):
                keys = (
                    [i.call_key for i in group]
                    if table == "calls"
                    else [p for i in group for p in i.payout_ids]
                )
                await db.executemany(
                    f"UPDATE {table} SET state = 'failed', error = ? WHERE {col} = ? AND state = 'pending'",
                    [(error, k) for k in keys if k is not None],
                )
        await db.commit()
