"""The scoring stage's queue of minted tracks in the worker store: status, scores, retries and lanes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from offchain.projection import jsonable
from offchain.sqlite import hex_text, transaction


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


class TrackQueue:
    """The worker store's tracks: what the scoring stage takes, records and retries."""

    _db: aiosqlite.Connection

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
                json.dumps(jsonable(details or {})),
                token_id,
            ),
        )

    async def record_rejection(self, token_id: int, reason: str, detail: str) -> None:
        await self._db.execute(
            "UPDATE tracks SET status='rejected', reason=?, detail=? WHERE token_id=? AND status='pending'",
            (reason, detail[:500], token_id),
        )

    async def _attempts(self, token_id: int) -> int:
        row = await (
            await self._db.execute("SELECT attempts FROM tracks WHERE token_id=?", (token_id,))
        ).fetchone()
        return int(row[0]) if row else 0

    async def record_attempt(self, token_id: int, detail: str) -> int:
        await self._db.execute(
            "UPDATE tracks SET attempts=attempts+1, detail=? WHERE token_id=?", (detail[:500], token_id)
        )
        return await self._attempts(token_id)

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
        return await self._attempts(token_id)

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

    async def replace_unsubmitted_scores(
        self,
        scores: Sequence[tuple[int, int, int, int, bytes, Mapping[str, Any]]],
        withdrawn: Sequence[tuple[int, str, str]],
    ) -> None:
        """After a catalogue rebuild, in one transaction: scores not yet handed to the submitter (status
        'scored') take the new model's (token, novelty, quality, model version, commitment, details), or are
        withdrawn as rejected (token, reason, detail) when the new model does not publish them."""
        async with transaction(self._db) as db:
            await db.executemany(
                "UPDATE tracks SET novelty_bp=?, quality_bp=?, model_version=?, commitment=?, scored_json=?"
                " WHERE token_id=? AND status='scored'",
                [(n, q, v, hex_text(c), json.dumps(jsonable(d)), t) for t, n, q, v, c, d in scores],
            )
            await db.executemany(
                "UPDATE tracks SET status='rejected', reason=?, detail=?, novelty_bp=NULL, quality_bp=NULL,"
                " model_version=NULL, commitment=NULL, scored_json=NULL WHERE token_id=? AND status='scored'",
                [(r, d[:500], t) for t, r, d in withdrawn],
            )

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
