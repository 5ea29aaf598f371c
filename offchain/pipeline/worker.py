"""The worker's event loop: bounded queues between follower, store writer, scoring, settlement and payouts.

All stages are asyncio tasks on one loop; blocking work (SQLite via aiosqlite's thread, decoding and scoring
in the scorer's process pool, the settlement arithmetic in a thread) never runs on the loop. A stage that
fails is restarted with exponential backoff (chain or IPFS outages are waited out, not fatal). `stop()` lets
the batch in flight finish: the writer commits what it holds, scorers finish their track, then all return.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from offchain.economics import EpochSettlement, settle_epoch
from offchain.metrics import WorkerMetrics
from offchain.pipeline.lanes import ScoringLanes
from offchain.pipeline.options import WorkerOptions
from offchain.pipeline.ports import (
    BlockSource,
    ContentFetcher,
    PayoutSink,
    ScorePublisher,
    TrackScorer,
)
from offchain.projection import BlockData
from offchain.store import WorkerStore

log = structlog.get_logger("ami.worker")

_STOP = object()

TrustProvider = Callable[[Any], Mapping[str, int] | None]


@dataclasses.dataclass(eq=False, repr=False)
class Worker(ScoringLanes):
    """Runs the pipeline until `stop()`; every stage is restart-safe because its state lives in the store."""

    store: WorkerStore
    source: BlockSource
    fetcher: ContentFetcher
    scorer: TrackScorer
    publisher: ScorePublisher
    payouts: PayoutSink
    options: dataclasses.InitVar[WorkerOptions | None] = None
    metrics: WorkerMetrics = dataclasses.field(default_factory=WorkerMetrics)
    trust: TrustProvider | None = None

    def __post_init__(self, options: WorkerOptions | None) -> None:
        self.opt = options or WorkerOptions()
        self._stop = asyncio.Event()
        self._blocks: asyncio.Queue[BlockData] = asyncio.Queue(self.opt.block_queue_size)
        self._init_lanes()
        self._wake_scoring = asyncio.Event()
        self._wake_payouts = asyncio.Event()
        self._last_queued: tuple[int, str] | None = None
        self.head: int | None = None
        self.last_error: dict[str, str] = {}
        self.last_progress = time.monotonic()
        self.started = False
        self.caught_up = False
        self._written: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask every stage to finish what it holds and return (SIGTERM handler)."""
        self._stop.set()

    async def run(self) -> None:
        """Run all stages until stop(); returns after the in-flight batch is committed."""
        self._last_queued = await self.store.checkpoint()
        # Hand everything not yet seen paid (and every unconfirmed score) to the submitter again: its outbox
        # dedupes ids and keys, and this also recovers from a lost outbox file.
        await self.store.requeue_unconfirmed()
        self.started = True
        follower = asyncio.create_task(self._supervise("follower", self._follow))
        head = asyncio.create_task(self._supervise("head", self._watch_head))
        stages = [
            asyncio.create_task(self._supervise("writer", self._write)),
            asyncio.create_task(self._supervise("scoring-feed", self._feed_scoring)),
            asyncio.create_task(self._supervise("payouts", self._dispatch_payouts)),
            *(
                asyncio.create_task(
                    self._supervise(f"scorer-{i}", functools.partial(self._score_loop, lane, f"scorer-{i}"))
                )
                for i, lane in enumerate(self._lanes())
            ),
        ]
        await self._stop.wait()
        # The follower and the head watcher wait on the network: cancel them; the others finish their batch.
        for t in (follower, head):
            t.cancel()
        self._wake_scoring.set()
        self._wake_payouts.set()
        async with self._work:
            self._work.notify_all()
        with contextlib.suppress(asyncio.QueueFull):
            self._blocks.put_nowait(_STOP)  # type: ignore[arg-type]
        await asyncio.gather(follower, head, *stages, return_exceptions=True)
        log.info("worker.stopped", checkpoint=await self.store.checkpoint())

    async def _supervise(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        delay = self.opt.backoff_initial_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a stage never takes the daemon down; it is restarted after a pause
                if time.monotonic() - started > self.opt.backoff_max_s:
                    delay = self.opt.backoff_initial_s  # it ran fine for a while: a new failure starts over
                self.last_error[name] = f"{type(exc).__name__}: {exc}"
                self.metrics.source_errors.labels(name).inc()
                log.warning(
                    "worker.stage_failed",
                    stage=name,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    retry_in_s=round(delay, 2),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(delay * 2, self.opt.backoff_max_s)

    # -- follower -> writer ----------------------------------------------------------------------------------

    async def _follow(self) -> None:
        async for block in self.source.blocks(self._last_queued):
            self.last_error.pop("follower", None)
            await self._blocks.put(block)
            self._last_queued = (block.number, block.hash)
            self.metrics.queue_depth.labels("blocks").set(self._blocks.qsize())

    async def _watch_head(self) -> None:
        while not self._stop.is_set():
            self.head = await self.source.finalized_number()
            self.last_error.pop("head", None)
            cp = self._last_written()
            if cp is not None:
                self.metrics.blocks_behind.set(max(self.head - cp, 0))
                self.caught_up = self.head - cp <= 1
                if self.caught_up:  # the node answers and nothing is missing: the follower is fine
                    self.last_error.pop("follower", None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.opt.poll_s)

    def _last_written(self) -> int | None:
        return self._written

    async def _write(self) -> None:
        cp = await self.store.checkpoint()
        self._written = cp[0] if cp else None
        await self.settle_due_epochs()
        while True:
            first = await self._blocks.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.opt.ingest_batch_blocks and not self._blocks.empty():
                nxt = self._blocks.get_nowait()
                if nxt is _STOP:
                    self._stop.set()
                    break
                batch.append(nxt)
            res = await self._ingest_until_done(batch)
            self.last_error.pop("writer", None)
            self.metrics.queue_depth.labels("blocks").set(self._blocks.qsize())
            if res.last_block is not None:
                self._written = res.last_block
                self.last_progress = time.monotonic()
                self.metrics.last_block.set(res.last_block)
                if self.head is not None:
                    self.metrics.blocks_behind.set(max(self.head - res.last_block, 0))
            self.metrics.blocks.inc(res.blocks)
            self.metrics.observe_events(res.events)
            self.metrics.listens.inc(res.listens)
            self.metrics.payouts_paid.inc(res.paid)
            if res.new_tracks or res.scores_published:
                self._wake_scoring.set()
            await self.settle_due_epochs()
            if self._stop.is_set():
                return

    async def _ingest_until_done(self, batch: list[BlockData]) -> Any:
        """Write a batch, retrying with backoff (a full disk, a locked file): a batch is never dropped, since
        the follower has already moved past it."""
        delay = self.opt.backoff_initial_s
        while True:
            try:
                return await self.store.ingest(batch, contiguous=True)
            except (OSError, sqlite3.OperationalError) as exc:
                self.last_error["writer"] = f"{type(exc).__name__}: {exc}"
                self.metrics.source_errors.labels("store").inc()
                log.warning("worker.store_write_failed", error=str(exc), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.opt.backoff_max_s)

    # -- settlement ------------------------------------------------------------------------------------------

    async def settle_due_epochs(self) -> list[EpochSettlement]:
        """Settle every epoch whose last block is at or below the checkpoint, in order, each exactly once."""
        done: list[EpochSettlement] = []
        cp = await self.store.checkpoint()
        if cp is None:
            return done
        L = self.opt.epoch_blocks
        while True:
            epoch = await self.store.next_epoch_to_settle(L)
            if epoch is None or (epoch + 1) * L - 1 > cp[0]:
                break
            inp = await self.store.epoch_input(epoch, L)
            if self.trust is not None:
                ext = await asyncio.to_thread(self.trust, inp)
                if ext is not None:
                    inp = dataclasses.replace(inp, external_trust=ext)
            settlement = await asyncio.to_thread(settle_epoch, inp, self.opt.policy)
            if await self.store.save_settlement(settlement, inp.start_block, inp.end_block):
                self.metrics.epochs_settled.inc()
                log.info(
                    "worker.epoch_settled",
                    epoch=epoch,
                    payouts=len(settlement.payouts),
                    paid=settlement.paid,
                    unallocated=settlement.unallocated,
                )
            done.append(settlement)
            self._wake_payouts.set()
        return done

    # -- payouts ---------------------------------------------------------------------------------------------

    async def _dispatch_payouts(self) -> None:
        while True:
            await self.dispatch_payouts_once()
            self.last_error.pop("payouts", None)
            if self._stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_payouts.wait(), timeout=self.opt.poll_s)
            self._wake_payouts.clear()

    async def dispatch_payouts_once(self) -> int:
        """Hand every payout not yet handed to the submitter, by epoch; mark them handed once it has them."""
        handed = 0
        pending = await self.store.payouts(status="pending", limit=self.opt.payout_batch_size * 10)
        by_epoch: dict[int, list[Any]] = {}
        for p in pending:
            by_epoch.setdefault(p.epoch, []).append(p)
        for epoch, rows in sorted(by_epoch.items()):
            for i in range(0, len(rows), self.opt.payout_batch_size):
                chunk = rows[i : i + self.opt.payout_batch_size]
                try:
                    await self.payouts.enqueue_payouts(epoch, chunk)
                except Exception:
                    self.metrics.submit_failures.labels("payouts").inc()
                    raise
                await self.store.mark_payouts([p.payout_id for p in chunk], "handed")
                handed += len(chunk)
        counts = await self.store.counts()
        self.metrics.payouts_pending.set(counts["payouts_pending"])
        return handed
