"""The worker's SQLite store: events, derived rows and the checkpoint written together; the payout outbox.

Every block (or batch of blocks) is written in ONE transaction with the checkpoint, in the way of Subsquid's
processor: a crash leaves either all of a block or none of it. Events are keyed by (block_number,
event_index) and every derived row is keyed by its event or by its own natural key, all inserted with
ON CONFLICT DO NOTHING, so replaying a block is harmless.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from offchain.economics import (
    CurationRec,
    EpochInput,
    EpochSettlement,
    ListenRec,
    RewardKind,
    ScoreRec,
    TrackInfo,
)
from offchain.sqlite import hex_text, open_database

SCHEMA_VERSION = 1
# A schema change bumps SCHEMA_VERSION to N and adds MIGRATIONS[N - 1]: the SQL taking a version N-1 file to N
# (offchain/sqlite.py runs each step in one transaction; tests/operator/test_state.py opens every version).
MIGRATIONS: dict[int, str] = {}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1), block_number INTEGER NOT NULL, block_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, kind TEXT NOT NULL, contract TEXT,
    data TEXT NOT NULL, PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracks (
    token_id INTEGER PRIMARY KEY, creator TEXT NOT NULL, owner TEXT NOT NULL, audio_cid TEXT NOT NULL,
    metadata_cid TEXT NOT NULL, splits TEXT NOT NULL, block_number INTEGER NOT NULL,
    event_index INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', reason TEXT, detail TEXT, novelty_bp INTEGER, quality_bp INTEGER,
    model_version INTEGER, commitment TEXT, scored_json TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tracks_status ON tracks (status);
CREATE TABLE IF NOT EXISTS listens (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, token_id INTEGER NOT NULL,
    listener TEXT NOT NULL, seconds INTEGER NOT NULL, PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS listens_token_listener ON listens (token_id, listener, block_number, event_index);
CREATE TABLE IF NOT EXISTS curations (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, kind TEXT NOT NULL,
    token_id INTEGER NOT NULL, curator TEXT NOT NULL, label TEXT,
    PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS playlists (
    playlist_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chain_scores (
    block_number INTEGER NOT NULL, event_index INTEGER NOT NULL, token_id INTEGER NOT NULL,
    novelty_bp INTEGER NOT NULL, quality_bp INTEGER NOT NULL, model_version INTEGER NOT NULL,
    oracle TEXT NOT NULL, commitment TEXT NOT NULL, PRIMARY KEY (block_number, event_index)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY, start_block INTEGER NOT NULL, end_block INTEGER NOT NULL,
    policy_version TEXT NOT NULL, record TEXT NOT NULL, payout_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS payouts (
    payout_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL, kind INTEGER NOT NULL, account TEXT NOT NULL,
    token_id INTEGER, amount TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    paid_block INTEGER);
CREATE INDEX IF NOT EXISTS payouts_status ON payouts (status, epoch);
CREATE TABLE IF NOT EXISTS paid_events (
    payout_id TEXT PRIMARY KEY, account TEXT NOT NULL, amount TEXT NOT NULL, kind INTEGER NOT NULL,
    epoch INTEGER NOT NULL, block_number INTEGER NOT NULL, event_index INTEGER NOT NULL);
"""


async def _add_retry_columns(conn: aiosqlite.Connection) -> None:
    """Additive, idempotent: `tracks.retry_at` (unix time a track is due again) for the scoring lanes."""
    cur = await conn.execute("PRAGMA table_info(tracks)")
    if "retry_at" not in {str(r[1]) for r in await cur.fetchall()}:
        await conn.execute("ALTER TABLE tracks ADD COLUMN retry_at REAL")


class StoreError(Exception):
    """The database is unusable (wrong schema version, corrupt file, ...)."""


class GapError(ValueError):
    """Blocks handed to `ingest` do not continue the checkpoint: something upstream skipped a block."""


@dataclass(frozen=True)
class EventRecord:
    """One decoded contract event, as plain data: `kind` is the ink! event label, `fields` its values."""

    index: int
    kind: str
    fields: Mapping[str, Any]
    contract: str | None = None


@dataclass(frozen=True)
class BlockData:
    """A finalized block's number, hash and its decoded contract events."""

    number: int
    hash: str
    events: Sequence[EventRecord] = ()


@dataclass
class IngestResult:
    blocks: int = 0
    events: int = 0
    listens: int = 0
    new_tracks: list[int] = field(default_factory=list)
    paid: int = 0
    scores_published: int = 0
    last_block: int | None = None


@dataclass(frozen=True)
class TrackRow:
    token_id: int
    creator: str
    owner: str
    audio_cid: str
    metadata_cid: str
    splits: tuple[tuple[str, int], ...]
    block_number: int
    status: str
    reason: str | None
    novelty_bp: int | None
    quality_bp: int | None
    model_version: int | None
    commitment: str | None
    attempts: int


@dataclass(frozen=True)
class PayoutRow:
    payout_id: bytes
    epoch: int
    kind: RewardKind
    account: str
    token_id: int | None
    amount: int
    reason: str
    status: str


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def parse_splits(raw: Any) -> list[tuple[str, int]]:
    out = []
    for item in raw or ():
        if isinstance(item, Mapping):
            acc, bp = next(iter(item.items())) if len(item) == 1 else (item.get("account"), item.get("bp"))
        else:
            acc, bp = item
        out.append((str(acc), int(bp)))  # type: ignore[arg-type]  # malformed input raises, as intended
    return out


class WorkerStore:
    """Async access to the worker's SQLite file. One instance per process; it owns the connection."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._db = conn
        self.path = path

    @classmethod
    async def open(cls, path: Path | str) -> WorkerStore:
        path = Path(path)
        conn = await open_database(path, SCHEMA, SCHEMA_VERSION, StoreError, "worker", MIGRATIONS)
        try:
            await _add_retry_columns(conn)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, path)

    async def close(self) -> None:
        await self._db.close()

    # -- checkpoint & ingest ---------------------------------------------------------------------------------

    async def checkpoint(self) -> tuple[int, str] | None:
        row = await (await self._db.execute("SELECT block_number, block_hash FROM checkpoint")).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    async def meta(self, key: str) -> str | None:
        row = await (await self._db.execute("SELECT value FROM meta WHERE key=?", (key,))).fetchone()
        return str(row[0]) if row else None

    async def ingest(self, blocks: Sequence[BlockData], *, contiguous: bool = False) -> IngestResult:
        """Write blocks' events, derived rows and the new checkpoint in one transaction.

        Blocks at or below the stored checkpoint are skipped (a replay); the rest must be in order, and with
        `contiguous` (the worker) the first must be the checkpoint's next block (GapError otherwise).
        """
        result = IngestResult()
        if not blocks:
            return result
        cp = await self.checkpoint()
        todo = [b for b in blocks if cp is None or b.number > cp[0]]
        if not todo:
            return result
        if contiguous and cp is not None and todo[0].number != cp[0] + 1:
            raise GapError(f"block #{todo[0].number} does not follow the checkpoint #{cp[0]}")
        for prev, nxt in zip(todo, todo[1:], strict=False):
            if nxt.number <= prev.number:
                raise ValueError(f"blocks out of order: {prev.number} then {nxt.number}")
        ev_rows, listens, curations, tracks, transfers, playlists = [], [], [], [], [], []
        scores, paid = [], []
        for b in todo:
            for ev in b.events:
                f = ev.fields
                ev_rows.append((b.number, ev.index, ev.kind, ev.contract, json.dumps(_jsonable(dict(f)))))
                k = ev.kind
                if k == "Listened":
                    listens.append(
                        (b.number, ev.index, int(f["token_id"]), str(f["listener"]), int(f["seconds"]))
                    )
                elif k == "Minted":
                    splits = parse_splits(f.get("royalty_splits"))
                    tracks.append(
                        (
                            int(f["token_id"]),
                            str(f["creator"]),
                            str(f["creator"]),
                            str(f["audio_cid"]),
                            str(f["metadata_cid"]),
                            json.dumps(splits),
                            b.number,
                            ev.index,
                        )
                    )
                elif k == "Tagged":
                    curations.append(
                        (b.number, ev.index, "tag", int(f["token_id"]), str(f["curator"]), f["tag"])
                    )
                elif k == "PlaylistAdded":
                    curations.append(
                        (
                            b.number,
                            ev.index,
                            "playlist",
                            int(f["token_id"]),
                            str(f["curator"]),
                            str(f["playlist_id"]),
                        )
                    )
                elif k == "PlaylistCreated":
                    playlists.append((int(f["playlist_id"]), str(f["owner"]), str(f["name"])))
                elif k == "Transferred":
                    transfers.append((str(f["to"]), int(f["token_id"])))
                elif k == "ScoreSubmitted":
                    scores.append(
                        (
                            b.number,
                            ev.index,
                            int(f["token_id"]),
                            int(f["novelty_bp"]),
                            int(f["quality_bp"]),
                            int(f["model_version"]),
                            str(f["oracle"]),
                            hex_text(f["commitment"]),
                        )
                    )
                elif k == "Paid":
                    paid.append(
                        (
                            hex_text(f["payout_id"]),
                            str(f["to"]),
                            str(int(f["amount"])),
                            int(f["kind"]),
                            int(f["epoch"]),
                            b.number,
                            ev.index,
                        )
                    )
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.executemany("INSERT INTO events VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING", ev_rows)
            if tracks:
                await db.executemany(
                    "INSERT INTO tracks (token_id, creator, owner, audio_cid, metadata_cid, splits,"
                    " block_number, event_index) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    tracks,
                )
                result.new_tracks = [t[0] for t in tracks]
            if listens:
                await db.executemany("INSERT INTO listens VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING", listens)
            if curations:
                await db.executemany(
                    "INSERT INTO curations VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", curations
                )
            if playlists:
                await db.executemany("INSERT INTO playlists VALUES (?,?,?) ON CONFLICT DO NOTHING", playlists)
            if transfers:
                await db.executemany("UPDATE tracks SET owner=? WHERE token_id=?", transfers)
            if scores:
                await db.executemany(
                    "INSERT INTO chain_scores VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", scores
                )
                await db.executemany(
                    "UPDATE tracks SET status='published'"
                    " WHERE token_id=? AND status IN ('scored','submitted')",
                    [(s[2],) for s in scores],
                )
            if paid:
                await db.executemany(
                    "INSERT INTO paid_events VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", paid
                )
                await db.executemany(
                    "UPDATE payouts SET status='paid', paid_block=? WHERE payout_id=?",
                    [(p[5], p[0]) for p in paid],
                )
            last = todo[-1]
            await db.execute(
                "INSERT INTO checkpoint VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " block_number=excluded.block_number, block_hash=excluded.block_hash",
                (last.number, last.hash),
            )
            await db.execute(
                "INSERT INTO meta VALUES ('first_block', ?) ON CONFLICT DO NOTHING", (str(todo[0].number),)
            )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        result.blocks = len(todo)
        result.events = len(ev_rows)
        result.listens = len(listens)
        result.paid = len(paid)
        result.scores_published = len(scores)
        result.last_block = last.number
        return result

    # -- tracks & scores -------------------------------------------------------------------------------------

    _TRACK_COLS = (
        "token_id, creator, owner, audio_cid, metadata_cid, splits, block_number, status, reason, novelty_bp,"
        " quality_bp, model_version, commitment, attempts"
    )

    @staticmethod
    def _track(row: Sequence[Any]) -> TrackRow:
        return TrackRow(
            token_id=row[0],
            creator=row[1],
            owner=row[2],
            audio_cid=row[3],
            metadata_cid=row[4],
            splits=tuple((a, int(b)) for a, b in json.loads(row[5])),
            block_number=row[6],
            status=row[7],
            reason=row[8],
            novelty_bp=row[9],
            quality_bp=row[10],
            model_version=row[11],
            commitment=row[12],
            attempts=row[13],
        )

    async def track(self, token_id: int) -> TrackRow | None:
        cur = await self._db.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE token_id=?", (token_id,))
        row = await cur.fetchone()
        return self._track(row) if row else None

    async def tracks(self, status: str | None = None, limit: int = 1_000_000) -> list[TrackRow]:
        where, args = ("WHERE status=?", (status, limit)) if status else ("", (limit,))
        cur = await self._db.execute(
            f"SELECT {self._TRACK_COLS} FROM tracks {where} ORDER BY token_id LIMIT ?", args
        )
        return [self._track(r) for r in await cur.fetchall()]

    async def record_score(
        self,
        token_id: int,
        novelty_bp: int,
        quality_bp: int,
        model_version: int,
        commitment: bytes,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        await self._db.execute(
            "UPDATE tracks SET status='scored', novelty_bp=?, quality_bp=?, model_version=?, commitment=?,"
            " scored_json=? WHERE token_id=? AND status IN ('pending','scored')",
            (
                novelty_bp,
                quality_bp,
                model_version,
                hex_text(commitment),
                json.dumps(_jsonable(details or {})),
                token_id,
            ),
        )

    async def record_rejection(self, token_id: int, reason: str, detail: str) -> None:
        await self._db.execute(
            "UPDATE tracks SET status='rejected', reason=?, detail=? WHERE token_id=? AND status='pending'",
            (reason, detail[:500], token_id),
        )

    async def record_attempt(self, token_id: int, detail: str) -> int:
        await self._db.execute(
            "UPDATE tracks SET attempts=attempts+1, detail=? WHERE token_id=?", (detail[:500], token_id)
        )
        row = await (
            await self._db.execute("SELECT attempts FROM tracks WHERE token_id=?", (token_id,))
        ).fetchone()
        return int(row[0]) if row else 0

    # -- the scoring stage's lanes (retry with backoff, readmission; see offchain/pipeline/worker.py) --------

    async def fair_pending(self, limit: int, *, retry_lane: bool, now: float) -> list[TrackRow]:
        """Pending tracks due now, one creator at a time: every creator's oldest track first, then every
        creator's second, ... (token order within a rank). `retry_lane` False: never tried; True: tried before
        and due again (`retry_at` passed)."""
        lane = "attempts > 0 AND (retry_at IS NULL OR retry_at <= ?)" if retry_lane else "attempts = 0"
        args: tuple[Any, ...] = (now, limit) if retry_lane else (limit,)
        cols = ", ".join(f"t.{c.strip()}" for c in self._TRACK_COLS.split(","))
        cur = await self._db.execute(
            f"SELECT {cols} FROM (SELECT token_id, ROW_NUMBER() OVER (PARTITION BY creator ORDER BY token_id)"
            f" AS rk FROM tracks WHERE status='pending' AND {lane}) r JOIN tracks t USING (token_id)"
            " ORDER BY r.rk, t.token_id LIMIT ?",
            args,
        )
        return [self._track(r) for r in await cur.fetchall()]

    async def schedule_retry(self, token_id: int, detail: str, retry_at: float) -> int:
        """Count a failed attempt and set when the track is due again; returns the attempts so far."""
        await self._db.execute(
            "UPDATE tracks SET attempts=attempts+1, detail=?, retry_at=?"
            " WHERE token_id=? AND status='pending'",
            (detail[:500], retry_at, token_id),
        )
        row = await (
            await self._db.execute("SELECT attempts FROM tracks WHERE token_id=?", (token_id,))
        ).fetchone()
        return int(row[0]) if row else 0

    async def reject_until(self, token_id: int, reason: str, detail: str, readmit_at: float) -> None:
        """Reject a pending track for now (content not found), to be looked for again after `readmit_at`."""
        await self._db.execute(
            "UPDATE tracks SET status='rejected', reason=?, detail=?, retry_at=? WHERE token_id=?"
            " AND status='pending'",
            (reason, detail[:500], readmit_at, token_id),
        )

    async def readmit_due(self, reasons: Sequence[str], now: float, attempts: int, limit: int) -> list[int]:
        """Put tracks rejected for one of `reasons` whose readmission time has passed back to pending (with
        `attempts` already counted, so that a single new failure rejects them again); returns their ids."""
        marks = ",".join("?" * len(reasons))
        cur = await self._db.execute(
            f"SELECT token_id FROM tracks WHERE status='rejected' AND reason IN ({marks})"
            " AND retry_at IS NOT NULL AND retry_at <= ? ORDER BY retry_at LIMIT ?",
            (*reasons, now, limit),
        )
        ids = [int(r[0]) for r in await cur.fetchall()]
        await self._db.executemany(
            "UPDATE tracks SET status='pending', reason=NULL, attempts=?, retry_at=NULL WHERE token_id=?"
            " AND status='rejected'",
            [(attempts, t) for t in ids],
        )
        return ids

    async def track_problems(self) -> dict[str, Any]:
        """What `ami status` shows of the scoring stage: rejections by reason, tracks waiting for a retry."""
        cur = await self._db.execute(
            "SELECT reason, COUNT(*) FROM tracks WHERE status='rejected' GROUP BY reason ORDER BY reason"
        )
        rejected = {str(r): int(n) for r, n in await cur.fetchall()}
        cur = await self._db.execute(
            "SELECT token_id, creator, attempts, retry_at, detail FROM tracks WHERE status='pending'"
            " AND attempts > 0 ORDER BY token_id LIMIT 100"
        )
        retrying = [
            {"token_id": t, "creator": c, "attempts": a, "retry_at": r, "detail": d}
            for t, c, a, r, d in await cur.fetchall()
        ]
        return {"rejected_by_reason": rejected, "retrying": retrying}

    async def mark_score_submitted(self, token_id: int) -> None:
        await self._db.execute(
            "UPDATE tracks SET status='submitted' WHERE token_id=? AND status='scored'", (token_id,)
        )

    async def catalogue_scores(self) -> dict[int, dict[str, Any]]:
        """Details the scoring stage stored for accepted tracks (features, fingerprints) by token."""
        cur = await self._db.execute(
            "SELECT token_id, scored_json FROM tracks WHERE status IN ('scored','submitted','published')"
            " AND scored_json IS NOT NULL ORDER BY token_id"
        )
        return {int(t): json.loads(j) for t, j in await cur.fetchall()}

    # -- epochs & payouts ------------------------------------------------------------------------------------

    async def next_epoch_to_settle(self, epoch_blocks: int) -> int | None:
        row = await (await self._db.execute("SELECT MAX(epoch) FROM epochs")).fetchone()
        if row and row[0] is not None:
            return int(row[0]) + 1
        first = await self.meta("first_block")
        return int(first) // epoch_blocks if first is not None else None

    async def epoch_input(
        self, epoch: int, epoch_blocks: int, external_trust: Mapping[str, int] | None = None
    ) -> EpochInput:
        start, end = epoch * epoch_blocks, (epoch + 1) * epoch_blocks - 1
        db = self._db
        # Only tracks with a score published on chain by the epoch's end take part: rejected tracks (corrupt,
        # duplicate, ...) never get one, so they earn nothing, and the rule is checkable from the chain alone.
        tracks = {}
        for r in await (
            await db.execute(
                "SELECT token_id, creator, splits, block_number, event_index FROM tracks t"
                " WHERE block_number<=? AND EXISTS (SELECT 1 FROM chain_scores c"
                " WHERE c.token_id=t.token_id AND c.block_number<=?)",
                (end, end),
            )
        ).fetchall():
            tracks[int(r[0])] = TrackInfo(
                int(r[0]), r[1], tuple((a, int(b)) for a, b in json.loads(r[2])), (int(r[3]), int(r[4]))
            )
        scores = tuple(
            ScoreRec(int(r[0]), int(r[1]), int(r[2]), (int(r[3]), int(r[4])))
            for r in await (
                await db.execute(
                    "SELECT token_id, novelty_bp, quality_bp, block_number, event_index FROM chain_scores"
                    " WHERE block_number BETWEEN ? AND ?",
                    (start, end),
                )
            ).fetchall()
        )

        async def listens_between(a: int, b: int) -> tuple[ListenRec, ...]:
            cur = await db.execute(
                "SELECT token_id, listener, seconds, block_number, event_index FROM listens"
                " WHERE block_number BETWEEN ? AND ? ORDER BY block_number, event_index",
                (a, b),
            )
            return tuple(
                ListenRec(int(r[0]), r[1], int(r[2]), (int(r[3]), int(r[4]))) for r in await cur.fetchall()
            )

        listens = await listens_between(start, end)
        previous = await listens_between(start - epoch_blocks, start - 1) if epoch > 0 else ()
        toks = sorted({ev.token_id for ev in listens})
        first: dict[int, list[tuple[str, tuple[int, int]]]] = defaultdict(list)
        if toks:
            marks = ",".join("?" * len(toks))
            cur = await db.execute(
                "SELECT token_id, listener, MIN(block_number * 1000000 + event_index) AS pos FROM listens"
                f" WHERE token_id IN ({marks}) AND block_number<=?"
                " GROUP BY token_id, listener ORDER BY token_id, pos",
                (*toks, end),
            )
            for tok, listener, pos in await cur.fetchall():
                first[int(tok)].append((listener, (int(pos) // 1_000_000, int(pos) % 1_000_000)))
        curations = tuple(
            CurationRec(int(r[0]), r[1], r[2], (int(r[3]), int(r[4])))
            for r in await (
                await db.execute(
                    "SELECT token_id, curator, kind, block_number, event_index FROM curations"
                    " WHERE block_number<=?",
                    (end,),
                )
            ).fetchall()
        )
        return EpochInput(
            epoch=epoch,
            start_block=start,
            end_block=end,
            tracks=tracks,
            scores=scores,
            listens=listens,
            previous_listens=previous,
            first_listeners={k: tuple(v) for k, v in first.items()},
            curations=curations,
            external_trust=external_trust,
        )

    async def save_settlement(self, s: EpochSettlement, start_block: int, end_block: int) -> bool:
        """Record an epoch's settlement and its payouts in the outbox, once. False when already settled."""
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            cur = await db.execute(
                "INSERT INTO epochs VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    s.epoch,
                    start_block,
                    end_block,
                    s.policy_version,
                    json.dumps(s.as_record()),
                    len(s.payouts),
                ),
            )
            fresh = cur.rowcount == 1
            if fresh:
                await db.executemany(
                    "INSERT INTO payouts (payout_id, epoch, kind, account, token_id, amount, reason)"
                    " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    [
                        (
                            hex_text(p.payout_id),
                            p.epoch,
                            int(p.kind),
                            p.account,
                            p.token_id,
                            str(p.amount),
                            p.reason,
                        )
                        for p in s.payouts
                    ],
                )
                # A payout whose Paid event was already seen (e.g. the DB was rebuilt) is closed at once.
                await db.execute(
                    "UPDATE payouts SET status='paid', paid_block=(SELECT block_number FROM paid_events"
                    " WHERE paid_events.payout_id=payouts.payout_id) WHERE epoch=? AND payout_id IN"
                    " (SELECT payout_id FROM paid_events)",
                    (s.epoch,),
                )
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        return fresh

    @staticmethod
    def _payout(r: Sequence[Any]) -> PayoutRow:
        return PayoutRow(
            bytes.fromhex(r[0][2:]),
            int(r[1]),
            RewardKind(int(r[2])),
            r[3],
            None if r[4] is None else int(r[4]),
            int(r[5]),
            r[6],
            r[7],
        )

    async def payouts(
        self, status: str | Iterable[str] | None = None, epoch: int | None = None, limit: int = 10_000_000
    ) -> list[PayoutRow]:
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            sts = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({','.join('?' * len(sts))})")
            args += sts
        if epoch is not None:
            where.append("epoch=?")
            args.append(epoch)
        sql = "SELECT payout_id, epoch, kind, account, token_id, amount, reason, status FROM payouts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        cur = await self._db.execute(sql + " ORDER BY epoch, kind, account, token_id LIMIT ?", (*args, limit))
        return [self._payout(r) for r in await cur.fetchall()]

    async def requeue_unconfirmed(self) -> None:
        """Payouts handed but not seen paid, and scores queued but not seen published, are handed again."""
        await self._db.execute("UPDATE payouts SET status='pending' WHERE status='handed'")
        await self._db.execute("UPDATE tracks SET status='scored' WHERE status='submitted'")

    async def mark_payouts(self, ids: Iterable[bytes], status: str) -> None:
        await self._db.executemany(
            "UPDATE payouts SET status=? WHERE payout_id=? AND status!='paid'",
            [(status, hex_text(i)) for i in ids],
        )

    async def epochs(self) -> list[dict[str, Any]]:
        cur = await self._db.execute(
            "SELECT epoch, start_block, end_block, policy_version, record, payout_count"
            " FROM epochs ORDER BY epoch"
        )
        return [
            {
                "epoch": r[0],
                "start_block": r[1],
                "end_block": r[2],
                "policy_version": r[3],
                **json.loads(r[4]),
                "payout_count": r[5],
            }
            for r in await cur.fetchall()
        ]

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
