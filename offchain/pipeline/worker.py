"""The worker's event loop: bounded queues between follower, store writer, scoring, settlement and payouts.

All stages are asyncio tasks on one loop; blocking work (SQLite via aiosqlite's thread, decoding and scoring
in the scorer's process pool, the settlement arithmetic in a thread) never runs on the loop. A stage that
fails is restarted with exponential backoff (chain or IPFS outages are waited out, not fatal). `stop()` lets
the batch in flight finish: the writer commits what it holds, scorers finish their track, then all return.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from offchain.economics import EpochSettlement, PolicyParams, RewardKind, settle_epoch
from offchain.metrics import WorkerMetrics
from offchain.pipeline.ports import (
    BlockSource,
    ContentFetcher,
    ContentNotFound,
    FetchError,
    PayoutSink,
    ScoreOutcome,
    ScorePublisher,
    ScorerCrashed,
    ScorerFailure,
    StorageUnavailable,
    TrackRejected,
    TrackScorer,
)
from offchain.projection import BlockData
from offchain.scoring_rule import DeclaredGenre, declared_genre, no_metadata
from offchain.store import TrackRow, WorkerStore

log = structlog.get_logger("ami.worker")

_STOP = object()
T = TypeVar("T")
# Rejections that are looked at again later: the content may still appear on IPFS.
_READMIT_REASONS = ("not_found", "timeout")


@dataclass
class WorkerOptions:
    """The pipeline's knobs (from WorkerSettings; see offchain/config.py for their meaning)."""

    epoch_blocks: int = 100
    budgets: Mapping[RewardKind, int] = field(default_factory=dict)
    listen_reward_per_wallet: int = 60_000
    listen_credits_per_wallet: int = 10_000
    min_listen_seconds: int = 30
    min_quality_bp: int = 1_000
    sybil_group_min_size: int = 4
    discovery_early_listeners: int = 10
    adoption_trust: bool = False
    max_audio_bytes: int = 50 * 1024 * 1024
    block_queue_size: int = 256
    scoring_queue_size: int = 32
    ingest_batch_blocks: int = 64
    scoring_workers: int = 2
    payout_batch_size: int = 200
    fetch_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    poll_s: float = 1.0
    # The scoring stage's lanes (see `Worker.score_one`): tracks never tried go to the main lane, served by
    # `fetch_workers` tasks one creator at a time (at most `per_creator_slots` tasks each); tracks whose
    # content was missing (or slow) wait in the retry lane (`retry_workers` tasks) for
    # retry_initial_s * 2**(attempt-1) seconds (at most retry_max_s), up to `fetch_attempts`; then they are
    # rejected and looked for again every `readmit_after_s`.
    fetch_workers: int = 4
    retry_workers: int = 1
    fetch_deadline_s: float = 60.0
    retry_initial_s: float = 5.0
    retry_max_s: float = 300.0
    readmit_after_s: float = 3600.0
    # A fetched track waits at most this long for earlier tokens still being fetched, so that the catalogue
    # stays in mint order when content is healthy, and a slow or hostile earlier mint delays it by seconds.
    order_wait_s: float = 5.0
    per_creator_slots: int = 2

    @classmethod
    def from_settings(cls, s: Any) -> WorkerOptions:
        b = s.budgets
        return cls(
            epoch_blocks=s.epoch_blocks,
            budgets={
                RewardKind.CREATE: b.create,
                RewardKind.LISTEN: b.listen,
                RewardKind.DISCOVERY: b.discovery,
                RewardKind.ENGAGEMENT: b.engagement,
                RewardKind.ROYALTY: b.royalty,
            },
            listen_reward_per_wallet=s.caps.listen_reward_per_wallet,
            listen_credits_per_wallet=s.caps.listen_credits_per_wallet,
            min_listen_seconds=s.caps.min_listen_seconds,
            min_quality_bp=s.caps.min_quality_bp,
            sybil_group_min_size=s.caps.sybil_group_min_size,
            discovery_early_listeners=s.caps.discovery_early_listeners,
            adoption_trust=s.caps.adoption_trust,
            max_audio_bytes=s.max_audio_bytes,
            block_queue_size=s.block_queue_size,
            scoring_queue_size=s.scoring_queue_size,
            ingest_batch_blocks=s.ingest_batch_blocks,
            scoring_workers=s.scoring_workers,
            payout_batch_size=s.payout_batch_size,
            backoff_initial_s=s.backoff_initial_s,
            backoff_max_s=s.backoff_max_s,
        )

    def policy(self) -> PolicyParams:
        return PolicyParams(
            budgets=dict(self.budgets),
            listen_reward_per_wallet=self.listen_reward_per_wallet,
            listen_credits_per_wallet=self.listen_credits_per_wallet,
            min_listen_seconds=self.min_listen_seconds,
            min_quality_bp=self.min_quality_bp,
            sybil_group_min_size=self.sybil_group_min_size,
            discovery_early_listeners=self.discovery_early_listeners,
            adoption_trust=self.adoption_trust,
        )


TrustProvider = Callable[[Any], Mapping[str, int] | None]


class Worker:
    """Runs the pipeline until `stop()`; every stage is restart-safe because its state lives in the store."""

    def __init__(
        self,
        store: WorkerStore,
        source: BlockSource,
        fetcher: ContentFetcher,
        scorer: TrackScorer,
        publisher: ScorePublisher,
        payouts: PayoutSink,
        options: WorkerOptions | None = None,
        metrics: WorkerMetrics | None = None,
        trust: TrustProvider | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.fetcher = fetcher
        self.scorer = scorer
        self.publisher = publisher
        self.payout_sink = payouts
        self.opt = options or WorkerOptions()
        self.metrics = metrics or WorkerMetrics()
        self.trust = trust
        self._stop = asyncio.Event()
        self._blocks: asyncio.Queue[BlockData] = asyncio.Queue(self.opt.block_queue_size)
        # Scoring tasks pull their next track from the store when they are free (no queue in between), so
        # that the per-creator order is applied at the last moment: a track minted after a thousand others
        # is the next one taken if its creator has nothing else in the lane.
        self._in_flight: dict[int, str] = {}  # token -> creator, for every track a scoring task holds
        self._claiming = asyncio.Lock()
        self._work = asyncio.Condition()
        # Main-lane tokens whose content is being fetched, with the monotonic time the fetch began.
        self._fetching: dict[int, float] = {}
        self._fetch_done = asyncio.Condition()
        self._score_slots = asyncio.Semaphore(self.opt.scoring_workers)
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
                asyncio.create_task(self._supervise(f"scorer-{i}", functools.partial(self._score_loop, lane)))
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

    def _lanes(self) -> list[bool]:
        """The lane of each scoring task (True: retry lane): `fetch_workers` main, `retry_workers` retry."""
        return [False] * self.opt.fetch_workers + [True] * self.opt.retry_workers

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
                    inp = type(inp)(**{**inp.__dict__, "external_trust": ext})
            settlement = await asyncio.to_thread(settle_epoch, inp, self.opt.policy())
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
                    await self.payout_sink.enqueue_payouts(epoch, chunk)
                except Exception:
                    self.metrics.submit_failures.labels("payouts").inc()
                    raise
                await self.store.mark_payouts([p.payout_id for p in chunk], "handed")
                handed += len(chunk)
        counts = await self.store.counts()
        self.metrics.payouts_pending.set(counts["payouts_pending"])
        return handed

    # -- scoring ---------------------------------------------------------------------------------------------

    async def _feed_scoring(self) -> None:
        while not self._stop.is_set():
            for t in await self.store.tracks(status="scored"):
                await self._publish(t.token_id, t.novelty_bp, t.quality_bp, t.model_version, t.commitment)
            readmitted = await self.store.readmit_due(
                _READMIT_REASONS, time.time(), self.opt.fetch_attempts - 1, self.opt.scoring_queue_size
            )
            if readmitted:
                log.info("worker.tracks_readmitted", tokens=readmitted[:20], count=len(readmitted))
            async with self._work:
                self._work.notify_all()
            await self._check_scorer()
            self.last_error.pop("scoring-feed", None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_scoring.wait(), timeout=self.opt.poll_s)
            self._wake_scoring.clear()

    async def _claim(self, retry_lane: bool) -> int | None:
        """The next due track of a lane, one creator at a time (see `WorkerStore.fair_pending`), now ours.

        A creator holds at most `per_creator_slots` tasks at once, so the others' tracks always find one
        free: a thousand mints of one creator whose content never comes cannot fill every slot.
        """
        async with self._claiming:
            held = Counter(self._in_flight.values())
            due = await self.store.fair_pending(
                2 * len(self._in_flight) + 8, retry_lane=retry_lane, now=time.time()
            )
            for t in due:
                if t.token_id not in self._in_flight and held[t.creator] < self.opt.per_creator_slots:
                    self._in_flight[t.token_id] = t.creator
                    if not retry_lane:  # from the claim on, later tokens wait for it (`_wait_for_earlier`)
                        self._fetching[t.token_id] = time.monotonic()
                    return t.token_id
        return None

    async def _or_stop(self, aw: Awaitable[T], timeout: float) -> T | None:
        """`aw` within `timeout` seconds (TimeoutError past it), or None as soon as the worker is stopping:
        a fetch that may wait for minutes is dropped at SIGTERM (the track stays pending)."""
        task = asyncio.ensure_future(aw)
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait(
                {task, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if self._stop.is_set():
            return None
        raise TimeoutError

    async def _check_scorer(self) -> None:
        """Restart a scoring process found dead, and show the scorer's health in /readyz."""
        # Duck-typed: the real EngineTrackScorer has these, in-memory fakes need not.
        ensure = getattr(self.scorer, "ensure_running", None)
        if ensure is not None:
            await ensure()
        health = getattr(self.scorer, "health", None)
        problem = health() if health is not None else None
        if problem:
            self.last_error["scorer"] = problem
        else:
            self.last_error.pop("scorer", None)

    async def _publish(
        self, token_id: int, novelty: Any, quality: Any, version: Any, commitment: Any
    ) -> None:
        outcome = ScoreOutcome(int(novelty), int(quality), int(version), bytes.fromhex(str(commitment)[2:]))
        try:
            await self.publisher.publish_score(token_id, outcome)
        except Exception:
            self.metrics.submit_failures.labels("score").inc()
            raise
        await self.store.mark_score_submitted(token_id)

    async def _score_loop(self, retry_lane: bool) -> None:
        while not self._stop.is_set():
            token_id = await self._claim(retry_lane)
            if token_id is None:
                async with self._work:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._work.wait(), timeout=self.opt.poll_s)
                continue
            self.metrics.queue_depth.labels("scoring").set(len(self._in_flight))
            try:
                await self._score_isolated(token_id)
            finally:
                self._in_flight.pop(token_id, None)
                await self._fetched(token_id)

    async def _score_isolated(self, token_id: int) -> str:
        """`score_one`, where anything unexpected rejects the track (`internal`) instead of stopping the lane.

        Store failures (a full disk, a locked file) are not the track's: they go to the stage's supervisor.
        """
        try:
            return await self.score_one(token_id)
        except (OSError, sqlite3.Error):
            raise
        except Exception as exc:
            log.exception("worker.track_internal_error", token_id=token_id)
            return await self._reject(token_id, "internal", f"{type(exc).__name__}: {exc}")

    async def score_one(self, token_id: int) -> str:
        """Fetch, verify, score and record one pending track; returns its new status.

        Every track ends in one verdict: "scored" (then published), "rejected" with a reason, or "pending"
        again with a retry time (content missing or too slow to come; the scorer process died under it).
        """
        track = await self.store.track(token_id)
        if track is None or track.status != "pending":
            return track.status if track else "unknown"
        main_lane = track.attempts == 0
        started = time.monotonic()
        try:
            fetched = await self._fetch_audio(track)
            declared = None if isinstance(fetched, str) else await self._declared_genre(track.metadata_cid)
        finally:
            await self._fetched(token_id)
        if isinstance(fetched, str):
            return fetched
        self.metrics.fetch_seconds.observe(time.monotonic() - started)
        if declared is None:
            return "pending"
        self.last_error.pop("ipfs", None)
        if main_lane:
            await self._wait_for_earlier(token_id)
        try:
            async with self._score_slots:
                started, result = time.monotonic(), "failed"
                try:
                    outcome = await self.scorer.score(token_id, fetched, declared)
                    result = "scored"
                except TrackRejected:
                    result = "rejected"
                    raise
                finally:
                    self.metrics.score_seconds.labels(result).observe(time.monotonic() - started)
        except TrackRejected as exc:
            return await self._reject(token_id, exc.reason, exc.detail)
        except ScorerCrashed as exc:
            # The process died under this track (or under no fault of it): try again later, a few times.
            self.metrics.scorer_restarts.inc()
            return await self._retry_later(track, exc.reason, exc.detail)
        except ScorerFailure as exc:  # timed out (the track's doing) or an internal engine error
            if exc.reason != "internal":
                self.metrics.scorer_restarts.inc()
            return await self._reject(token_id, exc.reason, exc.detail)
        self.last_error.pop("scorer", None)
        await self.store.record_score(
            token_id,
            outcome.novelty_bp,
            outcome.quality_bp,
            outcome.model_version,
            outcome.commitment,
            outcome.details,
        )
        self.metrics.tracks_scored.labels("scored").inc()
        log.info(
            "worker.track_scored",
            token_id=token_id,
            novelty_bp=outcome.novelty_bp,
            quality_bp=outcome.quality_bp,
            model_version=outcome.model_version,
        )
        self._wake_scoring.set()
        return "scored"

    async def _fetch_audio(self, track: TrackRow) -> bytes | str:
        """The verified audio of `track`, or its new status when there is none (rejected or pending)."""
        token_id = track.token_id
        delay = self.opt.backoff_initial_s
        while True:
            try:
                audio = await self._or_stop(
                    self.fetcher.fetch(track.audio_cid, self.opt.max_audio_bytes), self.opt.fetch_deadline_s
                )
                return "pending" if audio is None else audio
            except TimeoutError:
                detail = f"the audio did not arrive within {self.opt.fetch_deadline_s:g} s"
                return await self._retry_later(track, "timeout", detail)
            except StorageUnavailable as exc:
                # The IPFS node is down: wait it out, never count it against the track.
                self.last_error["ipfs"] = str(exc)
                self.metrics.source_errors.labels("ipfs").inc()
                log.warning("worker.ipfs_unavailable", token_id=token_id, retry_in_s=round(delay, 2))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                if self._stop.is_set():
                    return "pending"
                delay = min(delay * 2, self.opt.backoff_max_s)
            except ContentNotFound as exc:
                return await self._retry_later(track, exc.reason, exc.detail)
            except FetchError as exc:
                return await self._reject(token_id, exc.reason, exc.detail)

    async def _retry_later(self, track: TrackRow, reason: str, detail: str) -> str:
        """Count a failed attempt; the track waits in the retry lane, or is rejected once attempts run out
        (missing content is then looked for again every `readmit_after_s`)."""
        attempts = track.attempts + 1
        wait = min(self.opt.retry_initial_s * 2 ** (attempts - 1), self.opt.retry_max_s)
        attempts = await self.store.schedule_retry(track.token_id, f"{reason}: {detail}", time.time() + wait)
        self.metrics.tracks_retried.labels(reason).inc()
        if attempts < self.opt.fetch_attempts:
            log.info(
                "worker.track_retry", token_id=track.token_id, reason=reason, attempts=attempts, in_s=wait
            )
            self._wake_scoring.set()
            return "pending"
        if reason in _READMIT_REASONS:
            await self.store.reject_until(
                track.token_id, reason, detail, time.time() + self.opt.readmit_after_s
            )
            self.metrics.tracks_scored.labels("rejected").inc()
            log.info("worker.track_rejected", token_id=track.token_id, reason=reason, readmit=True)
            return "rejected"
        return await self._reject(track.token_id, reason, detail)

    async def _fetched(self, token_id: int) -> None:
        """`token_id` no longer holds back later tokens (its content is in, or it has its verdict)."""
        if self._fetching.pop(token_id, None) is not None:
            async with self._fetch_done:
                self._fetch_done.notify_all()

    async def _wait_for_earlier(self, token_id: int) -> None:
        """Wait while an earlier mint is still being fetched, for at most `order_wait_s` after its start."""
        async with self._fetch_done:
            while True:
                now = time.monotonic()
                ends = [
                    start + self.opt.order_wait_s
                    for tok, start in self._fetching.items()
                    if tok < token_id and start + self.opt.order_wait_s > now
                ]
                if not ends or self._stop.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._fetch_done.wait(), timeout=min(ends) - now)

    async def _declared_genre(self, metadata_cid: str) -> DeclaredGenre | None:
        """The genre declared in the track's metadata (verified read, capped); None only when stopping.

        Metadata is advisory: anything wrong with it (not found, too slow, too large, bad CID, malformed)
        scores the track with no genre and records why, by the shared rule. Only an unreachable IPFS node is
        waited out, as for the audio, so an outage never changes the genre a track is scored with.
        """
        from offchain.ipfs.metadata import MAX_METADATA_BYTES

        delay = self.opt.backoff_initial_s
        while True:
            try:
                raw = await self._or_stop(
                    self.fetcher.fetch(metadata_cid, MAX_METADATA_BYTES), self.opt.fetch_deadline_s
                )
                if raw is None:
                    return None
            except TimeoutError:
                return no_metadata("timeout", f"no answer within {self.opt.fetch_deadline_s:g} s")
            except StorageUnavailable as exc:
                self.last_error["ipfs"] = str(exc)
                self.metrics.source_errors.labels("ipfs").inc()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                if self._stop.is_set():
                    return None
                delay = min(delay * 2, self.opt.backoff_max_s)
            except FetchError as exc:
                return no_metadata(exc.reason, exc.detail)
            else:
                return declared_genre(raw)

    async def _reject(self, token_id: int, reason: str, detail: str) -> str:
        await self.store.record_rejection(token_id, reason, detail)
        self.metrics.tracks_scored.labels("rejected").inc()
        self.metrics.tracks_rejected.labels(reason).inc()
        log.info("worker.track_rejected", token_id=token_id, reason=reason, detail=detail[:200])
        return "rejected"
