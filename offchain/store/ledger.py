"""The worker ledger of finalized blocks: projected rows and the checkpoint, written in one transaction.

Every block (or batch of blocks) is written in ONE transaction with the checkpoint, in the way of Subsquid's
processor: a crash leaves either all of a block or none of it. Events are keyed by (block_number,
event_index) and every derived row is keyed by its event or by its own natural key, all inserted with
ON CONFLICT DO NOTHING, so replaying a block is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import aiosqlite

from offchain.projection import BlockData, Rows, project
from offchain.sqlite import transaction


class GapError(ValueError):
    """Blocks handed to `ingest` do not continue the checkpoint: something upstream skipped a block."""


@dataclass
class IngestResult:
    blocks: int = 0
    events: int = 0
    listens: int = 0
    new_tracks: list[int] = field(default_factory=list)
    paid: int = 0
    scores_published: int = 0
    last_block: int | None = None


async def read_checkpoint(db: aiosqlite.Connection) -> tuple[int, str] | None:
    """The (number, hash) of the last block a ledger holds (its `checkpoint` table), None when empty."""
    row = await (await db.execute("SELECT block_number, block_hash FROM checkpoint")).fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def read_meta(db: aiosqlite.Connection, key: str) -> str | None:
    """A fact of the worker's `meta` table (e.g. "first_block"), None when unset."""
    row = await (await db.execute("SELECT value FROM meta WHERE key=?", (key,))).fetchone()
    return str(row[0]) if row else None


async def write_checkpoint(db: aiosqlite.Connection, block: BlockData) -> None:
    """Move a ledger's checkpoint to `block` (inside the caller's transaction)."""
    await db.execute(
        "INSERT INTO checkpoint VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " block_number=excluded.block_number, block_hash=excluded.block_hash",
        (block.number, block.hash),
    )


def blocks_after(blocks: Sequence[BlockData], cp: tuple[int, str] | None) -> list[BlockData]:
    """The blocks above the checkpoint `cp`: those at or below it are a replay."""
    return [b for b in blocks if cp is None or b.number > cp[0]]


async def _write_rows(db: aiosqlite.Connection, rows: Rows) -> None:
    """The worker's tables from projected rows (inside the caller's transaction)."""
    await db.executemany("INSERT INTO events VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING", rows.events)
    await db.executemany(
        "INSERT INTO tracks (token_id, creator, owner, audio_cid, metadata_cid, splits,"
        " block_number, event_index) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        [(m[0], m[1], m[1], *m[2:]) for m in rows.mints],  # the creator is the first owner
    )
    await db.executemany("INSERT INTO listens VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING", rows.listens)
    await db.executemany("INSERT INTO curations VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.curations)
    await db.executemany("INSERT INTO playlists VALUES (?,?,?) ON CONFLICT DO NOTHING", rows.playlists)
    await db.executemany("UPDATE tracks SET owner=? WHERE token_id=?", rows.owners)
    await db.executemany(
        "INSERT INTO chain_scores VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.scores
    )
    await db.executemany(
        "UPDATE tracks SET status='published' WHERE token_id=? AND status IN ('scored','submitted')",
        [(s[2],) for s in rows.scores],
    )
    await db.executemany("INSERT INTO paid_events VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows.paid)
    await db.executemany(
        "UPDATE payouts SET status='paid', paid_block=? WHERE payout_id=?", [(p[5], p[0]) for p in rows.paid]
    )


class Ledger:
    """The worker store's chain side: the checkpoint, the `meta` facts, and `ingest`."""

    _db: aiosqlite.Connection

    async def checkpoint(self) -> tuple[int, str] | None:
        return await read_checkpoint(self._db)

    async def meta(self, key: str) -> str | None:
        return await read_meta(self._db, key)

    async def ingest(self, blocks: Sequence[BlockData], *, contiguous: bool = False) -> IngestResult:
        """Write blocks' events, derived rows and the new checkpoint in one transaction.

        Blocks at or below the stored checkpoint are skipped (a replay); the rest must be in order, and with
        `contiguous` (the worker) the first must be the checkpoint's next block (GapError otherwise).
        """
        cp = await self.checkpoint()
        todo = blocks_after(blocks, cp)
        if not todo:
            return IngestResult()
        if contiguous and cp is not None and todo[0].number != cp[0] + 1:
            raise GapError(f"block #{todo[0].number} does not follow the checkpoint #{cp[0]}")
        for prev, nxt in zip(todo, todo[1:], strict=False):
            if nxt.number <= prev.number:
                raise ValueError(f"blocks out of order: {prev.number} then {nxt.number}")
        rows = project(todo)
        async with transaction(self._db) as db:
            await _write_rows(db, rows)
            await write_checkpoint(db, todo[-1])
            await db.execute(
                "INSERT INTO meta VALUES ('first_block', ?) ON CONFLICT DO NOTHING", (str(todo[0].number),)
            )
        return IngestResult(
            blocks=len(todo),
            events=len(rows.events),
            listens=len(rows.listens),
            new_tracks=[m[0] for m in rows.mints],
            paid=len(rows.paid),
            scores_published=len(rows.scores),
            last_block=todo[-1].number,
        )
