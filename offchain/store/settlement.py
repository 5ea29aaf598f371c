"""The settlement read model of the worker's store: each epoch's policy input, read from the ledger's rows."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import aiosqlite

from offchain.economics import CurationRec, EpochInput, ListenRec, ScoreRec, TrackInfo
from offchain.store.ledger import read_meta


class SettlementReads:
    """What settling an epoch reads: the next epoch due, its `EpochInput`, the epochs settled so far."""

    _db: aiosqlite.Connection

    async def next_epoch_to_settle(self, epoch_blocks: int) -> int | None:
        row = await (await self._db.execute("SELECT MAX(epoch) FROM epochs")).fetchone()
        if row and row[0] is not None:
            return int(row[0]) + 1
        first = await read_meta(self._db, "first_block")
        return int(first) // epoch_blocks if first is not None else None

    async def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return list(await (await self._db.execute(sql, args)).fetchall())

    async def _tracks(self, end: int) -> dict[int, TrackInfo]:
        """Tracks with a score published on chain by block `end`: rejected tracks (corrupt, duplicate, ...)
        never get one, so they earn nothing, and the rule is checkable from the chain alone."""
        rows = await self._rows(
            "SELECT token_id, creator, splits, block_number, event_index FROM tracks t"
            " WHERE block_number<=? AND EXISTS (SELECT 1 FROM chain_scores c"
            " WHERE c.token_id=t.token_id AND c.block_number<=?)",
            (end, end),
        )
        return {
            int(r[0]): TrackInfo(
                int(r[0]), r[1], tuple((a, int(b)) for a, b in json.loads(r[2])), (int(r[3]), int(r[4]))
            )
            for r in rows
        }

    async def _scores(self, start: int, end: int) -> tuple[ScoreRec, ...]:
        rows = await self._rows(
            "SELECT token_id, novelty_bp, quality_bp, block_number, event_index FROM chain_scores"
            " WHERE block_number BETWEEN ? AND ?",
            (start, end),
        )
        return tuple(ScoreRec(int(r[0]), int(r[1]), int(r[2]), (int(r[3]), int(r[4]))) for r in rows)

    async def _listens(self, start: int, end: int) -> tuple[ListenRec, ...]:
        rows = await self._rows(
            "SELECT token_id, listener, seconds, block_number, event_index FROM listens"
            " WHERE block_number BETWEEN ? AND ? ORDER BY block_number, event_index",
            (start, end),
        )
        return tuple(ListenRec(int(r[0]), r[1], int(r[2]), (int(r[3]), int(r[4]))) for r in rows)

    async def _first_listeners(
        self, tokens: set[int], end: int
    ) -> dict[int, tuple[tuple[str, tuple[int, int]], ...]]:
        """Per token, its distinct listeners up to block `end` with the position of their first listen."""
        if not tokens:
            return {}
        toks = sorted(tokens)
        rows = await self._rows(
            "SELECT token_id, listener, MIN(block_number * 1000000 + event_index) AS pos FROM listens"
            f" WHERE token_id IN ({','.join('?' * len(toks))}) AND block_number<=?"
            " GROUP BY token_id, listener ORDER BY token_id, pos",
            (*toks, end),
        )
        first: dict[int, list[tuple[str, tuple[int, int]]]] = defaultdict(list)
        for tok, listener, pos in rows:
            first[int(tok)].append((listener, (int(pos) // 1_000_000, int(pos) % 1_000_000)))
        return {k: tuple(v) for k, v in first.items()}

    async def _curations(self, end: int) -> tuple[CurationRec, ...]:
        rows = await self._rows(
            "SELECT token_id, curator, kind, block_number, event_index FROM curations WHERE block_number<=?",
            (end,),
        )
        return tuple(CurationRec(int(r[0]), r[1], r[2], (int(r[3]), int(r[4]))) for r in rows)

    async def epoch_input(
        self, epoch: int, epoch_blocks: int, external_trust: Mapping[str, int] | None = None
    ) -> EpochInput:
        """Everything `settle_epoch` needs about `epoch`, from the ledger's rows (see `EpochInput`)."""
        start, end = epoch * epoch_blocks, (epoch + 1) * epoch_blocks - 1
        listens = await self._listens(start, end)
        return EpochInput(
            epoch=epoch,
            start_block=start,
            end_block=end,
            tracks=await self._tracks(end),
            scores=await self._scores(start, end),
            listens=listens,
            previous_listens=await self._listens(start - epoch_blocks, start - 1) if epoch > 0 else (),
            first_listeners=await self._first_listeners({ev.token_id for ev in listens}, end),
            curations=await self._curations(end),
            external_trust=external_trust,
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
